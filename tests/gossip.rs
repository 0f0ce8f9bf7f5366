//! Gossip discovery (issue 13) on real sockets over loopback: nodes without beacons meet
//! through a hub (`Builder::gossip_bind` / `gossip_connect`); a hub restart, a node that
//! goes, and hostile frames to the hub. Against CZMQ's own zgossip hub: `interop` below,
//! and Zyre C in the lab.
//!
//! Beacon ports (unused by beacon-less nodes but set apart anyway) 47900-47949; gossip
//! ports are picked free (see `free_tcp_port`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use zre::proto::gossip::{GossipMessage, Tuple};
use zre::{Event, Node, Uuid};

fn hub(port: u16, gossip: u16) -> Node {
    builder(port, "hub")
        .beacon(false)
        .expired_timeout(Duration::from_secs(3))
        .evasive_timeout(Duration::from_secs(1))
        .gossip_bind(format!("tcp://127.0.0.1:{gossip}"))
        .start()
        .unwrap()
}

fn member(port: u16, gossip: u16, name: &str) -> Node {
    builder(port, name)
        .beacon(false)
        .expired_timeout(Duration::from_secs(3))
        .evasive_timeout(Duration::from_secs(1))
        .gossip_connect(format!("tcp://127.0.0.1:{gossip}"))
        .start()
        .unwrap()
}

/// A TCP port nothing listens on now: fixed ports in 47000-47999 fall in the kernel's
/// ephemeral range, where another test's mailbox or connection may hold one.
fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < end, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

#[test]
fn nodes_without_beacons_meet_through_a_hub_and_talk() {
    let (port, gossip) = (47900, free_tcp_port());
    let h = hub(port, gossip);
    let a = member(port, gossip, "a");
    let b = member(port, gossip, "b");
    let c = member(port, gossip, "c");
    let all = [&h, &a, &b, &c];
    for n in all {
        let want = sorted(
            all.iter()
                .filter(|m| m.uuid() != n.uuid())
                .map(|m| m.uuid())
                .collect(),
        );
        wait_until(&format!("{} sees all", n.name()), DEADLINE, || {
            sorted(n.peers()) == want
        });
    }
    let mut b_in = inbox(&b, "b");
    a.whisper(b.uuid(), vec![b"over gossip".to_vec()]).unwrap();
    let e = b_in.expect("a's whisper", is_whisper(a.uuid()));
    let Event::Whisper { content, .. } = e else {
        unreachable!()
    };
    assert_eq!(content, vec![b"over gossip".to_vec()]);
    let s = h.stats().unwrap();
    assert_eq!(s.gossip_clients, 3);
    assert_eq!(s.gossip_tuples, 4, "the hub's own and three members'");
}

#[test]
fn a_node_that_goes_leaves_no_tuple_and_a_restarted_hub_still_joins_newcomers() {
    let (port, gossip) = (47905, free_tcp_port());
    let h = hub(port, gossip);
    let a = member(port, gossip, "a");
    let b = member(port, gossip, "b");
    wait_until("a and b meet", DEADLINE, || {
        a.peers().len() == 2 && b.peers().len() == 2
    });
    assert_eq!(h.stats().unwrap().gossip_tuples, 3);

    // B goes without a word to anyone (no beacon, so no goodbye beacon): the hub drops
    // its tuple once its connection is gone, so a newcomer never tries it.
    drop(b);
    wait_until("the hub drops b's tuple", DEADLINE, || {
        h.stats().unwrap().gossip_tuples == 2
    });

    // The hub is restarted on the same port: A stays connected to H's successor's
    // members, and a newcomer still meets A through it.
    let a_uuid = a.uuid();
    drop(h);
    let h2 = hub(port, gossip);
    // A's client learns the hub forgot it (INVALID to its PING) and publishes again.
    wait_until("a publishes again to the new hub", DEADLINE, || {
        h2.stats().unwrap().gossip_tuples == 2
    });
    let c = member(port, gossip, "c");
    wait_until("c meets a", DEADLINE, || c.peers().contains(&a_uuid));
    wait_until("c meets the new hub", DEADLINE, || {
        c.peers().contains(&h2.uuid())
    });
    assert_eq!(h2.stats().unwrap().gossip_tuples, 3);
}

#[test]
fn a_hub_survives_hostile_frames_and_keeps_serving() {
    let (port, gossip) = (47910, free_tcp_port());
    let h = hub(port, gossip);
    let ctx = zmq::Context::new();
    let evil = ctx.socket(zmq::DEALER).unwrap();
    evil.set_linger(0).unwrap();
    evil.connect(&format!("tcp://127.0.0.1:{gossip}")).unwrap();
    let publish = |key: String, value: &str| {
        GossipMessage::Publish(Tuple {
            key: key.into_bytes(),
            value: value.as_bytes().to_vec(),
            ttl: 0,
        })
        .encode()
        .unwrap()
    };
    let frames = [
        GossipMessage::Hello.encode().unwrap(),
        publish(zre::uuid_hex(&Uuid::new_v4()), "tcp://127.0.0.1:9"),
        GossipMessage::Ping.encode().unwrap(),
        GossipMessage::Pong.encode().unwrap(),
        GossipMessage::Invalid.encode().unwrap(),
    ];
    let mut malformed = 0;
    for f in &frames {
        for cut in 0..f.len() {
            evil.send(&f[..cut], 0).unwrap();
            malformed += 1;
        }
    }
    evil.send(&[0xAA, 0xA1, 1, 1][..], 0).unwrap();
    evil.send_multipart([&b"two"[..], &b"frames"[..]], 0)
        .unwrap();
    malformed += 2;
    // A flood of 10,000 tuples from one client: held up to the per-client bound.
    evil.send(GossipMessage::Hello.encode().unwrap(), 0)
        .unwrap();
    for i in 0..10_000u32 {
        evil.send(publish(format!("{i:032X}"), "tcp://127.0.0.1:9"), 0)
            .unwrap();
    }
    wait_until("the hub counted it all", DEADLINE, || {
        let s = h.stats().unwrap();
        s.gossip_malformed == malformed && s.gossip_refused == 10_000 - 1_024
    });
    assert_eq!(h.stats().unwrap().gossip_tuples, 1 + 1_024);
    // Still serving: a newcomer meets the hub.
    let a = member(port, gossip, "a");
    wait_until("a meets the hub", DEADLINE, || {
        a.peers().contains(&h.uuid())
    });
}

#[test]
fn a_hub_node_also_beacons_and_joins_both_worlds() {
    // H beacons on loopback and is a hub: A meets H by beacon, B (no beacon, another
    // beacon port) by gossip. A publishes nothing and B sends no beacon, so those two
    // never meet: a hub relays tuples, not beacons.
    let (port, gossip) = (47915, free_tcp_port());
    let h = builder(port, "hub")
        .gossip_bind(format!("tcp://127.0.0.1:{gossip}"))
        .start()
        .unwrap();
    let a = builder(port, "a").start().unwrap();
    let b = member(47917, gossip, "b");
    wait_until("a hears h", DEADLINE, || a.peers() == vec![h.uuid()]);
    wait_until("b learns h", DEADLINE, || b.peers() == vec![h.uuid()]);
    wait_until("h sees both", DEADLINE, || h.peers().len() == 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        a.peers(),
        vec![h.uuid()],
        "a beacons only: b never learns of it"
    );
    assert_eq!(b.peers(), vec![h.uuid()]);
}

/// CZMQ's zgossip hub (tests/interop/czmq_hub.c, linked to Debian's libczmq), killed by
/// its PID when dropped. `None` (with a printed reason) where libczmq is missing, unless
/// ZRE_REQUIRE_ZYRE=1 (CI, which installs it with Zyre C), where that fails the test.
struct CzmqHub(std::process::Child);

impl CzmqHub {
    fn start(test: &str, endpoint: &str) -> Option<CzmqHub> {
        use std::io::BufRead;
        use std::sync::OnceLock;
        static BUILT: OnceLock<Result<std::path::PathBuf, String>> = OnceLock::new();
        let built = BUILT.get_or_init(|| {
            let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("czmq_hub");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/czmq_hub.c");
            let cc = std::process::Command::new("cc")
                .args([src, "-lczmq", "-lzmq", "-o"])
                .arg(&out)
                .output()
                .map_err(|e| format!("cc: {e}"))?;
            if !cc.status.success() {
                return Err(format!(
                    "cannot build tests/interop/czmq_hub.c (apt-get install libczmq-dev): {}",
                    String::from_utf8_lossy(&cc.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                ));
            }
            Ok(out)
        });
        let program = match built {
            Ok(p) => p,
            Err(why) => {
                if std::env::var("ZRE_REQUIRE_ZYRE").as_deref() == Ok("1") {
                    panic!("{test}: ZRE_REQUIRE_ZYRE=1 but {why}");
                }
                println!("SKIPPED {test}: {why}");
                return None;
            }
        };
        let mut child = std::process::Command::new(program)
            .arg(endpoint)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start czmq_hub");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "czmq_hub did not start");
        // Its DELIVER lines are not read here: drain them so it never blocks on stdout.
        std::thread::spawn(move || for _ in out.lines() {});
        Some(CzmqHub(child))
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for CzmqHub {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn interop_our_nodes_meet_through_czmqs_zgossip_hub_which_restarts() {
    let (port, gossip) = (47920, free_tcp_port());
    let endpoint = format!("tcp://127.0.0.1:{gossip}");
    let Some(mut czmq) = CzmqHub::start("interop_czmq_hub", &endpoint) else {
        return;
    };
    let a = member(port, gossip, "a");
    // Longer than CZMQ's 1 s client timeout: A's session must still be alive (its PINGs)
    // for the hub to pass B's tuple on to it.
    std::thread::sleep(Duration::from_millis(2500));
    let b = member(port, gossip, "b");
    wait_until("a and b meet through CZMQ's hub", DEADLINE, || {
        a.peers() == vec![b.uuid()] && b.peers() == vec![a.uuid()]
    });
    let mut a_in = inbox(&a, "a");
    let mut b_in = inbox(&b, "b");
    a.whisper(b.uuid(), vec![b"to b".to_vec()]).unwrap();
    b.whisper(a.uuid(), vec![b"to a".to_vec()]).unwrap();
    b_in.expect("a's whisper", is_whisper(a.uuid()));
    a_in.expect("b's whisper", is_whisper(b.uuid()));

    // kill -9 and restart: the new hub knows nobody. A and B stay connected; they learn
    // the hub forgot them (INVALID to a PUBLISH refresh) and publish again, so a newcomer
    // meets both.
    czmq.kill();
    let _czmq2 = CzmqHub::start("interop_czmq_hub", &endpoint).unwrap();
    let c = member(port, gossip, "c");
    wait_until(
        "c meets a and b through the restarted hub",
        DEADLINE,
        || sorted(c.peers()) == sorted(vec![a.uuid(), b.uuid()]),
    );
    assert_eq!(a.peers().len(), 2);
    let seen = b_in.drain_for(Duration::from_millis(100));
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Exit { .. })),
        "nobody left: {seen:?}"
    );
}

#[test]
fn a_node_without_beacons_is_seen_leaving_at_once_by_its_goodbye() {
    // No beacon, so no port-0 beacon: it says GOODBYE on each link instead. Its peers'
    // expired timeout is 3 s, so an EXIT within 2 s is the GOODBYE's.
    let (port, gossip) = (47925, free_tcp_port());
    let _h = hub(port, gossip);
    let a = member(port, gossip, "a");
    let b = member(port, gossip, "b");
    wait_until("a meets b", DEADLINE, || a.peers().contains(&b.uuid()));
    let mut a_in = inbox(&a, "a");
    let b_uuid = b.uuid();
    b.stop();
    a_in.expect_within(Duration::from_secs(2), "b's EXIT", is_exit(b_uuid));
}
