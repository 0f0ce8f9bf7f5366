//! The tools fail loudly or not at all: `--verbose` with a stderr that is closed or full
//! keeps printing events. Ports 47810-47819.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use cli_support::*;
use serde_json::Value;

/// Kills (by PID) and reaps the child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// zre-listen `-v --count 3` in group G with the given stderr, while a zre-shout says hi
/// to G: its stdout must show enter, shout and exit, and it must exit 0.
fn listen_verbose_with_stderr(port: u16, stderr: Stdio) {
    let mut args = node_args(port);
    args.extend(["-v", "-g", "G", "--count", "3", "--name", "l"].map(String::from));
    let mut listen = Reaped(
        Command::new(LISTEN)
            .args(&args)
            .env_remove("ZRE_INTERFACE")
            .env_remove("ZRE_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn zre-listen"),
    );
    let out = listen.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut shout_args = node_args(port);
    shout_args.extend(["--name", "s", "G", "hi"].map(String::from));
    let _shout = Proc::spawn(SHOUT, &shout_args);

    let deadline = Instant::now() + DEADLINE;
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let v: Value = serde_json::from_str(&line).expect("JSON");
                kinds.push(kind(&v).to_string());
            }
            Err(_) => panic!("zre-listen printed only {kinds:?}"),
        }
    }
    assert_eq!(kinds, ["enter", "shout", "exit"]);
    loop {
        if let Some(status) = listen.0.try_wait().expect("try_wait") {
            assert_eq!(status.code(), Some(0), "zre-listen exit status");
            break;
        }
        assert!(Instant::now() < deadline, "zre-listen did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn verbose_with_stderr_closed_after_one_byte_still_prints_events() {
    // `2> >(head -c 1 >/dev/null)`. Before: the first log line after head left panicked
    // the driver thread; no events, exit 0 or 101.
    let mut head = Reaped(
        Command::new("head")
            .args(["-c", "1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn head"),
    );
    let pipe = head.0.stdin.take().expect("head's stdin");
    listen_verbose_with_stderr(47810, Stdio::from(pipe));
}

#[test]
fn verbose_with_stderr_on_dev_full_still_prints_events() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    listen_verbose_with_stderr(47811, Stdio::from(full));
}

#[test]
fn a_driver_panic_exits_1_with_a_message_and_peers_see_exit_at_once() {
    // Before: the tool took the dead driver for a clean stop and exited 0, and peers kept
    // the dead node until expiry (here 60 s).
    let port = 47812;
    let mut observer = Proc::spawn(
        LISTEN,
        &[
            node_args(port),
            ["--name", "observer", "--expired", "60s"]
                .map(String::from)
                .to_vec(),
        ]
        .concat(),
    );
    let mut args = node_args(port);
    args.extend(["--name", "victim", "--expired", "60s"].map(String::from));
    let mut victim = Reaped(
        Command::new(LISTEN)
            .args(&args)
            .env_remove("ZRE_INTERFACE")
            .env_remove("ZRE_PORT")
            .env("ZRE_INJECT_DRIVER_PANIC", "1s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zre-listen"),
    );
    let enter = observer.expect("enter", |v| kind(v) == "enter" && v["name"] == "victim");
    observer.expect("exit at once", |v| {
        kind(v) == "exit" && v["peer"] == enter["peer"]
    });
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = victim.0.try_wait().expect("try_wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the victim did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut victim.0.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("zre-listen: error: the node failed: driver panicked: injected"),
        "{err}"
    );
}
