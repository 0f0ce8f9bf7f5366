//! zre-bench: measures a ZRE node against raw libzmq on loopback and prints one NDJSON
//! line per result. How to run it and what the figures mean: BENCHMARKS.md.
//!
//! Every result line is `{"type":"result","name":..,"layout":..,"unit":..,"value":..,
//! "baseline":..,"baseline_kind":..,"ratio":..}` plus fields particular to the result.
//! `baseline_kind` is `libzmq` (raw DEALER to ROUTER measured in the same run, same frame
//! shape and process layout), `zyre` (Zyre C's figure on this machine type, from issue 5)
//! or `none`; `ratio` is value / baseline. Progress goes to stderr.
//!
//! The parent spawns itself (`zre-bench child ROLE ..`, hidden) for every process of a
//! measurement; with `--layout threads` the same roles run as threads of one process.
//! Every node binds interface `lo`, beacon ports come from `--port` (49000-49999), and
//! every loop and wait is bounded.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use zre::{Event, Node, Uuid};

/// Measure a ZRE node against raw libzmq on loopback (NDJSON on stdout)
#[derive(Debug, Parser)]
#[command(name = "zre-bench", version)]
struct Cli {
    /// A smoke run: tiny sizes, a few seconds in all
    #[arg(long)]
    quick: bool,
    /// Only these benchmarks (comma separated): whisper shout rtt enter discovery idle
    #[arg(long, value_delimiter = ',')]
    only: Vec<Bench>,
    /// Where the two ends of a throughput or round-trip measurement run
    #[arg(long, value_enum, default_value = "processes")]
    layout: LayoutArg,
    /// Messages per throughput measurement [default: 500000; quick: 5000]
    #[arg(long)]
    messages: Option<u64>,
    /// Round trips per round-trip measurement [default: 20000; quick: 300]
    #[arg(long)]
    round_trips: Option<u64>,
    /// Start-to-ENTER samples [default: 30; quick: 3]
    #[arg(long)]
    enter_runs: Option<u32>,
    /// Node counts for all-see-all (comma separated) [default: 10,30,60,100; quick: 3]
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Seconds the all-see-all nodes stay up afterwards, counting EVASIVE and EXIT
    /// [default: 6; quick: 0.5]
    #[arg(long)]
    settle: Option<f64>,
    /// Seconds over which idle CPU is measured [default: 20; quick: 1]
    #[arg(long)]
    idle_secs: Option<f64>,
    /// First UDP beacon port; each measurement uses the next one (49000-49999)
    #[arg(long, default_value_t = 49100)]
    port: u16,
    #[command(subcommand)]
    child: Option<ChildCmd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bench {
    Whisper,
    Shout,
    Rtt,
    Enter,
    Discovery,
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LayoutArg {
    Processes,
    Threads,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Processes,
    Threads,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Processes => "processes",
            Layout::Threads => "threads",
        }
    }
}

#[derive(Debug, Subcommand)]
enum ChildCmd {
    /// One end of a measurement (internal)
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        role: Role,
    },
}

/// What one process (or thread) of a measurement does. Each reports NDJSON lines
/// (`{"ev": ..}`) and stops when told (stdin closed, or the stop flag).
#[derive(Debug, Clone, Subcommand)]
enum Role {
    /// ROUTER: report the endpoint, count `count` messages.
    RawRecv { count: u64 },
    /// DEALER per endpoint: send `count` two-frame messages to each.
    RawSend {
        count: u64,
        size: usize,
        endpoints: Vec<String>,
    },
    /// ROUTER that sends every message back.
    RawEcho,
    /// A context and a bound ROUTER, idle.
    RawIdle,
    /// A node that counts `count` whispers or shouts.
    ZreRecv {
        port: u16,
        count: u64,
        #[arg(long)]
        group: Option<String>,
    },
    /// A node that waits for `peers` peers, then whispers (or shouts to `group`).
    ZreSend {
        port: u16,
        count: u64,
        size: usize,
        peers: usize,
        #[arg(long)]
        group: Option<String>,
    },
    /// A node that whispers every whisper back.
    ZreEcho { port: u16 },
    /// A node that reports when it has seen `expect` peers, then counts EVASIVE and EXIT.
    ZreNode { port: u16, expect: usize },
}

impl Role {
    fn args(&self) -> Vec<String> {
        let s = |x: &dyn ToString| x.to_string();
        let mut a = vec!["child".to_string()];
        match self {
            Role::RawRecv { count } => a.extend(["raw-recv".into(), s(count)]),
            Role::RawSend {
                count,
                size,
                endpoints,
            } => {
                a.extend(["raw-send".into(), s(count), s(size)]);
                a.extend(endpoints.iter().cloned());
            }
            Role::RawEcho => a.push("raw-echo".into()),
            Role::RawIdle => a.push("raw-idle".into()),
            Role::ZreRecv { port, count, group } => {
                a.extend(["zre-recv".into(), s(port), s(count)]);
                if let Some(g) = group {
                    a.extend(["--group".into(), g.clone()]);
                }
            }
            Role::ZreSend {
                port,
                count,
                size,
                peers,
                group,
            } => {
                a.extend(["zre-send".into(), s(port), s(count), s(size), s(peers)]);
                if let Some(g) = group {
                    a.extend(["--group".into(), g.clone()]);
                }
            }
            Role::ZreEcho { port } => a.extend(["zre-echo".into(), s(port)]),
            Role::ZreNode { port, expect } => a.extend(["zre-node".into(), s(port), s(expect)]),
        }
        a
    }

    fn run(self, out: &dyn Fn(Value), sig: &Signals) -> anyhow::Result<()> {
        let stop = &sig.stop;
        match self {
            Role::RawRecv { count } => raw_recv(count, out, stop),
            Role::RawSend {
                count,
                size,
                endpoints,
            } => raw_send(count, size, &endpoints, out),
            Role::RawEcho => raw_echo(out, stop),
            Role::RawIdle => {
                let ctx = zmq::Context::new();
                let router = ctx.socket(zmq::ROUTER)?;
                router.bind("tcp://127.0.0.1:*")?;
                out(json!({"ev": "ready"}));
                sig.wait(Duration::from_secs(3600));
                Ok(())
            }
            Role::ZreRecv { port, count, group } => zre_recv(port, count, group, out, sig),
            Role::ZreSend {
                port,
                count,
                size,
                peers,
                group,
            } => zre_send(port, count, size, peers, group, out, stop),
            Role::ZreEcho { port } => zre_echo(port, out, stop),
            Role::ZreNode { port, expect } => zre_node(port, expect, out, sig),
        }
    }
}

/// How the parent tells a role to report (a line on stdin) and to stop (stdin closed).
#[derive(Default)]
struct Signals {
    report: AtomicBool,
    stop: AtomicBool,
    /// Wakes `wait`: an idle role must not poll, or its polling is what idle measures.
    lock: std::sync::Mutex<()>,
    changed: std::sync::Condvar,
}

impl Signals {
    fn set(&self, flag: &AtomicBool) {
        let _g = self.lock.lock();
        flag.store(true, Ordering::Relaxed);
        self.changed.notify_all();
    }

    /// Waits until told to stop, at most `limit`.
    fn wait(&self, limit: Duration) {
        let end = Instant::now() + limit;
        let mut g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        while !self.stop.load(Ordering::Relaxed) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            g = self
                .changed
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// No message for 10 s (100 waits of 100 ms) ends a count: what is missing is lost.
/// Counted in waits rather than read from the clock per message, which would cost more
/// than some of what is measured.
#[derive(Default)]
struct Quiet {
    got: u64,
    waits: u32,
}

impl Quiet {
    /// Called after a wait that timed out: false once nothing arrived for too long.
    fn still(&mut self, got: u64) -> bool {
        if got != self.got || got == 0 {
            self.got = got;
            self.waits = 0;
        }
        self.waits += 1;
        self.waits < 100
    }
}

fn node(port: u16) -> anyhow::Result<Node> {
    if !(49000..=49999).contains(&port) {
        bail!("beacon port {port} is outside 49000-49999");
    }
    Ok(Node::builder()
        .interface("lo")
        .port(port)
        .stop_linger(Duration::from_secs(30))
        .start()?)
}

// ---- roles -------------------------------------------------------------------------------

fn raw_recv(count: u64, out: &dyn Fn(Value), stop: &AtomicBool) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_rcvtimeo(100)?;
    router.bind("tcp://127.0.0.1:*")?;
    let ep = router
        .get_last_endpoint()?
        .map_err(|_| anyhow!("endpoint"))?;
    out(json!({"ev": "ready", "endpoint": ep}));
    let mut msg = zmq::Message::new();
    let (mut got, mut first, mut last) = (0u64, 0u64, 0u64);
    let mut quiet = Quiet::default();
    while got < count && !stop.load(Ordering::Relaxed) {
        match router.recv(&mut msg, 0) {
            Ok(()) => {
                while router.get_rcvmore()? {
                    router.recv(&mut msg, 0)?;
                }
                got += 1;
                if got == 1 {
                    first = now_ns();
                }
            }
            Err(zmq::Error::EAGAIN) if quiet.still(got) => {}
            Err(zmq::Error::EAGAIN) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if got > 0 {
        last = now_ns();
    }
    out(json!({"ev": "done", "got": got, "first": first, "last": last}));
    Ok(())
}

fn raw_send(
    count: u64,
    size: usize,
    endpoints: &[String],
    out: &dyn Fn(Value),
) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let mut dealers = Vec::new();
    for ep in endpoints {
        let d = ctx.socket(zmq::DEALER)?;
        d.set_identity(&[1u8; 17])?;
        d.connect(ep)?;
        dealers.push(d);
    }
    // The same shape as a whisper: a 6-byte ZRE frame, then the content.
    let header = [0xAA, 0xA1, 2, 2, 0, 1];
    let payload = vec![b'x'; size];
    for _ in 0..count {
        for d in &dealers {
            d.send(&header[..], zmq::SNDMORE)?;
            d.send(&payload[..], 0)?;
        }
    }
    // Linger is infinite: dropping the sockets and the context waits until all is sent.
    drop(dealers);
    drop(ctx);
    out(json!({"ev": "sent"}));
    Ok(())
}

fn raw_echo(out: &dyn Fn(Value), stop: &AtomicBool) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_rcvtimeo(100)?;
    router.bind("tcp://127.0.0.1:*")?;
    let ep = router
        .get_last_endpoint()?
        .map_err(|_| anyhow!("endpoint"))?;
    out(json!({"ev": "ready", "endpoint": ep}));
    while !stop.load(Ordering::Relaxed) {
        match router.recv_multipart(0) {
            Ok(frames) => router.send_multipart(frames, 0)?,
            Err(zmq::Error::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn zre_recv(
    port: u16,
    count: u64,
    group: Option<String>,
    out: &dyn Fn(Value),
    sig: &Signals,
) -> anyhow::Result<()> {
    let stop = &sig.stop;
    let node = node(port)?;
    if let Some(g) = &group {
        node.join(g)?;
    }
    out(json!({"ev": "ready", "uuid": node.uuid().to_string()}));
    let (mut got, mut first, mut last) = (0u64, 0u64, 0u64);
    let mut quiet = Quiet::default();
    while got < count && !stop.load(Ordering::Relaxed) {
        match node.recv_timeout(Duration::from_millis(100))? {
            Some(Event::Whisper { .. } | Event::Shout { .. }) => {
                got += 1;
                if got == 1 {
                    first = now_ns();
                }
            }
            Some(_) => {}
            None if quiet.still(got) => {}
            None => break,
        }
    }
    if got > 0 {
        last = now_ns();
    }
    out(json!({"ev": "done", "got": got, "first": first, "last": last}));
    sig.wait(Duration::from_secs(60));
    Ok(())
}

fn zre_send(
    port: u16,
    count: u64,
    size: usize,
    peers: usize,
    group: Option<String>,
    out: &dyn Fn(Value),
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let node = node(port)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = |n: &Node| match &group {
        Some(g) => n.peers_by_group(g).len() >= peers,
        None => n.peers().len() >= peers,
    };
    while !ready(&node) {
        if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            bail!("only {} of {peers} peers appeared", node.peers().len());
        }
        let _ = node.recv_timeout(Duration::from_millis(10))?;
    }
    let target = node.peers()[0];
    let payload = vec![b'x'; size];
    for _ in 0..count {
        match &group {
            Some(g) => node.shout(g, vec![payload.clone()])?,
            None => node.whisper(target, vec![payload.clone()])?,
        }
        // Nobody reads our events: drop them as they come.
        while let Ok(Some(_)) = node.try_recv() {}
    }
    // Stop flushes everything queued (peers acknowledge a PING) before it returns.
    node.stop();
    out(json!({"ev": "sent"}));
    Ok(())
}

fn zre_echo(port: u16, out: &dyn Fn(Value), stop: &AtomicBool) -> anyhow::Result<()> {
    let node = node(port)?;
    out(json!({"ev": "ready", "uuid": node.uuid().to_string()}));
    while !stop.load(Ordering::Relaxed) {
        if let Some(Event::Whisper { peer, content, .. }) =
            node.recv_timeout(Duration::from_millis(100))?
        {
            node.whisper(peer, content)?;
        }
    }
    Ok(())
}

fn zre_node(port: u16, expect: usize, out: &dyn Fn(Value), sig: &Signals) -> anyhow::Result<()> {
    let started = now_ns();
    let node = node(port)?;
    out(json!({"ev": "started", "t": started}));
    if std::env::var_os("ZRE_BENCH_TRACE").is_some() {
        let line = format!("start {} {started}\n", node.uuid());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    let mut seen = HashSet::new();
    let mut enters = Vec::new();
    let (mut evasive, mut exits) = (0u64, 0u64);
    if expect == 0 {
        out(json!({"ev": "all", "t": now_ns()}));
    }
    // Counted until the parent asks for the report, before any node stops: EXITs
    // caused by the others leaving are not spurious.
    while !sig.report.load(Ordering::Relaxed) && !sig.stop.load(Ordering::Relaxed) {
        // A wake-up a second to look at the flags. Each wake-up costs about 50 µs of CPU
        // on this machine kind (idle_cpu's `threads.main`): every 250 ms it was 0.02% of
        // a core, the harness's cost and not the node's.
        match node.recv_timeout(Duration::from_secs(1))? {
            Some(Event::Enter { peer, .. }) => {
                enters.push(now_ns() - started);
                if std::env::var_os("ZRE_BENCH_TRACE").is_some() {
                    let line = format!("trace {} {peer} {}\n", node.uuid(), now_ns());
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
                seen.insert(peer);
                if seen.len() == expect {
                    out(json!({"ev": "all", "t": now_ns()}));
                }
            }
            Some(Event::Evasive { .. }) => evasive += 1,
            Some(Event::Exit { .. }) => exits += 1,
            _ => {}
        }
    }
    out(json!({"ev": "done", "evasive": evasive, "exit": exits, "enter_ns": enters}));
    sig.wait(Duration::from_secs(120));
    Ok(())
}

// ---- running roles as processes or threads ----------------------------------------------

/// One running role, seen from the parent.
struct Worker {
    lines: Receiver<Value>,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    sig: Arc<Signals>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn spawn(layout: Layout, role: Role) -> anyhow::Result<Worker> {
        let (tx, lines) = mpsc::channel();
        let sig = Arc::new(Signals::default());
        match layout {
            Layout::Processes => {
                let mut child = Command::new(std::env::current_exe()?)
                    .args(role.args())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .context("spawn child")?;
                let stdout = child.stdout.take().expect("piped");
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        if let Ok(v) = serde_json::from_str::<Value>(&line) {
                            if tx.send(v).is_err() {
                                break;
                            }
                        }
                    }
                });
                let stdin = child.stdin.take();
                Ok(Worker {
                    lines,
                    child: Some(child),
                    stdin,
                    sig,
                    thread: None,
                })
            }
            Layout::Threads => {
                let flag = sig.clone();
                let thread = std::thread::spawn(move || {
                    let tx = std::sync::Mutex::new(tx);
                    let out = |v: Value| {
                        let _ = tx.lock().unwrap().send(v);
                    };
                    if let Err(e) = role.run(&out, &flag) {
                        eprintln!("zre-bench: role failed: {e:#}");
                    }
                });
                Ok(Worker {
                    lines,
                    child: None,
                    stdin: None,
                    sig,
                    thread: Some(thread),
                })
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(std::process::id(), |c| c.id())
    }

    /// The next line with `"ev": ev`, waiting at most `limit`.
    fn expect(&self, ev: &str, limit: Duration) -> anyhow::Result<Value> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .map_err(|_| anyhow!("no {ev:?} from a worker within {limit:?}"))?;
            if v["ev"] == ev {
                return Ok(v);
            }
        }
    }

    fn tell_report(&mut self) {
        self.sig.set(&self.sig.report);
        if let Some(i) = &mut self.stdin {
            let _ = i.write_all(b"report\n");
            let _ = i.flush();
        }
    }

    fn tell_stop(&mut self) {
        self.sig.set(&self.sig.stop);
        self.stdin = None;
    }

    fn finish(mut self) {
        self.tell_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(mut c) = self.child.take() {
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Tells every worker to stop, then waits for each: they stop in parallel.
fn stop_all(mut ws: Vec<Worker>) {
    for w in &mut ws {
        w.tell_stop();
    }
    ws.into_iter().for_each(Worker::finish);
}

fn child_main(role: Role) -> anyhow::Result<()> {
    let sig = Arc::new(Signals::default());
    let flag = sig.clone();
    // A line on stdin asks for the report; closing stdin stops us.
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {
            flag.set(&flag.report);
        }
        flag.set(&flag.stop);
    });
    let out = |v: Value| {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{v}");
        let _ = o.flush();
    };
    role.run(&out, &sig)
}

// ---- measurements ----------------------------------------------------------------------

struct Ctx {
    cli: Cli,
    next_port: u16,
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
    fn messages(&self) -> u64 {
        self.cli
            .messages
            .unwrap_or(if self.cli.quick { 5_000 } else { 500_000 })
    }
}

fn emit(v: Value) {
    // "type" first, as in every NDJSON line of the project, then the common fields.
    const FIRST: [&str; 7] = [
        "name",
        "layout",
        "unit",
        "value",
        "baseline",
        "baseline_kind",
        "ratio",
    ];
    let obj = v.as_object().expect("object");
    let mut s = String::from("{\"type\":\"result\"");
    let rest = obj.keys().filter(|k| !FIRST.contains(&k.as_str()));
    for k in FIRST.iter().copied().chain(rest.map(String::as_str)) {
        if let Some(x) = obj.get(k) {
            s.push_str(&format!(",{}:{}", json!(k), x));
        }
    }
    s.push('}');
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

fn ratio(value: f64, baseline: f64) -> Value {
    if baseline > 0.0 {
        json!((value / baseline * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

/// Delivered messages per second over all receivers: first arrival to last arrival.
fn rate(done: &[Value]) -> (f64, u64) {
    let got: u64 = done.iter().map(|d| d["got"].as_u64().unwrap_or(0)).sum();
    let first = done
        .iter()
        .filter_map(|d| d["first"].as_u64())
        .min()
        .unwrap_or(0);
    let last = done
        .iter()
        .filter_map(|d| d["last"].as_u64())
        .max()
        .unwrap_or(0);
    let secs = (last.saturating_sub(first)) as f64 / 1e9;
    (if secs > 0.0 { got as f64 / secs } else { 0.0 }, got)
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

fn bench_whisper(c: &mut Ctx, layout: Layout) -> anyhow::Result<()> {
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
    }
    Ok(())
}

fn bench_shout(c: &mut Ctx, layout: Layout) -> anyhow::Result<()> {
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_rtt(c: &mut Ctx, layout: Layout) -> anyhow::Result<()> {
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
    raw.sort_by(f64::total_cmp);
    zre.sort_by(f64::total_cmp);
    for (name, p) in [("rtt_p50", 0.5), ("rtt_p99", 0.99)] {
        let (v, b) = (percentile(&zre, p), percentile(&raw, p));
        emit(json!({
            "name": name, "layout": layout.name(), "unit": "us",
            "value": (v * 10.0).round() / 10.0, "baseline": (b * 10.0).round() / 10.0,
            "baseline_kind": "libzmq", "ratio": ratio(v, b), "round_trips": n, "size": 16,
        }));
    }
    Ok(())
}

fn bench_enter(c: &mut Ctx) -> anyhow::Result<()> {
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
fn bench_discovery(c: &mut Ctx, n: usize) -> anyhow::Result<()> {
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

fn proc_rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime in clock ticks.
fn proc_cpu_ticks(pid: u32) -> u64 {
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
fn proc_cpu_ns(pid: u32) -> u64 {
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
fn proc_threads(pid: u32) -> Vec<(&'static str, u64, u64)> {
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
fn per_part(before: &[(&str, u64, u64)], after: &[(&str, u64, u64)], wall: f64) -> Value {
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

fn bench_idle(c: &mut Ctx) -> anyhow::Result<()> {
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

fn main() -> std::process::ExitCode {
    zre::cli::run("zre-bench", || {
        let mut cli = Cli::parse();
        if let Some(ChildCmd::Child { role }) = cli.child.take() {
            return child_main(role);
        }
        let only = cli.only.clone();
        let want = |b: Bench| only.is_empty() || only.contains(&b);
        let layouts = match cli.layout {
            LayoutArg::Processes => vec![Layout::Processes],
            LayoutArg::Threads => vec![Layout::Threads],
            LayoutArg::Both => vec![Layout::Processes, Layout::Threads],
        };
        let nodes = if !cli.nodes.is_empty() {
            cli.nodes.clone()
        } else if cli.quick {
            vec![3]
        } else {
            vec![10, 30, 60, 100]
        };
        let mut c = Ctx {
            next_port: cli.port,
            cli,
        };
        for &l in &layouts {
            if want(Bench::Whisper) {
                bench_whisper(&mut c, l)?;
            }
            if want(Bench::Shout) {
                bench_shout(&mut c, l)?;
            }
            if want(Bench::Rtt) {
                bench_rtt(&mut c, l)?;
            }
        }
        if want(Bench::Enter) {
            bench_enter(&mut c)?;
        }
        if want(Bench::Discovery) {
            for &n in &nodes {
                bench_discovery(&mut c, n)?;
            }
        }
        if want(Bench::Idle) {
            bench_idle(&mut c)?;
        }
        Ok(())
    })
}
