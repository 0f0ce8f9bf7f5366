//! Exit paths: SIGTERM and SIGINT (peers see EXIT at once), a closed pipe (also while
//! idle), bad arguments in one line, interrupted senders (130), runtime failures.

mod cli_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::*;

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Long evasive and expiry timers: an EXIT seen within DEADLINE came from the leaving
/// node's goodbye, not from expiry.
fn slow_expiry(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = with(port, &["--evasive", "20s", "--expired", "60s"]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn signal_exits_cleanly(port: u16, sig: &str, bin: &str, args: &[&str]) {
    let mut observer = Proc::spawn(LISTEN, &slow_expiry(port, &["--name", "observer"]));
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if bin == PING {
        // zre-ping's --interval is the ping period; its beacon interval has another name.
        args.extend(["--interface", "lo", "--port", &port.to_string()].map(String::from));
        args.extend(
            [
                "--beacon-interval",
                "100ms",
                "--evasive",
                "20s",
                "--expired",
                "60s",
            ]
            .map(String::from),
        );
    } else {
        args.extend(slow_expiry(port, &[]));
    }
    // Its stdin stays open: zre-shout is still reading when the signal comes.
    let mut p = Proc::spawn_stdin(bin, &args);
    let enter = observer.expect("enter", |v| kind(v) == "enter" && v["name"] == "victim");
    let uuid = enter["peer"].as_str().unwrap().to_string();
    p.signal(sig);
    p.assert_exit(0);
    assert_eq!(p.stderr(), "", "nothing on stderr");
    observer.expect("exit", |v| kind(v) == "exit" && v["peer"] == uuid.as_str());
}

#[test]
fn sigterm_stops_listen_cleanly() {
    let port = 46030;
    let mut observer = Proc::spawn(LISTEN, &slow_expiry(port, &["--name", "observer"]));
    let mut victim = Proc::spawn(LISTEN, &slow_expiry(port, &["--name", "victim"]));
    let enter = observer.expect("enter", |v| kind(v) == "enter" && v["name"] == "victim");
    victim.expect("observer", |v| {
        kind(v) == "enter" && v["name"] == "observer"
    });
    victim.signal("TERM");
    victim.assert_exit(0);
    let rest = victim.rest();
    assert_eq!(
        rest.last().map(kind),
        Some("stop"),
        "stop comes last: {rest:?}"
    );
    assert_eq!(victim.stderr(), "");
    observer.expect("exit", |v| kind(v) == "exit" && v["peer"] == enter["peer"]);
}

#[test]
fn sigint_stops_ping_cleanly() {
    signal_exits_cleanly(46031, "INT", PING, &["--name", "victim"]);
}

#[test]
fn sigint_stops_shout_waiting_on_stdin() {
    signal_exits_cleanly(
        46032,
        "INT",
        SHOUT,
        &["--name", "victim", "--peers", "0", "G"],
    );
}

#[test]
fn sigterm_stops_whisper_waiting_for_its_peer() {
    signal_exits_cleanly(
        46033,
        "TERM",
        WHISPER,
        &["--name", "victim", "--wait", "1m", "nobody"],
    );
}

#[test]
fn a_closed_pipe_exits_0_without_a_word() {
    let port = 46034;
    let mut listen = Proc::spawn_closed_stdout(LISTEN, &with(port, &["--group", "P"]));
    let mut shout = Proc::spawn(SHOUT, &with(port, &["P", "hi"]));
    listen.assert_exit(0);
    assert_eq!(listen.stderr(), "");
    shout.wait();
}

#[test]
fn bad_arguments_exit_2() {
    let port = 46035.to_string();
    let lo = ["--interface", "lo", "--port", &port];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (LISTEN, vec!["--bogus"]),
        (LISTEN, vec!["--interval", "soon"]),
        (LISTEN, vec!["--interval", "0s"]),
        (LISTEN, vec!["--header", "novalue"]),
        (LISTEN, vec!["--format", "xml"]),
        (SHOUT, vec![]),
        (SHOUT, vec!["--json", "G", "message"]),
        (WHISPER, vec![]),
        (PING, vec!["--count", "0"]),
        (DIR, vec![]),
        (DIR, vec!["--format", "yaml", "/tmp/x"]),
    ];
    for (bin, extra) in cases {
        let mut args: Vec<&str> = lo.to_vec();
        args.extend(&extra);
        let (code, out, err) = run(bin, &args);
        assert_eq!(code, Some(2), "{bin} {extra:?}: {err}");
        assert!(out.is_empty(), "{bin} {extra:?}: {out}");
        assert!(err.contains("error:"), "{bin} {extra:?}: {err}");
    }
}

#[test]
fn help_exits_0() {
    for bin in [LISTEN, SHOUT, WHISPER, PING, DIR] {
        let (code, out, _) = run(bin, &["--help"]);
        assert_eq!(code, Some(0));
        assert!(out.contains("--interface"), "{out}");
    }
}

#[test]
fn no_such_interface_is_a_usage_error_in_one_line() {
    // No node can start on an interface that does not exist: nothing goes on the network.
    // Before (issue 11, item 13): exit 1.
    let out = std::process::Command::new(LISTEN)
        .args(["--interface", "nosuch0", "--port", "46036"])
        .env_remove("ZRE_INTERFACE")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("zre-listen: error: --interface 'nosuch0': "),
        "{err}"
    );
}

#[test]
fn out_of_range_durations_are_usage_errors_in_one_line() {
    // Before: --timeout/--wait too long to add to the clock panicked (exit 101),
    // --interval 1ns flooded the LAN, --interval of a billion years sent no beacon and
    // exited 0, and evasive >= expired was accepted (peers flapped).
    let port = 47800.to_string();
    let lo = ["--interface", "lo", "--port", &port];
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (LISTEN, vec!["--timeout", "500000000000y"], "at most a year"),
        (
            SHOUT,
            vec!["--wait", "500000000000y", "G", "hi"],
            "at most a year",
        ),
        (LISTEN, vec!["--interval", "500000000000y"], "at most"),
        (LISTEN, vec!["--interval", "2d"], "at most a day"),
        (LISTEN, vec!["--interval", "1ns"], "at least 10ms"),
        (PING, vec!["--beacon-interval", "1ms"], "at least 10ms"),
        (PING, vec!["--interval", "500000000000y"], "at most a year"),
        (LISTEN, vec!["--expired", "2d"], "at most a day"),
        (
            LISTEN,
            vec!["--evasive", "10s", "--expired", "5s"],
            "evasive (10s) must be shorter than expired (5s)",
        ),
        (
            LISTEN,
            vec!["--evasive", "1ms", "--expired", "2ms"],
            "at least 100ms",
        ),
        (
            WHISPER,
            vec!["--evasive", "5s", "--expired", "6s", "somebody", "hi"],
            "must be shorter than expired (6s)",
        ),
        (
            DIR,
            vec!["--evasive", "30s", "/tmp/x"],
            "must be shorter than",
        ),
    ];
    for (bin, extra, want) in cases {
        let mut args: Vec<&str> = lo.to_vec();
        args.extend(&extra);
        let (code, out, err) = run(bin, &args);
        assert_eq!(code, Some(2), "{bin} {extra:?}: {err}");
        assert!(out.is_empty(), "{bin} {extra:?}: {out}");
        // clap's own "error: ..." (then a hint), or ours: one line "zre-xxx: error: ...".
        let first = err.lines().next().unwrap_or_default();
        let ours = first.starts_with(&format!("{}: error: ", bin.rsplit('/').next().unwrap()));
        assert!(ours == (err.lines().count() == 1), "{bin} {extra:?}: {err}");
        assert!(
            (first.starts_with("error: ") || ours) && first.contains(want),
            "{bin} {extra:?}: want {want:?} in the first line: {err}"
        );
    }
}

/// Spawns `bin args` with stdout a pipe we read `lines` lines from, then close, as
/// `| head -N` does; returns how long it took to exit after that, and its exit code.
/// It then has nothing to print (a quiet network): only watching stdout can end it.
fn exits_when_the_reader_leaves(
    bin: &str,
    args: &[String],
    lines: usize,
) -> (Duration, Option<i32>) {
    use std::io::BufRead as _;
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("ZRE_INTERFACE")
        .env_remove("ZRE_PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut child = Reap(child);
    for _ in 0..lines {
        let mut l = String::new();
        out.read_line(&mut l).expect("read a line");
        assert!(!l.is_empty(), "{bin} ended before printing a line");
    }
    // Idle for a while first: it must notice the reader leave while it prints nothing.
    std::thread::sleep(Duration::from_millis(600));
    drop(out);
    let closed = Instant::now();
    loop {
        if let Some(s) = child.0.try_wait().expect("try_wait") {
            let took = closed.elapsed();
            let mut err = String::new();
            use std::io::Read as _;
            let _ = child
                .0
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            assert_eq!(err, "", "{bin}: nothing on stderr");
            return (took, s.code());
        }
        assert!(
            closed.elapsed() < Duration::from_secs(10),
            "{bin} {args:?} still runs 10 s after its reader left"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn listen_and_ping_end_when_their_reader_leaves_on_a_quiet_network() {
    // `zre-listen | head -1`: before (issue 11, item 1) it ran until the next event,
    // which on a quiet network never comes.
    let port = 46100;
    let mut peer = Proc::spawn(LISTEN, &with(port, &["--name", "quiet"]));
    let ping_args = {
        let mut a = vec![
            "--interface",
            "lo",
            "--port",
            "46100",
            "--beacon-interval",
            "100ms",
        ];
        a.extend(["--name", "pinger"]);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<String>, usize)> = vec![
        (LISTEN, with(port, &[]), 1),
        (LISTEN, with(port, &["--format", "human"]), 1),
        (LISTEN, with(port, &["--group", "CHAT"]), 0),
        (PING, ping_args, 1),
    ];
    for (bin, args, lines) in cases {
        let (took, code) = exits_when_the_reader_leaves(bin, &args, lines);
        eprintln!("{bin} {args:?}: exited {code:?} {took:?} after its reader left");
        assert_eq!(code, Some(0), "{bin} {args:?}");
        // Noticed at once; the stop (goodbye to peers) takes a tick. Slack for a
        // loaded machine.
        assert!(took < Duration::from_secs(1), "{bin} {args:?}: {took:?}");
    }
    peer.signal("TERM");
    peer.assert_exit(0);
}

#[test]
fn senders_interrupted_before_delivery_exit_130() {
    // Before (issue 11, item 10): exit 0 when interrupted while waiting for the
    // recipients with a MESSAGE in hand; exit 1 when interrupted with messages on a
    // backed-up link. Now non-zero whenever something was not delivered: 128 + the
    // signal, as a shell reports a process that signal killed. Before (the same item,
    // second part): 130 for SIGTERM and SIGHUP too (the handler did not say which came).
    let port = 46101;
    for (bin, sig, code_wanted, extra) in [
        (SHOUT, "INT", 130, vec!["--wait", "1m", "NOBODY", "hello"]),
        (WHISPER, "INT", 130, vec!["--wait", "1m", "nobody", "hello"]),
        (SHOUT, "TERM", 143, vec!["--wait", "1m", "NOBODY", "hello"]),
        (
            WHISPER,
            "TERM",
            143,
            vec!["--wait", "1m", "nobody", "hello"],
        ),
        (SHOUT, "HUP", 129, vec!["--wait", "1m", "NOBODY", "hello"]),
    ] {
        let mut p = Proc::spawn(bin, &with(port, &extra));
        std::thread::sleep(Duration::from_millis(500));
        p.signal(sig);
        let code = p.wait().code();
        let err = p.stderr();
        assert_eq!(code, Some(code_wanted), "{bin} SIG{sig} {extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("interrupted") && err.contains("the message was not sent"),
            "{err}"
        );
    }
}

/// A command, its arguments, its environment, and what its one line must say.
type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn usage_errors_are_one_short_line_naming_the_source_exit_2() {
    // Before (issue 11, items 13 and 15): a too-long name, group or header and an
    // unknown interface exited 1 (clap echoed the whole value over several lines);
    // -p 0, an empty name or group and a duplicate header key were accepted;
    // ZRE_PORT=abc was reported as "--port" without saying it came from the variable.
    let long = "x".repeat(256);
    let long_header = format!("{long}=v");
    let port = "46102";
    let lo = ["--interface", "lo", "--port", port];
    let cases: Vec<Case> = vec![
        (LISTEN, vec!["--name", &long], vec![], "--name 'xxx"),
        (LISTEN, vec!["--group", &long], vec![], "256 bytes"),
        (LISTEN, vec!["--header", &long_header], vec![], "256 bytes"),
        (SHOUT, vec![&long, "hi"], vec![], "at most 255"),
        (
            LISTEN,
            vec!["--name", ""],
            vec![],
            "--name '': must not be empty",
        ),
        (
            LISTEN,
            vec!["--group", ""],
            vec![],
            "--group '': must not be empty",
        ),
        (SHOUT, vec!["", "hi"], vec![], "must not be empty"),
        (
            LISTEN,
            vec!["--header", "k=1", "--header", "k=2"],
            vec![],
            "--header 'k' is given twice",
        ),
        (
            LISTEN,
            vec!["--format", "xml"],
            vec![],
            "possible values: json, human",
        ),
        (
            LISTEN,
            vec!["--bogus"],
            vec![],
            "unexpected argument '--bogus'",
        ),
        (
            WHISPER,
            vec!["-g", "CHAT", "bob", "hi"],
            vec![],
            "zre-whisper joins no group",
        ),
        (
            SHOUT,
            vec!["-g", "A", "-g", "B", "hi"],
            vec![],
            "one -g GROUP",
        ),
    ];
    let env_cases: Vec<Case> = vec![
        (
            LISTEN,
            vec!["--interface", "lo", "-p", "0"],
            vec![],
            "--port '0'",
        ),
        (
            LISTEN,
            vec!["--port", port, "--interface", &long],
            vec![],
            "256 bytes",
        ),
        (
            DIR,
            vec!["--interface", "lo", "--port", "0", "/tmp/x"],
            vec![],
            "--port '0'",
        ),
        (
            LISTEN,
            vec!["--interface", "lo"],
            vec![("ZRE_PORT", "abc")],
            "ZRE_PORT=abc: invalid digit",
        ),
        (
            LISTEN,
            vec!["--port", port],
            vec![("ZRE_INTERFACE", "nosuch0")],
            "ZRE_INTERFACE=nosuch0: no IPv4 interface",
        ),
        (
            LISTEN,
            vec!["--port", port],
            vec![("ZSYS_INTERFACE", "nosuch0")],
            "ZSYS_INTERFACE=nosuch0: no IPv4 interface",
        ),
        (
            LISTEN,
            vec!["--interface", "nosuch0", "--port", port],
            vec![],
            "--interface 'nosuch0': no IPv4 interface",
        ),
        // IPv6 mode, by flag or as Zyre reads it, looks among IPv6 addresses.
        (
            LISTEN,
            vec!["--ipv6", "--interface", "nosuch0", "--port", port],
            vec![],
            "--interface 'nosuch0': no IPv6 interface",
        ),
        (
            LISTEN,
            vec!["--interface", "127.0.0.1", "--port", port],
            vec![("ZSYS_IPV6", "1")],
            "--interface '127.0.0.1': no IPv6 interface",
        ),
        (
            LISTEN,
            vec!["--interface", "lo", "--port", port],
            vec![("ZSYS_IPV6", "maybe")],
            "ZSYS_IPV6=maybe: value was not a boolean",
        ),
    ];
    let plain = cases.into_iter().map(|(b, a, e, w)| {
        let mut args: Vec<&str> = lo.to_vec();
        args.extend(a);
        (b, args, e, w)
    });
    for (bin, args, env, want) in plain.chain(env_cases) {
        let mut cmd = Command::new(bin);
        cmd.args(&args)
            .env_remove("ZRE_INTERFACE")
            .env_remove("ZSYS_INTERFACE")
            .env_remove("ZRE_PORT")
            .env_remove("ZSYS_IPV6")
            .stdin(Stdio::null());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        let what = format!(
            "{bin} {} {env:?}",
            args.join(" ").chars().take(80).collect::<String>()
        );
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(err.len() < 300, "{what}: short: {err}");
        assert!(
            !err.contains(&"x".repeat(100)),
            "{what}: no long echo: {err}"
        );
        let name = bin.rsplit('/').next().unwrap();
        assert!(
            err.starts_with(&format!("{name}: error: ")),
            "{what}: {err}"
        );
        assert!(err.contains(want), "{what}: want {want:?}: {err}");
    }
}

#[test]
fn shout_dash_g_names_the_group_so_the_words_are_the_message() {
    // Before (issue 11, item 13): `echo x | zre-shout -g CHAT hello` joined CHAT and
    // waited for a group called "hello". Now -g names the group to shout to.
    let port = 46103;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--group", "CHAT"]));
    let mut shout = Proc::spawn_stdin(SHOUT, &with(port, &["-g", "CHAT", "hello", "there"]));
    shout.write_stdin(b"x\n");
    shout.close_stdin();
    let s = listen.expect("the shout", |v| kind(v) == "shout");
    assert_eq!(s["group"], "CHAT");
    assert_eq!(s["text"], "hello there");
    shout.assert_exit(0);
    // zre-shout -g joins no group: the listener saw no join.
    assert!(
        !listen.seen.iter().any(|l| l.contains(r#""type":"join""#)),
        "{:?}",
        listen.seen
    );
}
