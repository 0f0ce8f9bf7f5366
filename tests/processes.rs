//! Nodes in separate processes (the test double `zre-test-peer`, which prints the tools'
//! NDJSON and takes JSON commands), together with
//! in-process nodes, on loopback; each test on its own beacon port (47100-47199). They
//! prove the node works across process boundaries, that a graceful stop (command or
//! SIGTERM) is an EXIT at once, and that a killed process is EVASIVE, SILENT, then EXIT.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use zre::{Event, Uuid};

#[test]
fn processes_discover_each_other_and_exchange_binary_content() {
    let mut p = rust_peer(
        47101,
        "proc-a",
        &[
            "--header", "X-Proc=a", "--header", "X-Eq=k=v", "--group", "G",
        ],
    );
    let mut q = rust_peer(47101, "proc-b", &["--header", "X-Proc=b"]);
    let local = builder(47101, "local")
        .header("X-Local", "yes")
        .start()
        .unwrap();
    let mut il = inbox(&local, "local");

    // Every pair sees each other, with names, headers and endpoints.
    let e = p.expect("ENTER proc-b", js("enter", q.uuid));
    assert_eq!(e["name"], "proc-b");
    assert_eq!(e["headers"], json!({"X-Proc": "b"}));
    assert_eq!(e["endpoint"], q.ready["endpoint"]);
    let e = q.expect("ENTER proc-a", js("enter", p.uuid));
    assert_eq!(e["headers"], json!({"X-Proc": "a", "X-Eq": "k=v"}));
    q.expect("JOIN proc-a G", jsg("join", p.uuid, "G"));
    let e = p.expect("ENTER local", js("enter", local.uuid()));
    assert_eq!(e["headers"], json!({"X-Local": "yes"}));
    assert_eq!(e["endpoint"], local.endpoint());
    q.expect("ENTER local", js("enter", local.uuid()));
    let e = il.expect("ENTER proc-a", is_enter(p.uuid));
    let Event::Enter {
        name,
        headers,
        endpoint,
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(&*name, "proc-a");
    assert_eq!(headers.len(), 2);
    assert_eq!(headers["X-Eq"], "k=v");
    assert_eq!(endpoint, p.ready["endpoint"].as_str().unwrap());
    il.expect("JOIN proc-a G", is_join(p.uuid, "G"));
    il.expect("ENTER proc-b", is_enter(q.uuid));
    let mut all = [p.uuid, q.uuid, local.uuid()];
    all.sort();
    let others = |me: Uuid| all.iter().copied().filter(|u| *u != me).collect::<Vec<_>>();
    assert_eq!(p.peers(), others(p.uuid));
    assert_eq!(q.peers(), others(q.uuid));
    assert_eq!(local.peers(), others(local.uuid()));

    // Whisper process -> process, process -> in-process, and back, with binary frames.
    let content = tricky_content();
    p.whisper(q.uuid, &content);
    let e = q.expect("WHISPER from proc-a", js("whisper", p.uuid));
    assert_eq!(frames_of(&e), content);
    assert_eq!(e["name"], "proc-a");
    // One empty frame (zero frames are refused: Error::NoContent).
    let empty = vec![Vec::new()];
    p.whisper(local.uuid(), &empty);
    let e = il.expect("empty WHISPER from proc-a", is_whisper(p.uuid));
    assert_eq!(e.content(), Some(&empty));
    local.whisper(q.uuid, content.clone()).unwrap();
    let e = q.expect("WHISPER from local", js("whisper", local.uuid()));
    assert_eq!(frames_of(&e), content);

    // Groups: local joins G; a shout from proc-a reaches local but not proc-b (not in G).
    local.join("G").unwrap();
    p.expect("JOIN local G", jsg("join", local.uuid(), "G"));
    q.expect("JOIN local G", jsg("join", local.uuid(), "G"));
    p.shout("G", &content);
    let e = il.expect("SHOUT from proc-a", is_shout(p.uuid));
    assert_eq!(
        e,
        Event::Shout {
            peer: p.uuid,
            name: "proc-a".into(),
            group: "G".into(),
            content: content.clone()
        }
    );
    local.shout_str("G", "from local").unwrap();
    let e = p.expect("SHOUT from local", js("shout", local.uuid()));
    assert_eq!(e["group"], "G");
    assert_eq!(frames_of(&e), vec![b"from local".to_vec()]);
    // proc-b is in no group: a whisper after the shouts arrives with no shout before it.
    p.whisper(q.uuid, &[b"m".to_vec()]);
    local.whisper_str(q.uuid, "m").unwrap();
    q.expect("marker from proc-a", js("whisper", p.uuid));
    q.expect("marker from local", js("whisper", local.uuid()));
    let shouts: Vec<_> = q
        .pending()
        .into_iter()
        .filter(|v| v["type"] == "shout")
        .cloned()
        .collect();
    assert!(shouts.is_empty(), "proc-b got shouts: {shouts:?}");

    // LEAVE crosses the process boundary too.
    p.leave("G");
    il.expect("LEAVE proc-a G", is_leave(p.uuid, "G"));
    q.expect("LEAVE proc-a G", jsg("leave", p.uuid, "G"));
    assert_eq!(local.peers_by_group("G"), Vec::<Uuid>::new());

    assert!(p.stop().success());
    assert!(q.stop().success());
}

#[test]
fn stop_command_is_exit_at_once_in_other_processes() {
    let observer = builder(47102, "observer")
        .expired_timeout(Duration::from_secs(120))
        .start()
        .unwrap();
    let mut io = inbox(&observer, "observer");
    let mut p = rust_peer(47102, "leaver", &[]);
    let mut q = rust_peer(47102, "stayer", &["--expired", "120"]);
    io.expect("ENTER leaver", is_enter(p.uuid));
    io.expect("ENTER stayer", is_enter(q.uuid));
    q.expect("ENTER leaver", js("enter", p.uuid));

    // Expiry is 120 s away for both observers: only the goodbye explains these EXITs.
    assert!(p.stop().success(), "graceful stop exits 0");
    let e = io.expect("EXIT leaver", is_exit(p.uuid));
    assert_eq!(e.name(), "leaver");
    let e = q.expect("EXIT leaver", js("exit", p.uuid));
    assert_eq!(e["name"], "leaver");
    assert_eq!(q.peers(), vec![observer.uuid()]);

    // And an in-process stop is seen at once by the other process.
    observer.stop();
    q.expect("EXIT observer", js("exit", observer.uuid()));
    assert_eq!(q.peers(), Vec::<Uuid>::new());
}

#[test]
fn sigterm_is_a_graceful_stop() {
    let observer = builder(47103, "observer")
        .expired_timeout(Duration::from_secs(120))
        .start()
        .unwrap();
    let mut io = inbox(&observer, "observer");
    let mut p = rust_peer(47103, "termed", &[]);
    io.expect("ENTER termed", is_enter(p.uuid));
    p.terminate();
    io.expect("EXIT termed", is_exit(p.uuid));
    p.expect("its STOP line", |v| v["type"] == "stop");
    assert!(p.wait().success());
}

#[test]
fn killed_process_is_evasive_then_silent_then_exits() {
    // Short timers so the whole life cycle fits a test: evasive 2 s, silent 2.4 s,
    // expired 4 s.
    let observer = builder(47104, "observer")
        .evasive_timeout(Duration::from_secs(2))
        .expired_timeout(Duration::from_secs(4))
        .start()
        .unwrap();
    let mut io = inbox(&observer, "observer");
    let mut p = rust_peer(47104, "victim", &[]);
    io.expect("ENTER victim", is_enter(p.uuid));

    // Alive and idle for twice the evasive timeout: our node pings a quiet peer before it
    // could become evasive, so a healthy idle peer is never reported EVASIVE.
    let idle = io.drain_for(Duration::from_secs(4));
    assert!(
        idle.iter().all(|e| !matches!(
            e,
            Event::Evasive { .. } | Event::Silent { .. } | Event::Exit { .. }
        )),
        "a healthy idle peer was reported: {idle:?}"
    );

    p.kill(); // SIGKILL: no goodbye
    let order = death_of(&mut io, "EVASIVE/SILENT/EXIT of victim", p.uuid);
    assert_eq!(
        order,
        ["evasive", "silent", "exit"],
        "life cycle of a dead peer"
    );
    assert_eq!(observer.peers(), Vec::<Uuid>::new());
}

#[test]
fn four_processes_all_see_all() {
    let mut peers: Vec<Peer> = (0..4)
        .map(|i| rust_peer(47105, &format!("p{i}"), &["--group", "ALL"]))
        .collect();
    let uuids: Vec<Uuid> = peers.iter().map(|p| p.uuid).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        for (j, u) in uuids.iter().enumerate() {
            if i != j {
                let e = p.expect(&format!("ENTER p{j}"), js("enter", *u));
                assert_eq!(e["name"], format!("p{j}"));
                p.expect(&format!("JOIN p{j} ALL"), |v| {
                    js("join", *u)(v) && v["group"] == "ALL"
                });
            }
        }
        let mut want: Vec<Uuid> = uuids.iter().copied().filter(|u| *u != p.uuid).collect();
        want.sort();
        assert_eq!(p.peers(), want, "p{i}'s peers");
    }
    peers[3].shout("ALL", &tricky_content_small());
    for p in &mut peers[..3] {
        let e = p.expect("SHOUT from p3", js("shout", uuids[3]));
        assert_eq!(frames_of(&e), tricky_content_small());
    }
    for p in &mut peers {
        assert!(p.stop().success());
    }
}

#[test]
fn restart_on_the_same_endpoint_replaces_the_old_peer_at_once() {
    // The reference only disconnects the old peer when a new UUID shows up on its endpoint
    // (a ghost until expiry); our node reports its EXIT at once. Expiry here is 120 s away.
    let observer = builder(47106, "observer")
        .evasive_timeout(Duration::from_secs(60))
        .expired_timeout(Duration::from_secs(120))
        .start()
        .unwrap();
    let mut io = inbox(&observer, "observer");
    let mut old = rust_peer(47106, "phoenix", &["--mailbox-port", "47106"]);
    let e = io.expect("ENTER phoenix", is_enter(old.uuid));
    let Event::Enter { endpoint, .. } = e else {
        unreachable!()
    };
    assert_eq!(endpoint, "tcp://127.0.0.1:47106");
    old.kill(); // no goodbye
    let new = rust_peer(47106, "phoenix", &["--mailbox-port", "47106"]);
    assert_ne!(new.uuid, old.uuid);
    io.expect("EXIT of the old phoenix", is_exit(old.uuid));
    io.expect("ENTER of the new phoenix", is_enter(new.uuid));
    assert_eq!(observer.peers(), vec![new.uuid]);
}
