//! Test double: a `zre` node in a child process, driven by JSON commands on stdin, printing
//! its events as the tools' NDJSON (`zre::cli::output::event_json`, exactly what
//! zre-listen prints; see `zre::cli`). `tests/interop/pyre_peer.py` speaks the same, so
//! one set of predicates reads a Rust node and a pyre node in another process alike.
//!
//! Built by `cargo test` as the [[bin]] `zre-test-peer` (feature `test-doubles`, see
//! Cargo.toml) and driven through `tests/common/peer.rs`. By hand:
//! `cargo run --features test-doubles --bin zre-test-peer -- --port 47999 --name alice`
//! (then type `{"cmd":"peers"}`; EOF, `{"cmd":"stop"}` or SIGTERM stops it).
//!
//! Flags: `--port PORT` (UDP beacon port, required, 5670 refused), `--name NAME`,
//! `--header K=V` and `--group G` (repeatable), `--interface IFACE` (default `lo`;
//! `--loopback` is accepted for parity with pyre_peer.py and means `lo`),
//! `--evasive SEC`, `--expired SEC`, `--interval SEC`, `--mailbox-port PORT`, `--verbose`,
//! `--no-beacon`, `--peer EP`, `--advertise EP`, `--gossip-bind EP`, `--gossip-connect EP`
//! (repeatable), `--identity FILE`, `--contest G` (repeatable; joins G too), `--curve SECRET_CERT`, `--allow DIR|FILE`, `--ipv6`,
//! `--tally` (see the tally command).
//!
//! stdout: one JSON object per line, flushed.
//!   `{"type":"ready","uuid":HEX,"name":..,"endpoint":..,"port":PORT}` (first line)
//!   every event as zre-listen prints it: `enter` `exit` `join` `leave` `whisper` `shout`
//!   `evasive` `silent`, and `stop` (last line); frames are `{"text":..}`/`{"base64":..}`
//!   replies to commands, not events:
//!   `{"type":"peers","peers":[HEX,..]}`
//!   `{"type":"error","error":..,"line":..}` (a bad command; the node carries on)
//!   `{"type":"stats",COUNTER:N,..}` (the node's receive/drop counters, `Node::stats`)
//!   `{"type":"burst","sent":N}` (once all N whispers are queued)
//!   `{"type":"tally","peers":{HEX:{"count":N,"next":N,"out_of_order":N}}}`
//! stdin: one JSON command per line. Content is given as zre-shout/zre-whisper `--json`
//! take it: `frames` (each `{"text":..}` or `{"base64":..}`), else `text`.
//!   `{"cmd":"join","group":G}` `{"cmd":"leave","group":G}`
//!   `{"cmd":"whisper","peer":HEX,"frames":[..]}` `{"cmd":"shout","group":G,"frames":[..]}`
//!   `{"cmd":"peers"}` `{"cmd":"stop"}`
//!   `{"cmd":"stats"}`; `{"cmd":"burst","peer":HEX,"count":N}` whispers N one-frame
//!   messages "0", "1", ... "N-1" itself (for volumes JSON lines cannot carry);
//!   `{"cmd":"tally"}` (with `--tally`: whispers of one decimal frame are not printed but
//!   counted per peer, `next` being the number expected next and `out_of_order` the count
//!   of numbers that were not the one expected).
//! Exit status 0 after a graceful stop.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use zre::cli::input::parse_json_message;
use zre::cli::output::event_json;
use zre::{uuid_hex, Event, Node, Uuid};

#[derive(Parser)]
#[command(about = "A zre node driven by JSON lines on stdin/stdout")]
struct Args {
    /// UDP beacon port.
    #[arg(long)]
    port: u16,
    /// Node name.
    #[arg(long)]
    name: Option<String>,
    /// A header, K=V (repeatable).
    #[arg(long = "header", value_name = "K=V")]
    headers: Vec<String>,
    /// A group to join at start (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Interface name or IP address.
    #[arg(long, default_value = "lo")]
    interface: String,
    /// Use loopback (the default; for parity with pyre_peer.py).
    #[arg(long)]
    loopback: bool,
    /// Evasive timeout, seconds.
    #[arg(long)]
    evasive: Option<f64>,
    /// Expired timeout, seconds.
    #[arg(long)]
    expired: Option<f64>,
    /// Beacon interval, seconds.
    #[arg(long)]
    interval: Option<f64>,
    /// Bind the mailbox on this TCP port instead of an ephemeral one.
    #[arg(long)]
    mailbox_port: Option<u16>,
    /// No beacons (no UDP socket).
    #[arg(long)]
    no_beacon: bool,
    /// A static peer, tcp://HOST:PORT (repeatable).
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// The endpoint to tell peers (HELLO, gossip).
    #[arg(long)]
    advertise: Option<String>,
    /// Be a gossip hub on this endpoint (repeatable).
    #[arg(long)]
    gossip_bind: Vec<String>,
    /// Connect to this gossip hub (repeatable).
    #[arg(long)]
    gossip_connect: Vec<String>,
    /// Contest the leadership of this group (repeatable; joins it too).
    #[arg(long)]
    contest: Vec<String>,
    /// Keep the UUID in this file across restarts.
    #[arg(long)]
    identity: Option<std::path::PathBuf>,
    /// CURVE with this secret certificate.
    #[arg(long)]
    curve: Option<std::path::PathBuf>,
    /// With --curve: the allow-list (a directory of certificates or a file of keys).
    #[arg(long)]
    allow: Option<std::path::PathBuf>,
    /// Log protocol decisions on stderr.
    #[arg(long)]
    verbose: bool,
    /// Count numbered whispers (see the tally command) instead of printing them.
    #[arg(long)]
    tally: bool,
    /// Run over IPv6 (Builder::ipv6).
    #[arg(long)]
    ipv6: bool,
}

/// Numbered whispers from one peer, for `--tally`.
#[derive(Default)]
struct Tally {
    count: u64,
    next: u64,
    out_of_order: u64,
}

type Tallies = Arc<Mutex<BTreeMap<String, Tally>>>;

/// With `--tally`: counts a whisper of one decimal frame and returns true (not printed).
fn tally(tallies: &Tallies, e: &Event) -> bool {
    let Event::Whisper { peer, content, .. } = e else {
        return false;
    };
    let [frame] = content.as_slice() else {
        return false;
    };
    let Some(n) = std::str::from_utf8(frame)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return false;
    };
    let mut all = tallies.lock().unwrap_or_else(|p| p.into_inner());
    let t = all.entry(uuid_hex(peer)).or_default();
    t.count += 1;
    if n != t.next {
        t.out_of_order += 1;
    }
    t.next = n + 1;
    true
}

fn emit(v: &Value) {
    emit_line(&v.to_string());
}

fn emit_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the driver went away; nothing useful to do about it.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The content of a whisper or shout command, as zre-whisper/zre-shout `--json` read it.
fn content(line: &str) -> anyhow::Result<zre::Content> {
    let m = parse_json_message(line)?.context("not a message")?;
    Ok(m.content)
}

fn str_field<'a>(c: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    c[key]
        .as_str()
        .with_context(|| format!("{key}: expected a string"))
}

/// Runs one command; `Ok(true)` means stop.
fn command(node: &Node, tallies: &Tallies, line: &str) -> anyhow::Result<bool> {
    let c: Value = serde_json::from_str(line).context("not JSON")?;
    match str_field(&c, "cmd")? {
        "stop" => return Ok(true),
        "join" => node.join(str_field(&c, "group")?)?,
        "leave" => node.leave(str_field(&c, "group")?)?,
        "whisper" => {
            let peer = Uuid::parse_str(str_field(&c, "peer")?).context("peer: bad UUID")?;
            node.whisper(peer, content(line)?)?
        }
        "shout" => node.shout(str_field(&c, "group")?, content(line)?)?,
        "peers" => {
            let peers: Vec<String> = node.peers().iter().map(uuid_hex).collect();
            emit(&json!({"type": "peers", "peers": peers}));
        }
        "stats" => {
            let s = node.stats()?;
            emit(&json!({"type": "stats", "beacons": s.beacons,
                "beacons_invalid": s.beacons_invalid, "beacons_curve": s.beacons_curve,
                "beacons_own": s.beacons_own, "messages": s.messages,
                "messages_invalid": s.messages_invalid,
                "messages_unexpected": s.messages_unexpected,
                "sequence_gaps": s.sequence_gaps, "pending_evicted": s.pending_evicted,
                "send_failures": s.send_failures, "gossip_tuples": s.gossip_tuples,
                "gossip_clients": s.gossip_clients, "gossip_malformed": s.gossip_malformed,
                "gossip_refused": s.gossip_refused, "gossip_expired": s.gossip_expired,
                "gossip_peers": s.gossip_peers, "beacons_plain": s.beacons_plain,
                "keys_refused": s.keys_refused, "keys_mismatched": s.keys_mismatched}));
        }
        "burst" => {
            let peer = Uuid::parse_str(str_field(&c, "peer")?).context("peer: bad UUID")?;
            let count = c["count"].as_u64().context("count: expected a number")?;
            for i in 0..count {
                node.whisper(peer, vec![i.to_string().into_bytes()])
                    .with_context(|| format!("burst stopped after {i} whispers"))?;
            }
            emit(&json!({"type": "burst", "sent": count}));
        }
        "tally" => {
            let all = tallies.lock().unwrap_or_else(|p| p.into_inner());
            let peers: serde_json::Map<String, Value> = all
                .iter()
                .map(|(k, t)| {
                    let v = json!({"count": t.count, "next": t.next,
                                   "out_of_order": t.out_of_order});
                    (k.clone(), v)
                })
                .collect();
            emit(&json!({"type": "tally", "peers": peers}));
        }
        other => bail!("unknown cmd {other:?}"),
    }
    Ok(false)
}

fn secs(s: Option<f64>) -> anyhow::Result<Option<Duration>> {
    s.map(|s| Duration::try_from_secs_f64(s).context("bad duration"))
        .transpose()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.port == zre::node::DEFAULT_PORT {
        bail!("refusing the default ZRE port {}", zre::node::DEFAULT_PORT);
    }
    let interface = if args.loopback {
        "lo".to_string()
    } else {
        args.interface
    };
    let mut b = Node::builder()
        .interface(interface)
        .port(args.port)
        .ipv6(args.ipv6)
        .verbose(args.verbose);
    if let Some(name) = args.name {
        b = b.name(name);
    }
    for h in &args.headers {
        let (k, v) = h.split_once('=').context("--header: expected K=V")?;
        b = b.header(k, v);
    }
    if let Some(d) = secs(args.evasive)? {
        b = b.evasive_timeout(d);
    }
    if let Some(d) = secs(args.expired)? {
        b = b.expired_timeout(d);
    }
    if let Some(d) = secs(args.interval)? {
        b = b.interval(d);
    }
    if let Some(port) = args.mailbox_port {
        b = b.mailbox_port(port);
    }
    b = b.beacon(!args.no_beacon);
    for p in &args.peers {
        b = b.peer(p);
    }
    if let Some(a) = &args.advertise {
        b = b.advertised_endpoint(a);
    }
    for e in &args.gossip_bind {
        b = b.gossip_bind(e);
    }
    for e in &args.gossip_connect {
        b = b.gossip_connect(e);
    }
    if let Some(f) = &args.curve {
        b = b.curve(zre::curve::Cert::load_secret(f)?);
    }
    if let Some(f) = &args.allow {
        b = b.allow(f);
    }
    if let Some(f) = &args.identity {
        b = b.identity_file(f);
    }
    let node = Arc::new(b.start()?);
    for g in &args.contest {
        node.contest(g)?;
    }
    for g in args.groups.iter().chain(&args.contest) {
        node.join(g)?;
    }
    emit(
        &json!({"type": "ready", "uuid": uuid_hex(&node.uuid()), "name": node.name(),
                 "endpoint": node.endpoint(), "port": args.port}),
    );

    let tallies: Tallies = Arc::default();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let events = {
        let node = Arc::clone(&node);
        let tallies = Arc::clone(&tallies);
        let counting = args.tally;
        std::thread::spawn(move || {
            for e in node.events() {
                if counting && tally(&tallies, &e) {
                    continue;
                }
                emit_line(&event_json(&e));
            }
            let _ = done_tx.send(());
        })
    };
    // SIGTERM/SIGINT: a graceful stop, then exit once STOP was printed (stdin may never
    // close, so the main loop cannot be relied on to notice).
    let on_term = Arc::clone(&node);
    ctrlc::set_handler(move || {
        on_term.stop();
        let _ = done_rx.recv_timeout(Duration::from_secs(5));
        std::process::exit(0);
    })
    .context("installing the SIGTERM handler")?;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match command(&node, &tallies, &line) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => emit(&json!({"type": "error", "error": format!("{e:#}"), "line": line})),
        }
    }
    node.stop();
    let _ = events.join();
    Ok(())
}
