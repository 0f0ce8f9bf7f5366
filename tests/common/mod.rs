//! Shared by the real-socket suites (`nodes`, `processes`, `interop`): starting nodes on
//! loopback, waiting for events with generous deadlines, and driving child processes that
//! speak the JSON-lines protocol of `tests/interop/pyre_peer.py` (and `examples/peer.rs`).
//!
//! Network safety: every node here uses interface `lo` (beacons to 127.255.255.255), and
//! every test passes its own beacon port from 47000-47999, never 5670. Every child process
//! is killed (by its PID) and reaped when its guard drops, also when a test fails.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use zre::{Builder, Event, Node, Uuid};

/// How long to wait for an event that must come: generous, the machine may be loaded.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Beacon interval for test nodes: short, so discovery is quick.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// A builder for a test node: loopback, its own beacon port, a short beacon interval.
pub fn builder(port: u16, name: &str) -> Builder {
    assert!((47000..48000).contains(&port), "test ports are 47000-47999");
    Node::builder()
        .name(name)
        .interface("lo")
        .port(port)
        .interval(INTERVAL)
}

/// Starts a test node (see [`builder`]).
pub fn start(port: u16, name: &str) -> Node {
    builder(port, name).start().expect("start node")
}

/// Events from one source, with the ones a test did not ask for yet kept in order, so
/// waiting for one event never loses another.
pub struct Inbox<'a, E> {
    label: String,
    backlog: VecDeque<E>,
    source: Box<dyn FnMut(Duration) -> Option<E> + 'a>,
}

impl<'a, E: Debug> Inbox<'a, E> {
    /// An inbox over `source`, which returns the next event or `None` after the timeout.
    pub fn new(label: impl Into<String>, source: impl FnMut(Duration) -> Option<E> + 'a) -> Self {
        Inbox {
            label: label.into(),
            backlog: VecDeque::new(),
            source: Box::new(source),
        }
    }

    /// The first event (oldest first, waiting up to `within`) that `pred` accepts; the
    /// others stay for later. Panics with everything seen if none comes.
    pub fn expect_within(
        &mut self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&E) -> bool,
    ) -> E {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i).unwrap();
        }
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: no {what} within {within:?}; unmatched events: {:#?}",
                    self.label, self.backlog
                );
            }
            if let Some(e) = (self.source)(left.min(Duration::from_millis(200))) {
                if pred(&e) {
                    return e;
                }
                self.backlog.push_back(e);
            }
        }
    }

    /// [`Inbox::expect_within`] with the default [`DEADLINE`].
    pub fn expect(&mut self, what: &str, pred: impl FnMut(&E) -> bool) -> E {
        self.expect_within(DEADLINE, what, pred)
    }

    /// Collects what arrives during `d` (plus the backlog) and returns it all, leaving the
    /// inbox empty: for checking that something did NOT happen.
    pub fn drain_for(&mut self, d: Duration) -> Vec<E> {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(e) = (self.source)(left) {
                self.backlog.push_back(e);
            }
        }
        self.backlog.drain(..).collect()
    }

    /// What has arrived but was not asked for yet (without waiting).
    pub fn pending(&mut self) -> Vec<&E> {
        while let Some(e) = (self.source)(Duration::ZERO) {
            self.backlog.push_back(e);
        }
        self.backlog.iter().collect()
    }
}

/// An inbox over a node's events.
pub fn inbox<'a>(node: &'a Node, label: &str) -> Inbox<'a, Event> {
    Inbox::new(label, move |d| node.recv_timeout(d).ok().flatten())
}

/// Matches ENTER from `peer`.
pub fn is_enter(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Enter { peer: p, .. } if *p == peer)
}

/// Matches EXIT of `peer`.
pub fn is_exit(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Exit { peer: p, .. } if *p == peer)
}

/// Matches JOIN of `peer` to `group`.
pub fn is_join(peer: Uuid, group: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::Join { peer: p, group: g, .. } if *p == peer && g == group)
}

/// Matches LEAVE of `peer` from `group`.
pub fn is_leave(peer: Uuid, group: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::Leave { peer: p, group: g, .. } if *p == peer && g == group)
}

/// Matches any WHISPER from `peer`.
pub fn is_whisper(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Whisper { peer: p, .. } if *p == peer)
}

/// The kinds of EVASIVE, SILENT and EXIT events about `peer`, in order, up to its EXIT:
/// the life cycle of a peer that died without saying goodbye.
pub fn death_of(inbox: &mut Inbox<'_, Event>, what: &str, peer: Uuid) -> Vec<&'static str> {
    let mut order = Vec::new();
    loop {
        let e = inbox.expect(what, |e| {
            e.peer() == Some(peer)
                && matches!(
                    e,
                    Event::Evasive { .. } | Event::Silent { .. } | Event::Exit { .. }
                )
        });
        order.push(e.kind());
        if e.kind() == "exit" {
            return order;
        }
    }
}

/// Matches any SHOUT from `peer`.
pub fn is_shout(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Shout { peer: p, .. } if *p == peer)
}

/// Binary content that exercises framing: several frames, empty ones (first, middle and
/// last), every byte value, a NUL-only frame, non-ASCII UTF-8 and a frame over 64 KiB.
pub fn tricky_content() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        (0..=255u8).collect(),
        Vec::new(),
        vec![0],
        "héllo wörld ✓".as_bytes().to_vec(),
        (0..70_000u32).map(|i| (i % 251) as u8).collect(),
        Vec::new(),
    ]
}

/// Binary content pyre can carry (it needs at least one frame; empty ones inside are fine).
pub fn tricky_content_small() -> Vec<Vec<u8>> {
    vec![
        (0..=255u8).collect(),
        Vec::new(),
        vec![0, 0xff, 0],
        "ünïcode ✓".as_bytes().to_vec(),
        Vec::new(),
    ]
}

// ------------------------------------------------------------------ child processes

/// Frames as the JSON protocol carries them.
pub fn b64(frames: &[Vec<u8>]) -> Value {
    json!(frames.iter().map(|f| B64.encode(f)).collect::<Vec<_>>())
}

/// The frames of a JSON whisper/shout event.
pub fn frames_of(ev: &Value) -> Vec<Vec<u8>> {
    ev["frames"]
        .as_array()
        .unwrap_or_else(|| panic!("no frames in {ev}"))
        .iter()
        .map(|f| {
            B64.decode(f.as_str().expect("base64 string"))
                .expect("base64")
        })
        .collect()
}

/// The UUID in a JSON field (32 hex digits).
pub fn uuid_of(ev: &Value, key: &str) -> Uuid {
    Uuid::parse_str(
        ev[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {ev}")),
    )
    .unwrap_or_else(|e| panic!("bad {key} in {ev}: {e}"))
}

/// Matches a JSON event of `kind` whose `peer` is `peer`.
pub fn js(kind: &'static str, peer: Uuid) -> impl Fn(&Value) -> bool {
    let hex = zre::uuid_hex(&peer);
    move |v| v["type"] == kind && v["peer"] == hex.as_str()
}

/// A child process speaking the JSON-lines peer protocol. Dropping it kills (SIGKILL, by
/// PID) and reaps the child if it is still running.
pub struct JsonPeer {
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub inbox: Inbox<'static, Value>,
    /// The node's UUID, from its `ready` line.
    pub uuid: Uuid,
    /// Its `ready` line.
    pub ready: Value,
}

impl JsonPeer {
    /// Spawns `cmd` and waits for its `ready` line.
    pub fn spawn(label: &str, mut cmd: Command) -> JsonPeer {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel::<Value>();
        let name = label.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"type": "garbage", "line": line}));
                if std::env::var_os("ZRE_TEST_TRACE").is_some() {
                    eprintln!("{name} -> {v}");
                }
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let inbox = Inbox::new(label, move |d: Duration| {
            let rx: &Receiver<Value> = &rx;
            rx.recv_timeout(d).ok()
        });
        // The guard exists before the first wait, so a child that never gets ready is
        // still killed and reaped.
        let mut peer = JsonPeer {
            label: label.to_string(),
            child,
            stdin,
            inbox,
            uuid: Uuid::nil(),
            ready: Value::Null,
        };
        let ready = peer.expect("ready", |v| v["type"] == "ready");
        peer.uuid = uuid_of(&ready, "uuid");
        peer.ready = ready;
        peer
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line.
    pub fn send(&mut self, cmd: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{cmd}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: write {cmd}: {e}", self.label));
    }

    /// Waits for a line `pred` accepts; panics at once on a `crash` or `error` line.
    pub fn expect(&mut self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let label = self.label.clone();
        self.inbox.expect(what, |v| {
            let t = v["type"].as_str().unwrap_or("");
            assert!(
                !matches!(t, "crash" | "error" | "garbage"),
                "{label}: {t} while waiting for {what}: {v}"
            );
            pred(v)
        })
    }

    /// Like [`JsonPeer::expect`] with an explicit deadline.
    pub fn expect_within(
        &mut self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let label = self.label.clone();
        self.inbox.expect_within(within, what, |v| {
            let t = v["type"].as_str().unwrap_or("");
            assert!(
                !matches!(t, "crash" | "error" | "garbage"),
                "{label}: {t} while waiting for {what}: {v}"
            );
            pred(v)
        })
    }

    /// The peers the child's node knows (via the `peers` command).
    pub fn peers(&mut self) -> Vec<Uuid> {
        self.send(json!({"cmd": "peers"}));
        let v = self.expect("peers reply", |v| v["type"] == "peers");
        let mut list: Vec<Uuid> = v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Uuid::parse_str(p.as_str().unwrap()).unwrap())
            .collect();
        list.sort();
        list
    }

    /// Asks for a graceful stop, waits for the `stop` line and the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.send(json!({"cmd": "stop"}));
        let uuid = self.uuid;
        self.expect("stop", js("stop", uuid));
        self.wait()
    }

    /// Waits (up to [`DEADLINE`]) for the child to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.stdin.take();
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < end,
                "{}: did not exit within {DEADLINE:?}",
                self.label
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the child with SIGKILL (by PID): no goodbye, it just vanishes.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM to the child (by PID).
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }
}

impl Drop for JsonPeer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ the Rust peer binary

/// `target/<profile>/examples/peer`, built on first use (a no-op when up to date), since
/// `cargo test --test X` does not build examples.
pub fn rust_peer_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let me = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/<test>-<hash>
        let profile_dir = me.parent().and_then(|d| d.parent()).expect("profile dir");
        let exe = profile_dir.join("examples").join("peer");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
        let mut build = Command::new(cargo);
        build.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--example",
            "peer",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build --example peer");
        assert!(status.success(), "cargo build --example peer failed");
        assert!(exe.exists(), "{} missing after build", exe.display());
        exe
    })
    .clone()
}

/// Spawns `examples/peer` on loopback with beacon port `port`.
pub fn rust_peer(port: u16, name: &str, extra: &[&str]) -> JsonPeer {
    assert!((47000..48000).contains(&port), "test ports are 47000-47999");
    let mut cmd = Command::new(rust_peer_exe());
    cmd.args([
        "--loopback",
        "--interval",
        "0.1",
        "--port",
        &port.to_string(),
    ])
    .args(["--name", name])
    .args(extra);
    JsonPeer::spawn(name, cmd)
}

// ------------------------------------------------------------------ pyre

/// The Python that has pyre: `ZRE_PYTHON`, else the project's `.venv`.
pub fn python() -> PathBuf {
    match std::env::var_os("ZRE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// `Some(python)` if pyre can be imported. Otherwise: with `ZRE_REQUIRE_PYRE=1` the test
/// fails; without, the reason is printed to stderr and the test should return (skip).
pub fn require_pyre(test: &str) -> Option<PathBuf> {
    let py = python();
    let reason = match Command::new(&py)
        .args(["-c", "import pyre, zmq"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => return Some(py),
        Ok(o) => format!(
            "{} cannot import pyre: {}",
            py.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("{} not runnable: {e}", py.display()),
    };
    if std::env::var("ZRE_REQUIRE_PYRE").as_deref() == Ok("1") {
        panic!("{test}: pyre is required (ZRE_REQUIRE_PYRE=1) but {reason}");
    }
    // Written to the stderr handle itself, not eprintln!, so the test harness's output
    // capture cannot hide it on a passing (skipped) test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (create it with: python3 -m venv .venv && \
         .venv/bin/pip install zeromq-pyre==0.3.4; or set ZRE_PYTHON)"
    );
    None
}

/// Spawns `tests/interop/pyre_peer.py --loopback` with beacon port `port`.
pub fn pyre_peer(py: &PathBuf, port: u16, name: &str, extra: &[&str]) -> JsonPeer {
    assert!((47000..48000).contains(&port), "test ports are 47000-47999");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pyre_peer.py");
    let mut cmd = Command::new(py);
    cmd.arg("-u")
        .arg(script)
        .args([
            "--loopback",
            "--interval",
            "0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["--name", name])
        .args(extra);
    JsonPeer::spawn(&format!("pyre:{name}"), cmd)
}
