//! What each process (or thread) of a measurement does: the ZRE roles, the [`Role`]
//! command line the parent spawns a child with, and how a role hears "report" and "stop"
//! ([`Signals`]). The raw libzmq roles are in `baseline.rs`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use clap::Subcommand;
use serde_json::{json, Value};
use zre::{Event, Node};

use crate::baseline::{raw_echo, raw_recv, raw_send};

/// What one process (or thread) of a measurement does. Each reports NDJSON lines
/// (`{"ev": ..}`) and stops when told (stdin closed, or the stop flag).
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Role {
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
    pub(crate) fn args(&self) -> Vec<String> {
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

    pub(crate) fn run(self, out: &dyn Fn(Value), sig: &Signals) -> anyhow::Result<()> {
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
pub(crate) struct Signals {
    pub(crate) report: AtomicBool,
    pub(crate) stop: AtomicBool,
    /// Wakes `wait`: an idle role must not poll, or its polling is what idle measures.
    lock: std::sync::Mutex<()>,
    changed: std::sync::Condvar,
}

impl Signals {
    pub(crate) fn set(&self, flag: &AtomicBool) {
        let _g = self.lock.lock();
        flag.store(true, Ordering::Relaxed);
        self.changed.notify_all();
    }

    /// Waits until told to stop, at most `limit`.
    pub(crate) fn wait(&self, limit: Duration) {
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

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// No message for 10 s (100 waits of 100 ms) ends a count: what is missing is lost.
/// Counted in waits rather than read from the clock per message, which would cost more
/// than some of what is measured.
#[derive(Default)]
pub(crate) struct Quiet {
    got: u64,
    waits: u32,
}

impl Quiet {
    /// Called after a wait that timed out: false once nothing arrived for too long.
    pub(crate) fn still(&mut self, got: u64) -> bool {
        if got != self.got || got == 0 {
            self.got = got;
            self.waits = 0;
        }
        self.waits += 1;
        self.waits < 100
    }
}

/// The secret certificate of the CURVE measurement under way (None: plain). Children
/// are given it in [`CURVE_ENV`] by the launcher; threads read it here.
static CURVE: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);
/// Tells a child process the certificate of a CURVE measurement.
pub(crate) const CURVE_ENV: &str = "ZRE_BENCH_CURVE";

/// Starts (Some) or ends (None) CURVE measurements: the nodes started meanwhile use it.
pub(crate) fn set_curve(cert: Option<std::path::PathBuf>) {
    *CURVE.lock().unwrap_or_else(|p| p.into_inner()) = cert;
}

/// The certificate nodes started now use, if a CURVE measurement is under way.
pub(crate) fn curve() -> Option<std::path::PathBuf> {
    let set = CURVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    set.or_else(|| std::env::var_os(CURVE_ENV).map(Into::into))
}

pub(crate) fn node(port: u16) -> anyhow::Result<Node> {
    if !(49000..=49999).contains(&port) {
        bail!("beacon port {port} is outside 49000-49999");
    }
    let mut b = Node::builder()
        .interface("lo")
        .port(port)
        .stop_linger(Duration::from_secs(30));
    if let Some(cert) = curve() {
        // Every node of a CURVE measurement has the same key pair: the handshake and
        // the encryption cost the same as with one pair each.
        b = b.curve(zre::curve::Cert::load_secret(cert)?);
    }
    Ok(b.start()?)
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

pub(crate) fn child_main(role: Role) -> anyhow::Result<()> {
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
