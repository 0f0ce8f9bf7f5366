//! Test doubles in child processes: `zre-test-peer` (tests/doubles/peer.rs) and
//! `tests/interop/pyre_peer.py`, a thin layer over the one harness, [`Proc`]. Both print
//! their events as the tools' NDJSON (see `zre::cli`), after a `ready` line, and take a
//! small set of JSON commands; the predicates of `tests/common` read both.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zre::{uuid_hex, Uuid};

use super::cli_support::Proc;
use super::{frames_json, uuid_of, DEADLINE};

/// A test double in a child process, with the lines a test did not ask for yet kept in
/// order, so waiting for one event never loses another. Dropping it kills (SIGKILL, by PID)
/// and reaps the child.
pub struct Peer {
    pub label: String,
    pub proc: Proc,
    backlog: VecDeque<Value>,
    /// The node's UUID, from its `ready` line.
    pub uuid: Uuid,
    /// Its `ready` line.
    pub ready: Value,
}

impl Peer {
    /// Spawns `cmd` (see [`Proc::command`]) and waits for its `ready` line.
    pub fn spawn(label: &str, cmd: Command) -> Peer {
        let mut peer = Peer {
            label: label.to_string(),
            proc: Proc::command(label, cmd),
            backlog: VecDeque::new(),
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
        self.proc.pid()
    }

    /// The next line within `d`, if any; panics on a `crash` or `error` line.
    fn next(&mut self, d: Duration) -> Option<Value> {
        let t0 = Instant::now();
        let v = self.proc.next_json(d);
        match &v {
            Some(v) => {
                let t = v["type"].as_str().unwrap_or("");
                assert!(
                    !matches!(t, "crash" | "error"),
                    "{}: {v}\n{}",
                    self.label,
                    self.proc.context()
                );
            }
            // The output ended (the child is gone): do not spin.
            None if t0.elapsed() < d => std::thread::sleep(d.min(Duration::from_millis(20))),
            None => {}
        }
        v
    }

    /// The first line (oldest first, waiting up to `within`) that `pred` accepts; the
    /// others stay for later. Panics with everything seen if none comes.
    pub fn expect_within(
        &mut self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i).unwrap();
        }
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: no {what} within {within:?}; unmatched: {:#?}\n{}",
                    self.label,
                    self.backlog,
                    self.proc.context()
                );
            }
            if let Some(v) = self.next(left.min(Duration::from_millis(200))) {
                if pred(&v) {
                    return v;
                }
                self.backlog.push_back(v);
            }
        }
    }

    /// [`Peer::expect_within`] with the default [`DEADLINE`].
    pub fn expect(&mut self, what: &str, pred: impl FnMut(&Value) -> bool) -> Value {
        self.expect_within(DEADLINE, what, pred)
    }

    /// What arrives during `d`, plus what was not asked for yet, leaving nothing behind:
    /// for checking that something did NOT happen.
    pub fn drain_for(&mut self, d: Duration) -> Vec<Value> {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(v) = self.next(left) {
                self.backlog.push_back(v);
            }
        }
        while let Some(v) = self.next(Duration::ZERO) {
            self.backlog.push_back(v);
        }
        self.backlog.drain(..).collect()
    }

    /// What has arrived but was not asked for yet (without waiting); it stays.
    pub fn pending(&mut self) -> Vec<&Value> {
        while let Some(v) = self.next(Duration::ZERO) {
            self.backlog.push_back(v);
        }
        self.backlog.iter().collect()
    }

    /// Sends one command line.
    pub fn send(&mut self, cmd: Value) {
        self.proc.write_stdin(format!("{cmd}\n").as_bytes());
    }

    /// Joins `group`.
    pub fn join(&mut self, group: &str) {
        self.send(json!({"cmd": "join", "group": group}));
    }

    /// Leaves `group`.
    pub fn leave(&mut self, group: &str) {
        self.send(json!({"cmd": "leave", "group": group}));
    }

    /// Whispers `content` to `peer`.
    pub fn whisper(&mut self, peer: Uuid, content: &[Vec<u8>]) {
        let frames = frames_json(content);
        self.send(json!({"cmd": "whisper", "peer": uuid_hex(&peer), "frames": frames}));
    }

    /// Shouts `content` to `group`.
    pub fn shout(&mut self, group: &str, content: &[Vec<u8>]) {
        self.send(json!({"cmd": "shout", "group": group, "frames": frames_json(content)}));
    }

    /// The peers the child's node knows (the `peers` command), sorted.
    pub fn peers(&mut self) -> Vec<Uuid> {
        self.send(json!({"cmd": "peers"}));
        let v = self.expect("peers reply", |v| v["type"] == "peers");
        let mut list: Vec<Uuid> = v["peers"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: bad peers reply {v}", self.label))
            .iter()
            .map(|p| Uuid::parse_str(p.as_str().unwrap()).unwrap())
            .collect();
        list.sort();
        list
    }

    /// Asks for a graceful stop, waits for the `stop` event and the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.send(json!({"cmd": "stop"}));
        self.expect("stop", |v| v["type"] == "stop");
        self.wait()
    }

    /// Closes its stdin and waits for it to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.proc.close_stdin();
        self.proc.wait()
    }

    /// Kills the child with SIGKILL (by PID): no goodbye, it just vanishes.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Sends SIGTERM to the child (by PID).
    pub fn terminate(&mut self) {
        self.proc.signal("TERM");
    }
}

/// The Rust test double, built by cargo with the tests (see Cargo.toml).
pub const RUST_PEER: &str = env!("CARGO_BIN_EXE_zre-test-peer");

/// Spawns `zre-test-peer` on loopback with beacon port `port`.
pub fn rust_peer(port: u16, name: &str, extra: &[&str]) -> Peer {
    assert!((47000..48000).contains(&port), "test ports are 47000-47999");
    let mut cmd = Command::new(RUST_PEER);
    cmd.args([
        "--loopback",
        "--interval",
        "0.1",
        "--port",
        &port.to_string(),
    ])
    .args(["--name", name])
    .args(extra);
    Peer::spawn(name, cmd)
}

// ------------------------------------------------------------------ pyre

/// The Python that has pyre: `ZRE_PYTHON`, else the project's `.venv`.
pub fn python() -> PathBuf {
    match std::env::var_os("ZRE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// `tests/interop/<name>`.
pub fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// `Some(python)` if pyre can be imported. Otherwise: with `ZRE_REQUIRE_PYRE=1` the test
/// fails; without, the reason is printed to stderr and the test should return (skip).
pub fn require_pyre(test: &str) -> Option<PathBuf> {
    use std::io::Write;
    let py = python();
    let reason = match Command::new(&py)
        .args(["-c", "import pyre, zmq"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
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
pub fn pyre_peer(py: &Path, port: u16, name: &str, extra: &[&str]) -> Peer {
    assert!((47000..48000).contains(&port), "test ports are 47000-47999");
    let mut cmd = Command::new(py);
    cmd.arg("-u")
        .arg(interop_script("pyre_peer.py"))
        .args([
            "--loopback",
            "--interval",
            "0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["--name", name])
        .args(extra);
    Peer::spawn(&format!("pyre:{name}"), cmd)
}
