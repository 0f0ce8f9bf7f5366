//! What Linux's /proc says about a process: resident memory, CPU time (clock ticks and
//! nanoseconds), and per thread CPU and wake-ups. Readings only; a missing file reads as 0.

use serde_json::{json, Value};

pub(crate) fn proc_rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime in clock ticks.
pub(crate) fn proc_cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// Nanoseconds on a CPU, summed over the process's threads (`/proc/PID/task/*/schedstat`):
/// utime + stime count whole 10 ms ticks, too coarse for 0.05% over 20 s.
pub(crate) fn proc_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Per thread of a process: which part it is (`main`, `driver`: ours is named `zre-...`,
/// or `libzmq`), nanoseconds on a CPU, and wake-ups (voluntary context switches).
pub(crate) fn proc_threads(pid: u32) -> Vec<(&'static str, u64, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .map(|t| {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            let part = if t.file_name().to_string_lossy() == pid.to_string() {
                "main"
            } else if read("comm").starts_with("zre-") {
                "driver"
            } else {
                "libzmq"
            };
            let ns = read("schedstat")
                .split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let wakes = read("status")
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|x| x.trim().parse().ok())
                .unwrap_or(0);
            (part, ns, wakes)
        })
        .collect()
}

/// CPU % and wake-ups per second of each part of a process between two `proc_threads`
/// readings (threads that came or went in between are left out).
pub(crate) fn per_part(
    before: &[(&str, u64, u64)],
    after: &[(&str, u64, u64)],
    wall: f64,
) -> Value {
    let mut parts = serde_json::Map::new();
    for part in ["main", "driver", "libzmq"] {
        let sum = |v: &[(&str, u64, u64)]| {
            v.iter()
                .filter(|t| t.0 == part)
                .fold((0u64, 0u64), |(n, w), t| (n + t.1, w + t.2))
        };
        let ((n0, w0), (n1, w1)) = (sum(before), sum(after));
        let pct = n1.saturating_sub(n0) as f64 / 1e9 / wall * 100.0;
        let wakes = w1.saturating_sub(w0) as f64 / wall;
        parts.insert(
            part.into(),
            json!({"pct": (pct * 10000.0).round() / 10000.0,
                   "wakes_per_s": (wakes * 10.0).round() / 10.0}),
        );
    }
    Value::Object(parts)
}
