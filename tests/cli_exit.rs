//! Exit paths: SIGTERM and SIGINT (peers see EXIT at once), a closed pipe, bad arguments,
//! runtime failures.

mod cli_support;

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
fn no_such_interface_is_one_line_exit_1() {
    // No node can start on an interface that does not exist: nothing goes on the network.
    let out = std::process::Command::new(LISTEN)
        .args(["--interface", "nosuch0", "--port", "46036"])
        .env_remove("ZRE_INTERFACE")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("zre-listen: error: "), "{err}");
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
