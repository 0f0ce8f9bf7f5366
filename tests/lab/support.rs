//! What the lab's scenarios share: the start of a scenario, timers, the test doubles on a
//! host, watching several of them at once with timestamps, counters and process figures.

use std::path::Path;
use std::process::Command;
use std::sync::MutexGuard;
pub use std::time::{Duration, Instant};

pub use std::collections::BTreeSet;
pub use std::path::PathBuf;

pub use crate::common::*;
use crate::netns::IFACE;
pub(crate) use crate::netns::{self, Host, Lab, NeighbourRoom};
pub use serde_json::{json, Value};
pub use zre::{uuid_hex, Uuid};

/// The hostile test double (tests/doubles/rogue.rs), built by cargo with the tests.
pub const ROGUE: &str = env!("CARGO_BIN_EXE_zre-test-rogue");

/// Prints a figure for the closing note (visible with `--nocapture`, and on failure).
macro_rules! figure {
    ($($t:tt)*) => { println!("LAB {}", format!($($t)*)) };
}

/// The start of every scenario: one at a time (the returned guard), and only where the
/// lab can run (root, `ip`; and `nft` if `nft`). Otherwise `None`: the reason is printed
/// and the scenario returns (skips), unless `ZRE_REQUIRE_LAB=1`, which makes it fail.
pub fn begin(tag: &str, nft: bool) -> Option<MutexGuard<'static, ()>> {
    let one = netns::exclusive();
    if !netns::available(tag) || (nft && !netns::nft_available(tag)) {
        return None;
    }
    Some(one)
}

/// The reference reaps once a second; our node runs its timers at exact deadlines, so one
/// reap interval is the slack allowed on a timer-derived bound (event delivery through
/// pipes on a loaded machine included).
pub const REAP: Duration = Duration::from_secs(1);

/// Timers for one scenario, in seconds.
#[derive(Clone, Copy)]
pub struct Timers {
    pub interval: f64,
    pub evasive: f64,
    pub expired: f64,
}

impl Timers {
    /// Beacon interval, evasive and expired timeouts, in seconds.
    pub fn new(interval: f64, evasive: f64, expired: f64) -> Timers {
        Timers {
            interval,
            evasive,
            expired,
        }
    }

    pub fn args(&self) -> Vec<String> {
        vec![
            "--interval".into(),
            self.interval.to_string(),
            "--evasive".into(),
            self.evasive.to_string(),
            "--expired".into(),
            self.expired.to_string(),
        ]
    }
    pub fn evasive(&self) -> Duration {
        Duration::from_secs_f64(self.evasive)
    }
    pub fn expired(&self) -> Duration {
        Duration::from_secs_f64(self.expired)
    }
}

/// Starts the test double `zre-test-peer` on `h` (interface veth0, beacon port `port`).
pub fn peer(lab: &Lab, h: &Host, port: u16, name: &str, t: Timers, extra: &[&str]) -> Peer {
    let mut cmd = lab.command(h, Path::new(RUST_PEER));
    cmd.args([
        "--interface",
        IFACE,
        "--port",
        &port.to_string(),
        "--name",
        name,
    ])
    .args(t.args())
    .args(extra);
    Peer::spawn(name, cmd)
}

/// Like [`peer`] with `--verbose`, its stderr going to `log`, and with one malloc arena:
/// the flood scenario measures the node's memory, and with glibc's default per-thread
/// arenas the zmq threads' churn of 256 short-lived DEALERs fragments several arenas, so
/// RSS climbs for ~40,000 fake beacons (about +6 MB per 10,000) before levelling off near
/// 35-38 MB; with one arena it is flat after the first flood (see the lab figures).
pub fn logged_peer(h: &Host, port: u16, name: &str, t: Timers, log: &Path) -> Peer {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &h.ns, "sh", "-c"])
        .arg("exec \"$0\" \"$@\" 2>\"$ZRE_LAB_LOG\"")
        .arg(RUST_PEER)
        .args([
            "--interface",
            IFACE,
            "--port",
            &port.to_string(),
            "--name",
            name,
        ])
        .args(t.args())
        .arg("--verbose")
        .env("ZRE_LAB_LOG", log)
        .env("MALLOC_ARENA_MAX", "1");
    Peer::spawn(name, cmd)
}

/// Like [`peer`], under `ulimit -n files`.
pub fn limited_peer(h: &Host, port: u16, name: &str, t: Timers, files: u32) -> Peer {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &h.ns, "sh", "-c"])
        .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
        .arg(RUST_PEER)
        .args([
            "--interface",
            IFACE,
            "--port",
            &port.to_string(),
            "--name",
            name,
        ])
        .args(t.args());
    Peer::spawn(name, cmd)
}

/// Runs the test double `zre-test-rogue` on `h` and returns its `tried` line.
pub fn rogue(lab: &Lab, h: &Host, args: &[&str]) -> Value {
    let out = lab
        .command(h, Path::new(ROGUE))
        .args(args)
        .output()
        .expect("run rogue");
    assert!(
        out.status.success(),
        "rogue {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rogue prints one JSON line")
}

/// Events from `p` (taken out of its inbox) up to at least the first that `end` accepts,
/// each with the time since `t0` at which it arrived.
pub fn until(
    p: &mut Peer,
    t0: Instant,
    within: Duration,
    what: &str,
    end: impl Fn(&Value) -> bool,
) -> Vec<(Duration, Value)> {
    let done = |_: usize, s: &[(Duration, Value)]| s.iter().any(|(_, v)| end(v));
    watch(&mut [p], t0, within, what, done).pop().unwrap()
}

/// Watches several peers at once until `done(i, events of peer i)` holds for every one,
/// giving each event the time since `t0` at which it arrived (polled every 10 ms), so that
/// waiting for one peer does not blur another's timing. Panics on an error line, or with
/// everything seen when `within` passes.
pub fn watch(
    peers: &mut [&mut Peer],
    t0: Instant,
    within: Duration,
    what: &str,
    done: impl Fn(usize, &[(Duration, Value)]) -> bool,
) -> Vec<Vec<(Duration, Value)>> {
    let mut seen = vec![Vec::new(); peers.len()];
    let end = Instant::now() + within;
    loop {
        for (i, p) in peers.iter_mut().enumerate() {
            // (a `crash` or `error` line panics in Peer)
            let now = t0.elapsed();
            for v in p.drain_for(Duration::ZERO) {
                seen[i].push((now, v));
            }
        }
        if (0..peers.len()).all(|i| done(i, &seen[i])) {
            return seen;
        }
        assert!(
            Instant::now() < end,
            "{what}: not within {within:?}; seen: {seen:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// When the event of `kind` from `peer` was seen in `seen`, if it was.
pub fn seen_at(seen: &[(Duration, Value)], kind: &'static str, peer: Uuid) -> Option<Duration> {
    let m = js(kind, peer);
    seen.iter().find(|(_, v)| m(v)).map(|(t, _)| *t)
}

/// Waits until every peer in `all` has seen ENTER from every other; returns when.
pub fn converge(all: &mut [Peer], within: Duration) {
    let uuids: Vec<Uuid> = all.iter().map(|p| p.uuid).collect();
    for p in all.iter_mut() {
        for u in &uuids {
            if *u != p.uuid {
                let what = format!("ENTER {}", uuid_hex(u));
                p.expect_within(within, &what, js("enter", *u));
            }
        }
    }
}

pub fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

/// The peer's counters (the `stats` command).
pub fn stats(p: &mut Peer) -> Value {
    p.send(json!({"cmd": "stats"}));
    p.expect("stats", |v| v["type"] == "stats")
}

/// Polls the peer's counters until each `(counter, n)` grew by at least `n` since `base`,
/// or [`DEADLINE`] passed; returns the last counters (the caller checks the figures).
pub fn stats_until(p: &mut Peer, base: &Value, wants: &[(&str, u64)]) -> Value {
    let end = Instant::now() + DEADLINE;
    loop {
        let s = stats(p);
        let done = wants.iter().all(|(k, n)| stat(&s, k) - stat(base, k) >= *n);
        if done || Instant::now() > end {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A file removed when dropped (also when the test fails).
pub struct TempFile(pub PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn stat(s: &Value, k: &str) -> u64 {
    s[k].as_u64()
        .unwrap_or_else(|| panic!("no counter {k} in {s}"))
}

/// Numbered whispers counted by a `--tally` peer from `from`: (count, next, out of order).
pub fn tally(p: &mut Peer, from: Uuid) -> (u64, u64, u64) {
    p.send(json!({"cmd": "tally"}));
    let v = p.expect("tally", |v| v["type"] == "tally");
    let t = &v["peers"][uuid_hex(&from)];
    if t.is_null() {
        return (0, 0, 0);
    }
    (
        t["count"].as_u64().unwrap(),
        t["next"].as_u64().unwrap(),
        t["out_of_order"].as_u64().unwrap(),
    )
}

/// Polls the tally until `count` whispers from `from` arrived or `within` passed.
pub fn wait_tally(p: &mut Peer, from: Uuid, count: u64, within: Duration) -> (u64, u64, u64) {
    let end = Instant::now() + within;
    loop {
        let t = tally(p, from);
        if t.0 >= count || Instant::now() > end {
            return t;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// VmRSS and VmHWM of a process, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Open file descriptors of a process.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// True if the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

pub fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Starts stock pyre (`tests/interop/pyre_peer.py`, its own interface choice: veth0, the
/// only one besides lo in the namespace) on `h`, with beacon port `port` and timers `t`.
/// `--allow-host-net`: see s7 (its namespace check cannot read /proc/1/ns/net here).
pub fn pyre_host_peer(
    lab: &Lab,
    h: &Host,
    py: &Path,
    port: u16,
    name: &str,
    t: Timers,
    extra: &[&str],
) -> Peer {
    let mut cmd = lab.command(h, py);
    cmd.arg("-u")
        .arg(interop_script("pyre_peer.py"))
        .args(["--port", &port.to_string(), "--name", name])
        .arg("--allow-host-net")
        .args(t.args())
        .args(extra);
    let p = Peer::spawn(&format!("pyre:{name}"), cmd);
    let endpoint = p.ready["endpoint"].as_str().unwrap_or("");
    assert!(
        endpoint.starts_with(&format!("tcp://{}:", h.ip)),
        "pyre chose {endpoint}"
    );
    p
}
