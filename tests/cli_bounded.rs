//! The tools behind a slow reader (ports 46060-46061): zre-listen whose output nobody
//! reads keeps its memory bounded while zre-shout waits, and loses nothing; zre-whisper
//! waiting on a backed-up link stops at once on Ctrl-C and says what was not sent.

mod cli_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::*;

/// A process's peak resident memory (VmHWM), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Kills and reaps a child when dropped (also when the test fails).
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn line(i: usize) -> String {
    // 1 KiB with its newline: the number, then padding.
    format!("{i:08} {}\n", "x".repeat(1024 - 10))
}

#[test]
fn zre_listen_behind_a_paused_reader_stays_small_and_every_line_arrives() {
    const N: usize = 200_000;
    let port = 46060;
    let mut listen = Reap(
        Command::new(LISTEN)
            .args(node_args(port))
            .args(["--name", "listener", "-g", "BULK"])
            .env_remove("ZRE_INTERFACE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(listen.0.stdout.take().unwrap());
    // zre-listen prints nothing before its first event; wait for the shouter's ENTER
    // below, once it runs.
    let mut shout = Reap(
        Command::new(SHOUT)
            .args(node_args(port))
            .args(["--name", "shouter", "BULK"])
            .env_remove("ZRE_INTERFACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut input = shout.0.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut buf = std::io::BufWriter::new(&mut input);
        for i in 0..N {
            if buf.write_all(line(i).as_bytes()).is_err() {
                return i;
            }
        }
        N
    });
    // Nobody reads zre-listen's output for a while: it blocks on the full pipe, and the
    // shouter must wait for it.
    std::thread::sleep(Duration::from_secs(8));
    let paused_peak = peak_rss(listen.0.id());
    let mut got = 0;
    let mut buf = String::new();
    let give_up = Instant::now() + Duration::from_secs(120);
    while got < N && Instant::now() < give_up {
        buf.clear();
        if out.read_line(&mut buf).unwrap() == 0 {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&buf).unwrap();
        match kind(&v) {
            "shout" => {
                let text = v["text"].as_str().unwrap();
                assert_eq!(text.len(), 1023, "untouched");
                let n: usize = text[..8].parse().unwrap();
                assert_eq!(n, got, "once and in order");
                got += 1;
            }
            "exit" => panic!("the listener saw the shouter leave: {buf}"),
            _ => {}
        }
    }
    let peak = peak_rss(listen.0.id());
    assert_eq!(writer.join().unwrap(), N);
    let status = shout.0.wait().unwrap();
    eprintln!(
        "zre-listen peak RSS {} MB while paused, {} MB in all; {got} lines",
        paused_peak >> 20,
        peak >> 20
    );
    assert_eq!(got, N, "every line arrives");
    assert!(status.success(), "zre-shout: {status:?}");
    assert!(
        peak <= 64 << 20,
        "zre-listen grew to {} MB behind a paused reader",
        peak >> 20
    );
}

#[test]
fn zre_whisper_waiting_on_a_stopped_reader_exits_at_once_on_ctrl_c() {
    let port = 46061;
    // Long timers: the reader stays a peer however long it is stopped.
    let timers = ["--evasive", "60s", "--expired", "120s"];
    let mut reader = Proc::spawn(
        LISTEN,
        &[node_args(port), vec!["--name".into(), "reader".into()]].concat(),
    );
    let mut args = node_args(port);
    args.extend(timers.iter().map(|s| s.to_string()));
    args.push("reader".into());
    let mut w = Proc::spawn_stdin(WHISPER, &args);
    reader.expect("whisperer", |v| kind(v) == "enter");
    // Stop the reader, then feed the whisperer far more than the link holds.
    reader.signal("STOP");
    let mut input = w.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let one = line(0);
        for _ in 0..200_000 {
            if input.write_all(one.as_bytes()).is_err() {
                return;
            }
        }
    });
    // Let it back up (the whisperer then waits), then interrupt it.
    std::thread::sleep(Duration::from_secs(4));
    let started = Instant::now();
    w.signal("INT");
    let status = w.wait();
    let took = started.elapsed();
    reader.signal("CONT");
    eprintln!("zre-whisper exited {:?} after {took:?}", status.code());
    // 130: interrupted before everything was delivered (issue 11, item 10).
    assert_eq!(status.code(), Some(130), "{}", w.stderr());
    let err = w.stderr();
    assert!(err.contains("not sent"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Within a tick or two of the signal (a loaded machine gets some slack).
    assert!(took < Duration::from_secs(2), "took {took:?}");
    drop(w);
    let _ = feeder.join();
}
