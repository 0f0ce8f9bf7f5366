//! The one child-process harness: spawn a program, read its NDJSON, reap it. The `cli_*`
//! tests use it directly on the `zre-*` binaries; `tests/common/peer.rs` is a thin layer
//! over it for the test doubles (`zre-test-peer`, `pyre_peer.py`), which speak the same
//! NDJSON.
//!
//! Every node runs with `--interface lo` (or in a lab namespace) and the test's own beacon
//! port; every child is killed (by its PID) and reaped when its guard drops, also when a
//! test fails. `ZRE_TEST_TRACE=1` echoes every line read to stderr.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const LISTEN: &str = env!("CARGO_BIN_EXE_zre-listen");
pub const SHOUT: &str = env!("CARGO_BIN_EXE_zre-shout");
pub const WHISPER: &str = env!("CARGO_BIN_EXE_zre-whisper");
pub const PING: &str = env!("CARGO_BIN_EXE_zre-ping");
pub const DIR: &str = env!("CARGO_BIN_EXE_zre-dir");
pub const PEERS: &str = env!("CARGO_BIN_EXE_zre-peers");

/// Generous: the machine is shared with other builds.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Loopback, our port, short timers.
pub fn node_args(port: u16) -> Vec<String> {
    [
        "--interface",
        "lo",
        "--port",
        &port.to_string(),
        "--interval",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A child process that is killed and reaped when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    pub stdin: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
    /// Skip CZMQ log lines on stdout (see [`Proc::skip_czmq_log`]).
    skip_czmq_log: bool,
}

impl Proc {
    /// Spawns `bin args`, stdin closed, stdout and stderr captured.
    pub fn spawn<S: AsRef<str>>(bin: &str, args: &[S]) -> Proc {
        Proc::spawn_with(bin, args, false, true)
    }

    /// Same, with a pipe to its stdin.
    pub fn spawn_stdin<S: AsRef<str>>(bin: &str, args: &[S]) -> Proc {
        Proc::spawn_with(bin, args, true, true)
    }

    fn spawn_with<S: AsRef<str>>(bin: &str, args: &[S], stdin: bool, read: bool) -> Proc {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        assert!(
            args.windows(2).any(|w| w == ["--interface", "lo"]) || args.contains(&"--help"),
            "every node runs on lo: {args:?}"
        );
        let mut cmd = Command::new(bin);
        cmd.args(&args)
            .env_remove("ZRE_INTERFACE")
            .env_remove("ZRE_PORT")
            .env_remove("NO_COLOR");
        let name = Path::new(bin)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Proc::start(name, cmd, stdin, read)
    }

    /// Spawns a prepared command (stdin a pipe, stdout and stderr captured) under `name`:
    /// for children that do not run on `lo` by a flag, such as the lab's, which run in a
    /// network namespace, or pyre_peer.py. The caller is responsible for its network.
    pub fn command(name: &str, cmd: Command) -> Proc {
        Proc::start(name.to_string(), cmd, true, true)
    }

    fn start(name: String, mut cmd: Command, stdin: bool, read: bool) -> Proc {
        let mut child = cmd
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        if !read {
            drop(out);
        } else {
            let trace = std::env::var_os("ZRE_TEST_TRACE")
                .is_some()
                .then(|| name.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    match line {
                        Ok(l) => {
                            if let Some(name) = &trace {
                                eprintln!("{name} -> {l}");
                            }
                            if tx.send(l).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            name,
            stdin: child.stdin.take(),
            child,
            lines: Some(rx),
            seen: Vec::new(),
            stderr,
            stderr_thread: Some(stderr_thread),
            status: None,
            skip_czmq_log: false,
        }
    }

    /// For a Zyre C process: lines in CZMQ's log format (`E: 26-11-30 16:48:03 ...`) on
    /// its stdout are kept in `seen` but not parsed. Debian's CZMQ writes some there
    /// whatever its log stream is set to (seen: zgossip's "unknown zgossip method
    /// 'UNPUBLISH'", after every EXIT of a Zyre node in gossip mode).
    pub fn skip_czmq_log(&mut self) {
        self.skip_czmq_log = true;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Spawns with its stdout a pipe whose reading end is already closed, as after
    /// `| head -1` has exited: its first write meets a broken pipe.
    pub fn spawn_closed_stdout<S: AsRef<str>>(bin: &str, args: &[S]) -> Proc {
        Proc::spawn_with(bin, args, false, false)
    }

    /// Writes to its stdin.
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("spawned with stdin");
        stdin.write_all(bytes).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes its stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Its name, PID, what it printed and its stderr: for failure messages.
    pub fn context(&self) -> String {
        format!(
            "{} (pid {}) printed:\n{}\nstderr:\n{}",
            self.name,
            self.pid(),
            self.seen.join("\n"),
            self.stderr()
        )
    }

    /// The next stdout line, parsed, within `timeout`; None on timeout or end of output.
    pub fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        let rx = self.lines.as_ref()?;
        let end = Instant::now() + timeout;
        let mut line = rx.recv_timeout(timeout).ok()?;
        while self.skip_czmq_log && is_czmq_log(&line) {
            self.seen.push(line);
            line = rx
                .recv_timeout(end.saturating_duration_since(Instant::now()))
                .ok()?;
        }
        self.seen.push(line.clone());
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", self.context()));
        Some(v)
    }

    /// Reads lines until one satisfies `pred`; panics (with what was seen) after DEADLINE.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_json(left) {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!("no {what} within {DEADLINE:?}; {}", self.context()),
            }
        }
    }

    /// Every line until end of output (the process must exit within DEADLINE).
    pub fn rest(&mut self) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        let mut all = Vec::new();
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_json(left) {
                Some(v) => all.push(v),
                None => break,
            }
        }
        all
    }

    /// Sends a signal by PID (`TERM`, `INT`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -s {sig} {}", self.pid());
    }

    /// Waits for it to exit, at most DEADLINE.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.status = Some(s);
                // It exited: its stderr ends now; read all of it.
                if let Some(t) = self.stderr_thread.take() {
                    let _ = t.join();
                }
                return s;
            }
            if Instant::now() >= deadline {
                panic!("did not exit within {DEADLINE:?}; {}", self.context());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it with SIGKILL (by PID) and reaps it: no goodbye, it just vanishes.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Waits for exit and checks the code.
    pub fn assert_exit(&mut self, code: i32) {
        let s = self.wait();
        assert_eq!(s.code(), Some(code), "exit status; {}", self.context());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a command to completion (stdin closed); returns (code, stdout, stderr).
pub fn run<S: AsRef<str>>(bin: &str, args: &[S]) -> (Option<i32>, String, String) {
    let mut p = Proc::spawn(bin, args);
    let status = p.wait();
    let mut out = Vec::new();
    if let Some(rx) = p.lines.take() {
        while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
            out.push(l);
        }
    }
    (status.code(), out.join("\n"), p.stderr())
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("zre-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `type` of an event.
pub fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

/// True for 32 upper-case hex digits.
pub fn is_uuid_hex(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// A CZMQ log line: a level letter, ": ", then a `yy-mm-dd hh:mm:ss` date.
fn is_czmq_log(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b"EWNID".contains(&b[0])
        && &b[1..3] == b": "
        && b[5] == b'-'
        && b[8] == b'-'
        && b[14] == b':'
}
