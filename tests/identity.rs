//! Beyond one broadcast domain (issue 13), on real sockets over loopback: a UUID that
//! survives restarts (`Builder::uuid`, `Builder::identity_file`) and what peers see when
//! such a node comes back; a fixed mailbox port; nodes without beacons, which meet by
//! `Node::require_peer` alone and open no UDP socket.
//!
//! Beacon ports 47500-47549.

mod common;

use std::time::Duration;

use common::*;
use zre::{Event, Uuid};

/// Long enough that no EXIT in these tests can be an expiry.
const LONG: Duration = Duration::from_secs(120);

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zre-identity-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn endpoint_of(e: &Event) -> String {
    match e {
        Event::Enter { endpoint, .. } => endpoint.clone(),
        e => panic!("not an enter: {e:?}"),
    }
}

/// The kinds of the events about `peer` (ENTER, EXIT, WHISPER..) seen within `d`.
fn kinds_about(inbox: &mut Inbox<'_, Event>, peer: Uuid, d: Duration) -> Vec<&'static str> {
    inbox
        .drain_for(d)
        .iter()
        .filter(|e| e.peer() == Some(peer))
        .map(|e| e.kind())
        .collect()
}

#[test]
fn an_identity_file_keeps_the_uuid_and_a_clean_restart_is_exit_then_enter() {
    let port = 47500;
    let dir = scratch("clean");
    let file = dir.join("node.id");
    let b = builder(port, "b").expired_timeout(LONG).start().unwrap();
    let mut b_in = inbox(&b, "b");

    let a = builder(port, "a").identity_file(&file).start().unwrap();
    let uuid = a.uuid();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text, format!("{}\n", zre::uuid_hex(&uuid)));
    let first = endpoint_of(&b_in.expect("a enters", is_enter(uuid)));
    assert_eq!(first, a.endpoint());
    a.stop();
    drop(a);
    // Its port-0 beacon: EXIT at once, not after B's 120 s expiry.
    b_in.expect("a exits", is_exit(uuid));

    let again = builder(port, "a").identity_file(&file).start().unwrap();
    assert_eq!(again.uuid(), uuid, "the same UUID from the same file");
    let second = endpoint_of(&b_in.expect("a enters again", is_enter(uuid)));
    assert_eq!(second, again.endpoint());
    assert_ne!(second, first, "a new ephemeral mailbox port");
    assert_eq!(b.peers(), vec![uuid]);
    inbox(&again, "a again").expect("b enters a", is_enter(b.uuid()));
    again.whisper(b.uuid(), vec![b"back".to_vec()]).unwrap();
    b_in.expect("a's whisper", is_whisper(uuid));
    // Nothing more about it: one copy of the peer, present.
    assert_eq!(
        kinds_about(&mut b_in, uuid, Duration::from_millis(500)),
        Vec::<&str>::new()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_restart_without_goodbye_is_exit_then_enter_at_once() {
    restart_without_goodbye(47501, None);
}

#[test]
fn a_restart_without_goodbye_on_a_fixed_mailbox_port_is_exit_then_enter_at_once() {
    // B's old link to that port reconnects to the new process, which knows nothing of B
    // yet: what comes over it is dropped there until the new A's own HELLO re-creates it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mailbox = free.local_addr().unwrap().port();
    drop(free);
    restart_without_goodbye(47505, Some(mailbox));
}

fn restart_without_goodbye(port: u16, mailbox: Option<u16>) {
    // A crashes (its driver fails: no GOODBYE, and without beacons no port-0 beacon):
    // B still holds the old A when the new A says HELLO.
    let b = builder(port, "b")
        .beacon(false)
        .expired_timeout(LONG)
        .start()
        .unwrap();
    let mut b_in = inbox(&b, "b");
    let uuid = Uuid::from_u128(0x1D_E471_7100_0000_0000_0000_0000_0001);
    let start_a = || {
        let mut a = builder(port, "a")
            .beacon(false)
            .uuid(uuid)
            .expired_timeout(LONG);
        if let Some(p) = mailbox {
            a = a.mailbox_port(p);
        }
        let a = a.start().unwrap();
        a.require_peer(b.uuid(), b.endpoint()).unwrap();
        a
    };
    let a = start_a();
    let first = endpoint_of(&b_in.expect("a enters", is_enter(uuid)));
    a.inject_driver_panic();
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.peers(), vec![uuid], "no goodbye: B still holds A");

    let again = start_a();
    let mut a_in = inbox(&again, "a again");
    b_in.expect("the old a exits", is_exit(uuid));
    let second = endpoint_of(&b_in.expect("the new a enters", is_enter(uuid)));
    assert_eq!(second, again.endpoint());
    assert_eq!(second == first, mailbox.is_some());
    a_in.expect("b enters", is_enter(b.uuid()));
    again.whisper(b.uuid(), vec![b"hi".to_vec()]).unwrap();
    b_in.expect("a's whisper", is_whisper(uuid));
    b.whisper(uuid, vec![b"ho".to_vec()]).unwrap();
    a_in.expect("b's whisper", is_whisper(b.uuid()));
    assert_eq!(b.peers(), vec![uuid]);
    assert_eq!(
        kinds_about(&mut b_in, uuid, Duration::from_millis(500)),
        Vec::<&str>::new()
    );
}

/// UDP sockets bound to `port` on this host (any address), from /proc/net/udp.
fn udp_bound_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&want))
        })
        .count()
}

#[test]
fn nodes_without_beacons_meet_by_require_peer_and_open_no_udp_socket() {
    let port = 47502;
    let quiet = |name| {
        builder(port, name)
            .beacon(false)
            .start()
            .expect("start a node without beacon")
    };
    // Counted against what was there before (the table is the whole host's).
    let before = udp_bound_to(port);
    let a = quiet("a");
    let b = quiet("b");
    assert_eq!(udp_bound_to(port), before, "no beacon socket on {port}");
    // A beaconing node on the same port: proves the check sees one, and that the quiet
    // nodes neither hear its beacons nor are heard.
    let loud = start(port, "loud");
    assert_eq!(udp_bound_to(port), before + 1);
    let mut a_in = inbox(&a, "a");
    let mut b_in = inbox(&b, "b");
    let mut loud_in = inbox(&loud, "loud");

    a.require_peer(b.uuid(), b.endpoint()).unwrap();
    a_in.expect("b enters a", is_enter(b.uuid()));
    b_in.expect("a enters b", is_enter(a.uuid()));
    a.whisper(b.uuid(), vec![b"psst".to_vec()]).unwrap();
    match b_in.expect("a's whisper", is_whisper(a.uuid())) {
        Event::Whisper { content, .. } => assert_eq!(content, vec![b"psst".to_vec()]),
        e => panic!("{e:?}"),
    }
    b.whisper(a.uuid(), vec![b"back".to_vec()]).unwrap();
    a_in.expect("b's whisper", is_whisper(b.uuid()));

    std::thread::sleep(INTERVAL * 5);
    assert_eq!(a.peers(), vec![b.uuid()]);
    assert_eq!(b.peers(), vec![a.uuid()]);
    assert!(loud.peers().is_empty());
    assert!(loud_in.drain_for(Duration::from_millis(100)).is_empty());
    assert_eq!(a.stats().unwrap().beacons, 0);
    drop(loud_in);
    drop(loud);
    assert_eq!(udp_bound_to(port), 0);
}

#[test]
fn a_fixed_mailbox_port_is_the_endpoint_peers_see_and_one_in_use_is_an_error() {
    let port = 47503;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mailbox = free.local_addr().unwrap().port();
    // Taken: the error names the endpoint.
    let e = builder(port, "a")
        .mailbox_port(mailbox)
        .start()
        .expect_err("the port is in use");
    assert!(e.to_string().contains(&format!(":{mailbox}")), "{e}");
    drop(free);

    let a = builder(port, "a").mailbox_port(mailbox).start().unwrap();
    assert_eq!(a.endpoint(), format!("tcp://127.0.0.1:{mailbox}"));
    let b = start(port, "b");
    let mut b_in = inbox(&b, "b");
    let seen = endpoint_of(&b_in.expect("a enters", is_enter(a.uuid())));
    assert_eq!(seen, format!("tcp://127.0.0.1:{mailbox}"));
    // 0 is ephemeral.
    let c = builder(port, "c").mailbox_port(0).start().unwrap();
    assert!(!c.endpoint().ends_with(":0"), "{}", c.endpoint());
}

#[test]
fn uuid_and_identity_file_replace_each_other() {
    let dir = scratch("replace");
    let file = dir.join("id");
    let fixed = Uuid::from_u128(7);
    let n = builder(47504, "n")
        .identity_file(&file)
        .uuid(fixed)
        .start()
        .unwrap();
    assert_eq!(n.uuid(), fixed);
    assert!(!file.exists(), "the file was replaced before start");
    drop(n);
    let n = builder(47504, "n")
        .uuid(fixed)
        .identity_file(&file)
        .start()
        .unwrap();
    assert_ne!(n.uuid(), fixed);
    assert!(file.exists());
    drop(n);
    std::fs::write(&file, "not a uuid\n").unwrap();
    match builder(47504, "n").identity_file(&file).start() {
        Err(zre::Error::Config(why)) => assert!(why.contains(&*file.to_string_lossy()), "{why}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
