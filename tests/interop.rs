//! Interop with pyre (PyPI `zeromq-pyre`), the Python ZRE implementation: our in-process
//! nodes and a pyre node in a child process (`tests/interop/pyre_peer.py --loopback`, which
//! confines pyre to 127.0.0.1/127.255.255.255), each test on its own beacon port
//! (47200-47299).
//!
//! pyre comes from `ZRE_PYTHON` or `.venv/bin/python`. Without it these tests print why
//! and pass, unless `ZRE_REQUIRE_PYRE=1` (CI), where they fail.
//!
//! pyre quirks the tests steer around (they are pyre's bugs, not ours): it cannot send
//! zero content frames, and it uses a 10 s evasive / 30 s expired timeout by default.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use zre::{Event, Uuid};

/// Skips (or fails, under `ZRE_REQUIRE_PYRE=1`) when pyre is missing.
macro_rules! pyre_or_skip {
    ($test:expr) => {
        match require_pyre($test) {
            Some(py) => py,
            None => return,
        }
    };
}

#[test]
fn rust_first_then_pyre_discover_each_other_with_headers() {
    let py = pyre_or_skip!("rust_first_then_pyre_discover_each_other_with_headers");
    let node = builder(47201, "rusty")
        .header("X-Impl", "zre")
        .header("X-Unicode", "ünï ✓")
        .start()
        .unwrap();
    let mut inode = inbox(&node, "rusty");
    let mut p = pyre_peer(
        &py,
        47201,
        "pyro",
        &["--header", "X-Impl=pyre", "--header", "X-Two=2"],
    );

    let e = inode.expect("ENTER pyro", is_enter(p.uuid));
    let Event::Enter {
        name,
        headers,
        endpoint,
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(&*name, "pyro");
    assert_eq!(
        headers.into_iter().collect::<Vec<_>>(),
        vec![
            ("X-Impl".to_string(), "pyre".to_string()),
            ("X-Two".to_string(), "2".to_string())
        ]
    );
    assert_eq!(endpoint, p.ready["endpoint"].as_str().unwrap());
    assert!(endpoint.starts_with("tcp://127.0.0.1:"), "{endpoint}");
    assert_eq!(node.peers(), vec![p.uuid]);
    assert_eq!(node.peer_name(p.uuid).as_deref(), Some("pyro"));
    assert_eq!(
        node.peer_header_value(p.uuid, "X-Two").as_deref(),
        Some("2")
    );

    let e = p.expect("ENTER rusty", js("enter", node.uuid()));
    assert_eq!(e["name"], "rusty");
    assert_eq!(e["headers"], json!({"X-Impl": "zre", "X-Unicode": "ünï ✓"}));
    assert_eq!(e["endpoint"], node.endpoint());
    assert_eq!(p.peers(), vec![node.uuid()]);
    assert!(p.stop().success());
}

#[test]
fn pyre_first_then_rust_discover_each_other() {
    let py = pyre_or_skip!("pyre_first_then_rust_discover_each_other");
    let mut p = pyre_peer(&py, 47202, "pyro", &[]);
    let node = start(47202, "rusty");
    let mut inode = inbox(&node, "rusty");
    let e = p.expect("ENTER rusty", js("enter", node.uuid()));
    assert_eq!(e["headers"], json!({}));
    let e = inode.expect("ENTER pyro", is_enter(p.uuid));
    assert_eq!(e.name(), "pyro");
    // A second Rust node joins the same network: everyone sees everyone.
    let other = start(47202, "rusty2");
    p.expect("ENTER rusty2", js("enter", other.uuid()));
    inode.expect("ENTER rusty2", is_enter(other.uuid()));
    inbox(&other, "rusty2").expect("ENTER pyro", is_enter(p.uuid));
    let mut want = vec![node.uuid(), other.uuid()];
    want.sort();
    assert_eq!(p.peers(), want);
    assert!(p.stop().success());
}

#[test]
fn groups_join_and_leave_both_ways() {
    let py = pyre_or_skip!("groups_join_and_leave_both_ways");
    // Groups joined before meeting travel in HELLO; later ones as JOIN/LEAVE.
    let mut p = pyre_peer(&py, 47203, "pyro", &["--group", "PG"]);
    let node = start(47203, "rusty");
    node.join("RG").unwrap();
    let mut inode = inbox(&node, "rusty");
    inode.expect("ENTER pyro", is_enter(p.uuid));
    inode.expect("JOIN pyro PG (HELLO)", is_join(p.uuid, "PG"));
    p.expect("ENTER rusty", js("enter", node.uuid()));
    p.expect("JOIN rusty RG", jsg("join", node.uuid(), "RG"));
    assert_eq!(node.peers_by_group("PG"), vec![p.uuid]);

    // Rust -> pyre. Every JOIN/LEAVE carries status+1; pyre raises (a crash line, which
    // fails the test) on any mismatch, so several changes in a row check our status byte.
    node.join("G").unwrap();
    p.expect("JOIN rusty G", jsg("join", node.uuid(), "G"));
    node.leave("G").unwrap();
    p.expect("LEAVE rusty G", jsg("leave", node.uuid(), "G"));
    node.leave("RG").unwrap();
    p.expect("LEAVE rusty RG", jsg("leave", node.uuid(), "RG"));
    node.join("G").unwrap();
    let e = p.expect("JOIN rusty G again", jsg("join", node.uuid(), "G"));
    assert_eq!(e["name"], "rusty");

    // pyre -> Rust.
    p.join("G");
    let e = inode.expect("JOIN pyro G", is_join(p.uuid, "G"));
    assert_eq!(e.name(), "pyro");
    assert_eq!(node.peers_by_group("G"), vec![p.uuid]);
    p.leave("PG");
    inode.expect("LEAVE pyro PG", is_leave(p.uuid, "PG"));
    assert_eq!(node.peers_by_group("PG"), Vec::<Uuid>::new());
    assert_eq!(
        node.peer_groups(p.uuid)
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["G"]
    );
    // Still friends: pyre did not drop us, we did not drop pyre.
    assert_eq!(p.peers(), vec![node.uuid()]);
    assert_eq!(node.peers(), vec![p.uuid]);
    assert!(p.stop().success());
}

#[test]
fn whisper_and_shout_both_ways_with_binary_frames() {
    let py = pyre_or_skip!("whisper_and_shout_both_ways_with_binary_frames");
    let mut p = pyre_peer(&py, 47204, "pyro", &["--group", "G"]);
    let node = start(47204, "rusty");
    node.join("G").unwrap();
    let mut inode = inbox(&node, "rusty");
    inode.expect("ENTER pyro", is_enter(p.uuid));
    p.expect("ENTER rusty", js("enter", node.uuid()));
    p.expect("JOIN rusty G", jsg("join", node.uuid(), "G"));

    // Rust -> pyre: empty frames first/middle/last, all 256 byte values, a 70 kB frame.
    node.whisper(p.uuid, tricky_content()).unwrap();
    let e = p.expect("WHISPER from rusty", js("whisper", node.uuid()));
    assert_eq!(e["name"], "rusty");
    assert_eq!(frames_of(&e), tricky_content());
    node.shout("G", tricky_content()).unwrap();
    let e = p.expect("SHOUT from rusty", js("shout", node.uuid()));
    assert_eq!(e["group"], "G");
    assert_eq!(frames_of(&e), tricky_content());

    // pyre -> Rust.
    let small = tricky_content_small();
    p.whisper(node.uuid(), &small);
    let e = inode.expect("WHISPER from pyro", is_whisper(p.uuid));
    assert_eq!(
        e,
        Event::Whisper {
            peer: p.uuid,
            name: "pyro".into(),
            content: small.clone()
        }
    );
    let one: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    p.shout("G", &one);
    let e = inode.expect("SHOUT from pyro", is_shout(p.uuid));
    assert_eq!(
        e,
        Event::Shout {
            peer: p.uuid,
            name: "pyro".into(),
            group: "G".into(),
            content: one
        }
    );
    // Many messages keep their order and the link stays up (sequence numbers agree).
    for i in 0..200u32 {
        node.whisper(p.uuid, vec![i.to_be_bytes().to_vec()])
            .unwrap();
    }
    for i in 0..200u32 {
        let e = p.expect(&format!("whisper #{i}"), js("whisper", node.uuid()));
        assert_eq!(frames_of(&e), vec![i.to_be_bytes().to_vec()]);
    }
    for i in 0..200u32 {
        p.shout("G", &[i.to_be_bytes().to_vec()]);
    }
    for i in 0..200u32 {
        let e = inode.expect(&format!("shout #{i}"), is_shout(p.uuid));
        assert_eq!(e.content(), Some(&vec![i.to_be_bytes().to_vec()]));
    }
    assert_eq!(node.peers(), vec![p.uuid]);
    assert_eq!(p.peers(), vec![node.uuid()]);
    assert!(p.stop().success());
}

#[test]
fn graceful_stop_is_exit_at_once_both_ways() {
    let py = pyre_or_skip!("graceful_stop_is_exit_at_once_both_ways");
    // Everybody's expiry is minutes away: only the port-0 beacon explains a quick EXIT.
    let mut p = pyre_peer(
        &py,
        47205,
        "pyro",
        &["--evasive", "100", "--expired", "200"],
    );
    let leaver = builder(47205, "leaver")
        .expired_timeout(Duration::from_secs(200))
        .start()
        .unwrap();
    let stayer = builder(47205, "stayer")
        .evasive_timeout(Duration::from_secs(100))
        .expired_timeout(Duration::from_secs(200))
        .start()
        .unwrap();
    let mut istay = inbox(&stayer, "stayer");
    p.expect("ENTER leaver", js("enter", leaver.uuid()));
    p.expect("ENTER stayer", js("enter", stayer.uuid()));
    istay.expect("ENTER pyro", is_enter(p.uuid));
    inbox(&leaver, "leaver").expect("ENTER pyro", is_enter(p.uuid));

    // Rust stops: pyre sees EXIT.
    leaver.stop();
    let e = p.expect("EXIT leaver", js("exit", leaver.uuid()));
    assert_eq!(e["name"], "leaver");
    assert_eq!(p.peers(), vec![stayer.uuid()]);

    // pyre stops: Rust sees EXIT.
    assert!(p.stop().success(), "pyre exits 0 after a graceful stop");
    let e = istay.expect("EXIT pyro", is_exit(p.uuid));
    assert_eq!(e.name(), "pyro");
    assert_eq!(stayer.peers(), Vec::<Uuid>::new());
}

#[test]
fn idle_pyre_peer_answers_pings_and_stays() {
    let py = pyre_or_skip!("idle_pyre_peer_answers_pings_and_stays");
    // Our node does not take beacons as a sign of life for a known peer, so with a 1 s
    // evasive / 3 s expired timeout only pyre's PING-OKs keep it from going EVASIVE and
    // expiring; and pyre (evasive 1 s) pings us, which we must answer.
    let mut p = pyre_peer(&py, 47206, "pyro", &["--evasive", "1", "--expired", "3"]);
    let node = builder(47206, "rusty")
        .evasive_timeout(Duration::from_secs(1))
        .expired_timeout(Duration::from_secs(3))
        .start()
        .unwrap();
    let mut inode = inbox(&node, "rusty");
    inode.expect("ENTER pyro", is_enter(p.uuid));
    p.expect("ENTER rusty", js("enter", node.uuid()));
    let idle = inode.drain_for(Duration::from_secs(5));
    assert!(
        idle.iter().all(|e| !matches!(
            e,
            Event::Evasive { .. } | Event::Silent { .. } | Event::Exit { .. }
        )),
        "an idle but healthy pyre peer was reported: {idle:?}"
    );
    assert_eq!(node.peers(), vec![p.uuid]);
    assert_eq!(p.peers(), vec![node.uuid()]);
    // The link still carries messages both ways.
    node.whisper_str(p.uuid, "still there?").unwrap();
    p.expect("WHISPER after idling", js("whisper", node.uuid()));
    let stray: Vec<_> = p
        .pending()
        .into_iter()
        .filter(|v| v["type"] == "exit")
        .cloned()
        .collect();
    assert!(stray.is_empty(), "pyre dropped us while idle: {stray:?}");
    assert!(p.stop().success());
}

#[test]
fn killed_pyre_peer_is_evasive_then_silent_then_exits() {
    let py = pyre_or_skip!("killed_pyre_peer_is_evasive_then_silent_then_exits");
    let node = builder(47207, "rusty")
        .evasive_timeout(Duration::from_secs(1))
        .expired_timeout(Duration::from_secs(3))
        .start()
        .unwrap();
    let mut inode = inbox(&node, "rusty");
    let mut p = pyre_peer(&py, 47207, "pyro", &[]);
    inode.expect("ENTER pyro", is_enter(p.uuid));
    p.kill(); // SIGKILL: no port-0 beacon
    let order = death_of(&mut inode, "EVASIVE/SILENT/EXIT of pyro", p.uuid);
    assert_eq!(order, ["evasive", "silent", "exit"]);
    assert_eq!(node.peers(), Vec::<Uuid>::new());
}

#[test]
fn zre_ping_against_pyre_answering_like_zpinger() {
    let Some(py) = require_pyre("zre_ping_against_pyre_answering_like_zpinger") else {
        return;
    };
    let port = 47208;
    let mut pyre = pyre_peer(&py, port, "pyping", &["--zpinger"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zre-ping"))
        .args(["--interface", "lo", "--port", &port.to_string()])
        .args(["--beacon-interval", "100ms", "--name", "rsping"])
        .args([
            "--interval",
            "200ms",
            "--count",
            "3",
            "--reply-timeout",
            "5s",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run zre-ping");
    assert!(out.status.success(), "zre-ping failed: {:?}", out.status);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    let py_id = pyre.uuid.simple().to_string().to_uppercase();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|v| v["type"] == kind && v["peer"] == py_id.as_str())
            .collect()
    };
    assert_eq!(of("enter").len(), 1, "{lines:?}");
    // pyre, as zpinger, whispered "Hello" when we entered.
    assert!(
        of("whisper").iter().any(|v| v["text"] == "Hello"),
        "{lines:?}"
    );
    let rtts = of("rtt");
    assert_eq!(rtts.len(), 3, "{lines:?}");
    for (i, r) in rtts.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1);
    }
    let summary = of("summary");
    assert_eq!(summary.len(), 1, "{lines:?}");
    assert_eq!(summary[0]["sent"], 3);
    assert_eq!(summary[0]["received"], 3);
    // Our own "Hello" whisper from pyre was answered with a shout pyre heard.
    pyre.expect("our Hello shout", |v| {
        v["type"] == "shout" && v["group"] == "GLOBAL"
    });
    // zre-ping stopped cleanly: pyre saw us leave.
    pyre.expect("our exit", |v| v["type"] == "exit");
}

#[test]
fn pyre_peer_selftest_two_pyre_nodes_on_loopback() {
    // The test double itself, with no Rust node: two pyre_peer.py processes find each
    // other, exchange binary and text content in the tools' NDJSON, and every socket they
    // open is on 127.0.0.0/8 (tests/interop/selftest_pyre_peer.py, checked with `ss`).
    let py = pyre_or_skip!("pyre_peer_selftest_two_pyre_nodes_on_loopback");
    let out = std::process::Command::new(&py)
        .arg("-u")
        .arg(interop_script("selftest_pyre_peer.py"))
        .arg("47209")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run selftest_pyre_peer.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "selftest_pyre_peer.py failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\nOK: discovery"), "{stdout}");
}

#[test]
fn static_peer_by_endpoint_alone_meets_pyre_without_beacons() {
    // Our node opens no UDP socket: only its static link to pyre's mailbox meets pyre, and
    // pyre connects back to the endpoint in our HELLO. One HELLO each way: pyre would
    // re-create us on a second one.
    let py = pyre_or_skip!("static_peer_by_endpoint_alone_meets_pyre_without_beacons");
    let mut p = pyre_peer(&py, 47602, "pyro", &["--group", "G"]);
    let node = builder(47602, "rusty").beacon(false).start().unwrap();
    node.join("G").unwrap();
    let mut inode = inbox(&node, "rusty");
    node.connect_peer(p.ready["endpoint"].as_str().unwrap())
        .unwrap();
    inode.expect("ENTER pyro", is_enter(p.uuid));
    inode.expect("JOIN pyro G", is_join(p.uuid, "G"));
    p.expect("ENTER rusty", js("enter", node.uuid()));
    p.expect("JOIN rusty G", jsg("join", node.uuid(), "G"));
    // A JOIN on the re-keyed link keeps its sequence; so do many whispers.
    node.join("H").unwrap();
    p.expect("JOIN rusty H", jsg("join", node.uuid(), "H"));
    for i in 0..100u32 {
        node.whisper(p.uuid, vec![i.to_be_bytes().to_vec()])
            .unwrap();
    }
    for i in 0..100u32 {
        let e = p.expect(&format!("whisper #{i}"), js("whisper", node.uuid()));
        assert_eq!(frames_of(&e), vec![i.to_be_bytes().to_vec()]);
    }
    p.whisper(node.uuid(), &[b"back".to_vec()]);
    inode.expect("WHISPER from pyro", is_whisper(p.uuid));
    let late: Vec<_> = inode
        .drain_for(Duration::from_millis(1500))
        .into_iter()
        .filter(|e| matches!(e.kind(), "enter" | "exit"))
        .collect();
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(p.peers(), vec![node.uuid()]);
    assert!(p.stop().success());
}
