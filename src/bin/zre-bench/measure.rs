//! The measurements, each against its baseline: whisper and shout throughput, round trip,
//! start-to-ENTER, all-see-all discovery, idle memory and CPU. Each prints its result
//! lines (`report.rs`) and stops every worker it started.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};
use zre::{Event, Uuid};

use crate::launcher::{stop_all, Layout, Worker};
use crate::procfs::{per_part, proc_cpu_ns, proc_cpu_ticks, proc_rss_kb, proc_threads};
use crate::report::{emit, percentile, rate, ratio};
use crate::roles::{node, now_ns, Role};
use crate::Cli;

/// The command line, and the next beacon port to hand out.
pub(crate) struct Ctx {
    pub(crate) cli: Cli,
    pub(crate) next_port: u16,
    /// With `--curve`: where the measurements' certificate is (made at first use).
    pub(crate) curve_dir: Option<std::path::PathBuf>,
}

impl Ctx {
    fn port(&mut self) -> anyhow::Result<u16> {
        let p = self.next_port;
        if !(49000..=49999).contains(&p) {
            bail!("beacon port {p} is outside 49000-49999");
        }
        self.next_port += 1;
        Ok(p)
    }
    /// With `--curve`, the certificate of CURVE measurements, made at first use.
    fn curve_cert(&mut self) -> anyhow::Result<Option<std::path::PathBuf>> {
        if !self.cli.curve {
            return Ok(None);
        }
        let dir = std::env::temp_dir().join(format!("zre-bench-curve-{}", std::process::id()));
        let cert = dir.join("bench.cert");
        if self.curve_dir.is_none() {
            std::fs::create_dir_all(&dir)?;
            let pair = zre::curve::generate().map_err(anyhow::Error::msg)?;
            pair.save(&cert, "zre-bench")?;
            self.curve_dir = Some(dir);
        }
        Ok(Some(cert))
    }

    fn messages(&self) -> u64 {
        self.cli
            .messages
            .unwrap_or(if self.cli.quick { 5_000 } else { 500_000 })
    }
}

/// Waits for every receiver's count and the sender's end, stops them all, and returns
/// the delivered rate.
fn collect_rate(recv: Vec<Worker>, sender: Worker) -> anyhow::Result<(f64, u64)> {
    let mut done = Vec::new();
    for w in &recv {
        done.push(w.expect("done", Duration::from_secs(300))?);
    }
    sender.expect("sent", Duration::from_secs(60))?;
    sender.finish();
    stop_all(recv);
    Ok(rate(&done))
}

/// Raw fan-out: `receivers` ROUTERs, one sender with a DEALER to each.
fn raw_fanout(
    layout: Layout,
    receivers: usize,
    count: u64,
    size: usize,
) -> anyhow::Result<(f64, u64)> {
    let mut recv = Vec::new();
    let mut eps = Vec::new();
    for _ in 0..receivers {
        let w = Worker::spawn(layout, Role::RawRecv { count })?;
        let r = w.expect("ready", Duration::from_secs(10))?;
        eps.push(r["endpoint"].as_str().unwrap_or_default().to_string());
        recv.push(w);
    }
    let sender = Worker::spawn(
        layout,
        Role::RawSend {
            count,
            size,
            endpoints: eps,
        },
    )?;
    collect_rate(recv, sender)
}

/// ZRE: `receivers` nodes, one sender that whispers (one receiver) or shouts.
fn zre_fanout(
    layout: Layout,
    port: u16,
    receivers: usize,
    count: u64,
    size: usize,
    group: Option<String>,
) -> anyhow::Result<(f64, u64)> {
    let mut recv = Vec::new();
    for _ in 0..receivers {
        let w = Worker::spawn(
            layout,
            Role::ZreRecv {
                port,
                count,
                group: group.clone(),
            },
        )?;
        w.expect("ready", Duration::from_secs(10))?;
        recv.push(w);
    }
    let sender = Worker::spawn(
        layout,
        Role::ZreSend {
            port,
            count,
            size,
            peers: receivers,
            group,
        },
    )?;
    collect_rate(recv, sender)
}

pub(crate) fn bench_whisper(c: &mut Ctx, layout: Layout) -> anyhow::Result<()> {
    let n = c.messages();
    for (name, size) in [("whisper_16b", 16usize), ("whisper_1kib", 1024)] {
        let port = c.port()?;
        eprintln!("zre-bench: {name} ({}, {n} messages)", layout.name());
        let (base, _) = raw_fanout(layout, 1, n, size)?;
        let (value, got) = zre_fanout(layout, port, 1, n, size, None)?;
        emit(json!({
            "name": name, "layout": layout.name(), "unit": "msg/s",
            "value": value.round(), "mb_per_s": (value * size as f64 / 1e5).round() / 10.0,
            "baseline": base.round(), "baseline_kind": "libzmq", "ratio": ratio(value, base),
            "size": size, "messages": n, "received": got, "lost": n - got.min(n),
        }));
        // CURVE beside it: the plain figure just measured is its baseline.
        if let Some(cert) = c.curve_cert()? {
            let port = c.port()?;
            eprintln!("zre-bench: {name}_curve ({}, {n} messages)", layout.name());
            crate::roles::set_curve(Some(cert));
            let run = zre_fanout(layout, port, 1, n, size, None);
            crate::roles::set_curve(None);
            let (curve, got) = run?;
            emit(json!({
                "name": format!("{name}_curve"), "layout": layout.name(), "unit": "msg/s",
                "value": curve.round(), "mb_per_s": (curve * size as f64 / 1e5).round() / 10.0,
                "baseline": value.round(), "baseline_kind": "plain", "ratio": ratio(curve, value),
                "size": size, "messages": n, "received": got, "lost": n - got.min(n),
            }));
        }
    }
    Ok(())
}

pub(crate) fn bench_shout(c: &mut Ctx, layout: Layout) -> anyhow::Result<()> {
    let n = (c.messages() / 5).max(1);
    for peers in [1usize, 10] {
        let port = c.port()?;
        let name = format!("shout_{peers}");
        eprintln!("zre-bench: {name} ({}, {n} messages)", layout.name());
        let (base, _) = raw_fanout(layout, peers, n, 16)?;
        let (value, got) = zre_fanout(layout, port, peers, n, 16, Some("BENCH".into()))?;
        let want = n * peers as u64;
        emit(json!({
            "name": name, "layout": layout.name(), "unit": "delivered msg/s",
            "value": value.round(), "baseline": base.round(), "baseline_kind": "libzmq",
            "ratio": ratio(value, base), "size": 16, "messages": n, "peers": peers,
            "received": got, "lost": want - got.min(want),
        }));
    }
    Ok(())
}

pub(crate) fn bench_rtt(c: &mut Ctx, layout: Layout) -> anyhow::Result<()> {
    let n = c
        .cli
        .round_trips
        .unwrap_or(if c.cli.quick { 300 } else { 20_000 });
    let warm = (n / 10).max(10);
    eprintln!("zre-bench: rtt ({}, {n} round trips)", layout.name());
    // Raw: a DEALER here, an echoing ROUTER there.
    let echo = Worker::spawn(layout, Role::RawEcho)?;
    let ep = echo.expect("ready", Duration::from_secs(10))?["endpoint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ctx = zmq::Context::new();
    let d = ctx.socket(zmq::DEALER)?;
    d.set_rcvtimeo(5000)?;
    d.connect(&ep)?;
    let header = [0xAA, 0xA1, 2, 2, 0, 1];
    let payload = [b'x'; 16];
    let mut raw = Vec::new();
    let mut msg = zmq::Message::new();
    for i in 0..warm + n {
        let t = Instant::now();
        d.send(&header[..], zmq::SNDMORE)?;
        d.send(&payload[..], 0)?;
        d.recv(&mut msg, 0)?;
        while d.get_rcvmore()? {
            d.recv(&mut msg, 0)?;
        }
        if i >= warm {
            raw.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(d);
    drop(ctx);
    echo.finish();

    let port = c.port()?;
    let zre = zre_rtts(layout, port, warm, n, &payload)?;
    let curve = match c.curve_cert()? {
        Some(cert) => {
            let port = c.port()?;
            eprintln!("zre-bench: rtt_curve ({}, {n} round trips)", layout.name());
            crate::roles::set_curve(Some(cert));
            let run = zre_rtts(layout, port, warm, n, &payload);
            crate::roles::set_curve(None);
            Some(run?)
        }
        None => None,
    };
    raw.sort_by(f64::total_cmp);
    for (name, p) in [("rtt_p50", 0.5), ("rtt_p99", 0.99)] {
        let (v, b) = (percentile(&zre, p), percentile(&raw, p));
        emit(json!({
            "name": name, "layout": layout.name(), "unit": "us",
            "value": (v * 10.0).round() / 10.0, "baseline": (b * 10.0).round() / 10.0,
            "baseline_kind": "libzmq", "ratio": ratio(v, b), "round_trips": n, "size": 16,
        }));
        if let Some(curve) = &curve {
            let cv = percentile(curve, p);
            emit(json!({
                "name": format!("{name}_curve"), "layout": layout.name(), "unit": "us",
                "value": (cv * 10.0).round() / 10.0, "baseline": (v * 10.0).round() / 10.0,
                "baseline_kind": "plain", "ratio": ratio(cv, v), "round_trips": n, "size": 16,
            }));
        }
    }
    Ok(())
}

/// Round trips of a 16-byte whisper to an echoing node, in µs, sorted (after `warm`).
fn zre_rtts(
    layout: Layout,
    port: u16,
    warm: u64,
    n: u64,
    payload: &[u8],
) -> anyhow::Result<Vec<f64>> {
    let echo = Worker::spawn(layout, Role::ZreEcho { port })?;
    let uuid: Uuid = echo.expect("ready", Duration::from_secs(10))?["uuid"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    let me = node(port)?;
    let end = Instant::now() + Duration::from_secs(30);
    while !me.peers().contains(&uuid) {
        if Instant::now() > end {
            bail!("echo node never appeared");
        }
        let _ = me.recv_timeout(Duration::from_millis(10))?;
    }
    let mut zre = Vec::new();
    for i in 0..warm + n {
        let t = Instant::now();
        me.whisper(uuid, vec![payload.to_vec()])?;
        loop {
            match me.recv_timeout(Duration::from_secs(5))? {
                Some(Event::Whisper { .. }) => break,
                Some(_) => {}
                None => bail!("round trip {i} timed out"),
            }
        }
        if i >= warm {
            zre.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(me);
    echo.finish();
    zre.sort_by(f64::total_cmp);
    Ok(zre)
}

pub(crate) fn bench_enter(c: &mut Ctx) -> anyhow::Result<()> {
    let runs = c.cli.enter_runs.unwrap_or(if c.cli.quick { 3 } else { 30 });
    let port = c.port()?;
    eprintln!("zre-bench: enter ({runs} runs)");
    // One node already running (its own process); time a fresh node's start to ENTER.
    let a = Worker::spawn(Layout::Processes, Role::ZreNode { port, expect: 0 })?;
    a.expect("started", Duration::from_secs(10))?;
    let mut samples = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let b = node(port)?;
        let end = t + Duration::from_secs(10);
        loop {
            if Instant::now() > end {
                bail!("no ENTER within 10 s");
            }
            if let Some(Event::Enter { .. }) = b.recv_timeout(Duration::from_millis(50))? {
                samples.push(t.elapsed().as_secs_f64() * 1e3);
                break;
            }
        }
        drop(b);
    }
    a.finish();
    samples.sort_by(f64::total_cmp);
    for (name, p) in [("enter_p50", 0.5), ("enter_p99", 0.99)] {
        emit(json!({
            "name": name, "layout": "processes", "unit": "ms",
            "value": (percentile(&samples, p) * 100.0).round() / 100.0,
            "baseline": Value::Null, "baseline_kind": "none", "ratio": Value::Null,
            "target": 5.0, "runs": runs,
        }));
    }
    Ok(())
}

/// Launches `n` node processes together; reports when each has seen all others.
pub(crate) fn bench_discovery(c: &mut Ctx, n: usize) -> anyhow::Result<()> {
    let port = c.port()?;
    let settle = c.cli.settle.unwrap_or(if c.cli.quick { 0.5 } else { 6.0 });
    eprintln!("zre-bench: discovery of {n} processes");
    let t0 = now_ns();
    let mut ws = Vec::new();
    for _ in 0..n {
        ws.push(Worker::spawn(
            Layout::Processes,
            Role::ZreNode {
                port,
                expect: n - 1,
            },
        )?);
    }
    let limit = Duration::from_secs(60);
    let mut all = Vec::new();
    let mut started = Vec::new();
    let mut failed = 0;
    for w in &ws {
        if let Ok(v) = w.expect("started", limit) {
            started.push(v["t"].as_u64().unwrap_or(0));
        }
    }
    for w in &ws {
        match w.expect("all", limit) {
            Ok(v) => all.push(v["t"].as_u64().unwrap_or(0)),
            Err(_) => failed += 1,
        }
    }
    std::thread::sleep(Duration::from_secs_f64(settle));
    let (mut evasive, mut exits) = (0, 0);
    let mut enters = Vec::new();
    for w in &mut ws {
        w.tell_report();
    }
    for w in &ws {
        if let Ok(d) = w.expect("done", Duration::from_secs(30)) {
            evasive += d["evasive"].as_u64().unwrap_or(0);
            exits += d["exit"].as_u64().unwrap_or(0);
            if let Some(v) = d["enter_ns"].as_array() {
                enters.extend(v.iter().filter_map(|x| x.as_f64()).map(|x| x / 1e6));
            }
        }
    }
    stop_all(ws);
    let since = |t: Option<&u64>| t.map_or(0.0, |m| m.saturating_sub(t0) as f64 / 1e9);
    let secs = since(all.iter().max());
    // How long launching took: the last process to start its node, after t0.
    let launched = since(started.iter().max());
    // When the median node had seen all the others.
    all.sort_unstable();
    let all_p50 = since(all.get(all.len() / 2));
    let zyre = match n {
        30 => Some(0.26),
        60 => Some(0.85),
        100 => Some(2.4),
        _ => None,
    };
    enters.sort_by(f64::total_cmp);
    emit(json!({
        "name": format!("all_see_all_{n}"), "layout": "processes", "unit": "s",
        "value": if failed == 0 { json!((secs * 1000.0).round() / 1000.0) } else { Value::Null },
        "baseline": zyre, "baseline_kind": if zyre.is_some() { "zyre" } else { "none" },
        "ratio": zyre.map_or(Value::Null, |z| ratio(secs, z)),
        "nodes": n, "incomplete": failed, "evasive": evasive, "exit": exits,
        "launch_s": (launched * 1000.0).round() / 1000.0,
        "all_p50_s": (all_p50 * 1000.0).round() / 1000.0,
        "enter_p50_ms": (percentile(&enters, 0.5) * 100.0).round() / 100.0,
        "enter_p99_ms": (percentile(&enters, 0.99) * 100.0).round() / 100.0,
        "settle_s": settle,
    }));
    Ok(())
}

pub(crate) fn bench_idle(c: &mut Ctx) -> anyhow::Result<()> {
    let secs = c
        .cli
        .idle_secs
        .unwrap_or(if c.cli.quick { 1.0 } else { 20.0 });
    let (alone_port, group_port) = (c.port()?, c.port()?);
    eprintln!("zre-bench: idle ({secs} s)");
    let raw = Worker::spawn(Layout::Processes, Role::RawIdle)?;
    raw.expect("ready", Duration::from_secs(10))?;
    let alone = Worker::spawn(
        Layout::Processes,
        Role::ZreNode {
            port: alone_port,
            expect: 0,
        },
    )?;
    alone.expect("all", Duration::from_secs(10))?;
    let group: Vec<Worker> = (0..11)
        .map(|_| {
            Worker::spawn(
                Layout::Processes,
                Role::ZreNode {
                    port: group_port,
                    expect: 10,
                },
            )
        })
        .collect::<Result<_, _>>()?;
    for w in &group {
        w.expect("all", Duration::from_secs(30))?;
    }
    // Let start-up settle before measuring.
    std::thread::sleep(Duration::from_millis(1500));
    let pids = [raw.pid(), alone.pid(), group[0].pid()];
    let before: Vec<u64> = pids.iter().map(|&p| proc_cpu_ticks(p)).collect();
    let before_ns: Vec<u64> = pids.iter().map(|&p| proc_cpu_ns(p)).collect();
    let threads_before: Vec<_> = pids.iter().map(|&p| proc_threads(p)).collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let after: Vec<u64> = pids.iter().map(|&p| proc_cpu_ticks(p)).collect();
    let after_ns: Vec<u64> = pids.iter().map(|&p| proc_cpu_ns(p)).collect();
    let threads_after: Vec<_> = pids.iter().map(|&p| proc_threads(p)).collect();
    let wall = t.elapsed().as_secs_f64();
    let rss: Vec<u64> = pids.iter().map(|&p| proc_rss_kb(p)).collect();
    let tick = 100.0; // USER_HZ on Linux
    let ticks: Vec<f64> = (0..3)
        .map(|i| (after[i] - before[i]) as f64 / tick / wall * 100.0)
        .collect();
    let cpu: Vec<f64> = (0..3)
        .map(|i| after_ns[i].saturating_sub(before_ns[i]) as f64 / 1e9 / wall * 100.0)
        .collect();
    for (name, i) in [("idle_rss_alone", 1), ("idle_rss_10_peers", 2)] {
        emit(json!({
            "name": name, "layout": "processes", "unit": "MB",
            "value": (rss[i] as f64 / 1024.0 * 100.0).round() / 100.0,
            "baseline": (rss[0] as f64 / 1024.0 * 100.0).round() / 100.0,
            "baseline_kind": "libzmq", "ratio": ratio(rss[i] as f64, rss[0] as f64),
        }));
    }
    for (name, i) in [("idle_cpu_alone", 1), ("idle_cpu_10_peers", 2)] {
        emit(json!({
            "name": name, "layout": "processes", "unit": "% of a core",
            "value": (cpu[i] * 10000.0).round() / 10000.0,
            "baseline": (cpu[0] * 10000.0).round() / 10000.0, "baseline_kind": "libzmq",
            "ratio": ratio(cpu[i], cpu[0]), "seconds": (wall * 10.0).round() / 10.0,
            "utime_stime": (ticks[i] * 1000.0).round() / 1000.0,
            "utime_stime_resolution": (1.0 / tick / wall * 100000.0).round() / 1000.0,
            "threads": per_part(&threads_before[i], &threads_after[i], wall),
        }));
    }
    let mut all = vec![raw, alone];
    all.extend(group);
    stop_all(all);
    Ok(())
}
