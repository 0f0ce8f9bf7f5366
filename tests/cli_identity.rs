//! Every command's --uuid, --identity, --mailbox-port and --no-beacon (issue 13): a UUID
//! as given or kept in a file across restarts (a crash and restart is EXIT then ENTER to
//! a peer), a fixed mailbox port in the ENTER its peers print, and a node without beacons
//! that a peer meets by `require_peer` alone.
//!
//! Beacon ports 46310-46329.

mod cli_support;

use std::process::Command;
use std::time::Duration;

use cli_support::*;
use serde_json::Value;

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// A TCP port free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Each command with `flags` and the operands it needs to start its node.
/// zre-dir's DIR is `dir`.
fn each_command(
    port: u16,
    flags: &[&str],
    dir: &std::path::Path,
) -> Vec<(&'static str, Vec<String>)> {
    let operands: [(&str, Vec<String>); 6] = [
        (LISTEN, vec![]),
        (SHOUT, vec!["G".into(), "m".into()]),
        (WHISPER, vec!["nobody".into(), "m".into()]),
        (PING, vec![]),
        (DIR, vec![dir.to_string_lossy().into_owned()]),
        (PEERS, vec![]),
    ];
    operands
        .into_iter()
        .map(|(bin, ops)| {
            let mut a = with(port, flags);
            a.extend(ops);
            (bin, a)
        })
        .collect()
}

/// How many UDP sockets process `pid` holds (its descriptors against /proc/net/udp).
fn udp_sockets_of(pid: u32) -> usize {
    let table = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    let udp: std::collections::HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(9).map(|i| format!("socket:[{i}]")))
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the process's descriptors")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| udp.contains(&*target.to_string_lossy()))
        .count()
}

fn enter_of<'a>(uuid: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| kind(v) == "enter" && v["peer"] == uuid
}

#[test]
fn uuid_is_taken_in_any_case_and_a_bad_one_is_a_usage_error() {
    let port = 46310;
    let want = "0123456789ABCDEF0123456789ABCDEF";
    let mut b = Proc::spawn(LISTEN, &with(port, &["--name", "b"]));
    let _a = Proc::spawn(
        LISTEN,
        &with(
            port,
            &[
                "--name",
                "a",
                "--uuid",
                "01234567-89ab-cdef-0123-456789ABCDEF",
            ],
        ),
    );
    b.expect("a enters with its UUID", enter_of(want));
    let mut cmd = Command::new(LISTEN);
    cmd.args(with(port, &["--name", "c"]))
        .env("ZRE_UUID", "fedcba9876543210fedcba9876543210");
    let _c = Proc::command(LISTEN, cmd);
    b.expect(
        "c enters with ZRE_UUID's",
        enter_of("FEDCBA9876543210FEDCBA9876543210"),
    );

    for bin in [LISTEN, SHOUT, WHISPER, PING, DIR, PEERS] {
        let (code, _, err) = run(bin, &with(port, &["--uuid", "0123"]));
        assert_eq!(code, Some(2), "{bin}: {err}");
        assert!(err.contains("--uuid '0123': not a UUID"), "{bin}: {err}");
        let (code, _, err) = run(bin, &with(port, &["--uuid", want, "--identity", "x"]));
        assert_eq!(code, Some(2), "{bin}: {err}");
        assert!(err.contains("cannot be used with"), "{bin}: {err}");
    }
}

#[test]
fn an_identity_file_survives_a_crash_and_peers_see_exit_then_enter() {
    let port = 46311;
    let dir = TempDir::new("cli-identity");
    let file = dir.0.join("listen.id");
    let file_arg = file.to_str().unwrap();
    let mut b = Proc::spawn(LISTEN, &with(port, &["--name", "b", "--expired", "60s"]));
    let mut a = Proc::spawn(
        LISTEN,
        &with(port, &["--name", "a", "--identity", file_arg]),
    );
    let first = b.expect("a enters", |v| kind(v) == "enter" && v["name"] == "a");
    let uuid = first["peer"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{uuid}\n"));
    // SIGKILL: no goodbye. B holds A until the new process says HELLO.
    a.kill();
    let _again = Proc::spawn(
        LISTEN,
        &with(port, &["--name", "a", "--identity", file_arg]),
    );
    let exit = b.expect("the old a exits", |v| {
        kind(v) != "evasive" && v["peer"] == *uuid
    });
    assert_eq!(kind(&exit), "exit", "{exit}");
    let second = b.expect("the new a enters", enter_of(&uuid));
    assert_ne!(second["endpoint"], first["endpoint"], "a new mailbox port");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{uuid}\n"));

    // A file that is not a UUID: a runtime failure naming it.
    let bad = dir.0.join("bad.id");
    std::fs::write(&bad, "hello\n").unwrap();
    for (bin, args) in each_command(port, &["--identity", bad.to_str().unwrap()], &dir.0) {
        let (code, _, err) = run(bin, &args);
        assert_eq!(code, Some(1), "{bin}: {err}");
        assert!(
            err.contains(&format!("identity file {}", bad.display())),
            "{bin}: {err}"
        );
    }
}

#[test]
fn a_fixed_mailbox_port_is_in_the_enter_peers_see_and_one_in_use_fails() {
    let port = 46312;
    let mailbox = free_port();
    let dir = TempDir::new("cli-mailbox");
    let mut b = Proc::spawn(LISTEN, &with(port, &["--name", "b"]));
    let _a = Proc::spawn(
        LISTEN,
        &with(
            port,
            &["--name", "a", "--mailbox-port", &mailbox.to_string()],
        ),
    );
    let v = b.expect("a enters", |v| kind(v) == "enter" && v["name"] == "a");
    assert_eq!(v["endpoint"], format!("tcp://127.0.0.1:{mailbox}"));
    // Taken now by a: every command fails naming it.
    for (bin, args) in each_command(port, &["--mailbox-port", &mailbox.to_string()], &dir.0) {
        let (code, _, err) = run(bin, &args);
        assert_eq!(code, Some(1), "{bin}: {err}");
        assert!(
            err.contains(&format!("127.0.0.1:{mailbox}")),
            "{bin}: {err}"
        );
        assert!(err.contains("in use"), "{bin}: {err}");
    }
}

#[test]
fn without_beacons_a_command_is_met_only_by_require_peer() {
    let port = 46313;
    let mailbox = free_port();
    let uuid = "0BEAC0440000000000000000000000AB";
    let mut quiet = Proc::spawn(
        LISTEN,
        &with(
            port,
            &[
                "--name",
                "quiet",
                "--no-beacon",
                "--uuid",
                uuid,
                "--mailbox-port",
                &mailbox.to_string(),
            ],
        ),
    );
    // A beaconing command on the same port never meets it.
    let mut loud = Proc::spawn(LISTEN, &with(port, &["--name", "loud"]));
    // A library node without beacons connects to it by UUID and endpoint.
    let node = zre::Node::builder()
        .name("lib")
        .interface("lo")
        .port(port)
        .beacon(false)
        .start()
        .unwrap();
    let peer = zre::Uuid::parse_str(uuid).unwrap();
    node.require_peer(peer, &format!("tcp://127.0.0.1:{mailbox}"))
        .unwrap();
    let lib = zre::uuid_hex(&node.uuid());
    quiet.expect("lib enters", enter_of(&lib));
    let deadline = std::time::Instant::now() + DEADLINE;
    while node.peer_info(peer).is_none() {
        assert!(std::time::Instant::now() < deadline, "quiet never entered");
        let _ = node.recv_timeout(Duration::from_millis(50));
    }
    node.whisper(peer, vec![b"found you".to_vec()]).unwrap();
    let w = quiet.expect("the whisper", |v| kind(v) == "whisper");
    assert_eq!(w["text"], "found you");
    assert_eq!(w["peer"], lib);
    // No UDP socket in quiet; loud's beacon socket shows the check sees one.
    assert_eq!(udp_sockets_of(quiet.pid()), 0);
    // (loud prints nothing when it starts: wait until its socket is there.)
    let deadline = std::time::Instant::now() + DEADLINE;
    while udp_sockets_of(loud.pid()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "loud has no UDP socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nobody else: loud heard no one, quiet met only lib.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        loud.next_json(Duration::from_millis(100)).is_none(),
        "{}",
        loud.context()
    );
    assert!(
        quiet.next_json(Duration::from_millis(100)).is_none(),
        "{}",
        quiet.context()
    );
}

#[test]
fn without_beacons_a_command_meets_a_peer_by_endpoint_alone() {
    // Beacon ports 46330-46331: nothing beacons here anyway.
    let port = 46330;
    let mailbox = free_port();
    let mut quiet = Proc::spawn(
        LISTEN,
        &with(
            port,
            &[
                "--name",
                "quiet",
                "--no-beacon",
                "--mailbox-port",
                &mailbox.to_string(),
            ],
        ),
    );
    let endpoint = format!("tcp://127.0.0.1:{mailbox}");
    let mut seeker = Proc::spawn(
        LISTEN,
        &with(
            port,
            &["--name", "seeker", "--no-beacon", "--peer", &endpoint],
        ),
    );
    let e = seeker.expect("quiet enters", |v| {
        kind(v) == "enter" && v["name"] == "quiet"
    });
    assert_eq!(e["endpoint"], endpoint.as_str());
    quiet.expect("seeker enters", |v| {
        kind(v) == "enter" && v["name"] == "seeker"
    });
    // zre-whisper finds quiet by name through ZRE_PEERS, and its whisper arrives.
    let mut w = Command::new(WHISPER);
    w.args(with(
        port,
        &["--name", "w", "--no-beacon", "quiet", "by endpoint"],
    ))
    .env("ZRE_PEERS", &endpoint);
    let out = w.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = quiet.expect("the whisper", |v| kind(v) == "whisper" && v["name"] == "w");
    assert_eq!(got["text"], "by endpoint");
    // A bad endpoint is a usage error, not a panic.
    let (code, _, err) = run(LISTEN, &with(port, &["--peer", "127.0.0.1:1"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tcp://HOST:PORT"), "{err}");
}
