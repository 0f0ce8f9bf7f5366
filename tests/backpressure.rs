//! Back-pressure on a link whose peer does not read (ports 47300-47309): whisper and
//! shout wait while the link is backed up, nothing is lost or reordered once it drains,
//! protocol messages and other links never wait.
//!
//! The slow peer is a fake: a raw ROUTER that the test reads only when it chooses, with a
//! small receive queue and TCP buffer, and a DEALER that says HELLO to the node (and
//! answers its PING).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use zre::proto::codec::{Body, Hello, Message};
use zre::{Event, Node, Uuid};

/// A ZRE peer that reads its mailbox only when the test asks it to.
struct FakePeer {
    uuid: Uuid,
    mailbox: zmq::Socket,
    _link: zmq::Socket,
    _ctx: zmq::Context,
}

impl FakePeer {
    /// Binds a mailbox and says HELLO (in `groups`) to `node`, which connects back.
    fn start(node: &Node, groups: &[&str]) -> FakePeer {
        let ctx = zmq::Context::new();
        let mailbox = ctx.socket(zmq::ROUTER).unwrap();
        // Little room anywhere on the way in, so an unread mailbox backs the link up soon.
        mailbox.set_rcvhwm(10).unwrap();
        mailbox.set_rcvbuf(16 * 1024).unwrap();
        mailbox.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = mailbox.get_last_endpoint().unwrap().unwrap();
        let uuid = Uuid::new_v4();
        let link = ctx.socket(zmq::DEALER).unwrap();
        let mut identity = vec![1u8];
        identity.extend_from_slice(uuid.as_bytes());
        link.set_identity(&identity).unwrap();
        link.connect(node.endpoint()).unwrap();
        let hello = Message::new(
            1,
            Body::Hello(Hello {
                endpoint,
                groups: groups.iter().map(|g| g.to_string()).collect(),
                status: 0,
                name: "slow".into(),
                headers: Default::default(),
            }),
        );
        link.send(hello.to_bytes().unwrap(), 0).unwrap();
        // A peer introduced by its HELLO enters once it answers the node's PING, which
        // follows the node's HELLO to our mailbox. Answered blindly here, so the mailbox
        // stays unread until the test reads it.
        link.send(Message::new(2, Body::PingOk).to_bytes().unwrap(), 0)
            .unwrap();
        FakePeer {
            uuid,
            mailbox,
            _link: link,
            _ctx: ctx,
        }
    }

    /// The next message in the mailbox, decoded, with its content frames.
    fn recv(&self, timeout: Duration) -> Option<(Message, Vec<Vec<u8>>)> {
        if self
            .mailbox
            .poll(zmq::POLLIN, timeout.as_millis() as i64)
            .unwrap()
            == 0
        {
            return None;
        }
        let mut frames = self.mailbox.recv_multipart(0).unwrap();
        assert!(frames.len() >= 2, "a ZRE message has a header: {frames:?}");
        let content = frames.split_off(2);
        Some((Message::decode(&frames[1]).unwrap(), content))
    }
}

#[test]
fn whisper_and_shout_wait_for_a_backed_up_link_and_lose_nothing() {
    const N: usize = 50_000;
    // Long timers: the fake never answers a PING, and the test must not see it expire.
    let a = Arc::new(
        builder(47300, "alice")
            .evasive_timeout(Duration::from_secs(60))
            .expired_timeout(Duration::from_secs(120))
            .start()
            .unwrap(),
    );
    let b = start(47300, "bob");
    b.join("G").unwrap();
    let fake = FakePeer::start(&a, &["G"]);
    let mut ia = inbox(&a, "alice");
    ia.expect("ENTER slow", is_enter(fake.uuid));
    ia.expect("ENTER bob", is_enter(b.uuid()));
    ia.expect("bob JOIN G", is_join(b.uuid(), "G"));
    let mut ib = inbox(&b, "bob");
    ib.expect("ENTER alice", is_enter(a.uuid()));

    // 50,000 x 1 KiB is far more than the DEALER's 10,000 messages, the fake's queue of 10
    // and the TCP buffers together: the sender must stop and wait.
    let sent = Arc::new(AtomicUsize::new(0));
    let whisperer = {
        let (a, sent, to) = (a.clone(), sent.clone(), fake.uuid);
        std::thread::spawn(move || {
            for i in 0..N {
                a.whisper(to, numbered(i)).expect("whisper");
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let stalled_at = stalls(&sent, N, Duration::from_millis(500))
        .expect("all 50,000 whispers returned while the peer read nothing: whisper never waited");
    assert!(stalled_at > 0, "no whisper went out at all");

    // While that link is backed up: a JOIN (a protocol message) does not wait...
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let a = a.clone();
        std::thread::spawn(move || tx.send(a.join("H")).unwrap());
    }
    rx.recv_timeout(Duration::from_secs(5))
        .expect("join waited for the backed-up link")
        .unwrap();
    // ...another link works...
    a.whisper_str(b.uuid(), "past the jam").unwrap();
    let e = ib.expect("whisper from alice", is_whisper(a.uuid()));
    let Event::Whisper { content, .. } = e else {
        unreachable!()
    };
    assert_eq!(content, vec![b"past the jam".to_vec()]);
    // ...and a shout to G, whose members are bob and the fake, waits for the fake.
    let shouted = Arc::new(AtomicBool::new(false));
    let shouter = {
        let (a, shouted) = (a.clone(), shouted.clone());
        std::thread::spawn(move || {
            a.shout_str("G", "to all of G").unwrap();
            shouted.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !shouted.load(Ordering::SeqCst),
        "the shout went out while a member's link was backed up"
    );
    assert_eq!(
        sent.load(Ordering::SeqCst),
        stalled_at,
        "the sender moved on"
    );

    // Now the fake reads: every message arrives once, in sequence, the whispers in order.
    let mut expected_sequence = 1u16;
    let (mut whispers, mut joined, mut shouts) = (0usize, false, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while whispers < N || !joined || shouts == 0 {
        assert!(Instant::now() < deadline, "got {whispers} of {N} whispers");
        let Some((msg, content)) = fake.recv(Duration::from_millis(100)) else {
            continue;
        };
        assert_eq!(
            msg.sequence, expected_sequence,
            "{msg}: a message lost or reordered"
        );
        expected_sequence = expected_sequence.wrapping_add(1);
        match msg.body {
            Body::Hello(_) => assert_eq!(msg.sequence, 1),
            Body::Whisper => {
                assert_eq!(content.len(), 1);
                assert_eq!(content[0], numbered(whispers)[0], "whisper {whispers}");
                whispers += 1;
            }
            Body::Join { group, .. } => {
                assert_eq!(group, "H");
                joined = true;
            }
            Body::Shout { group } => {
                assert_eq!(group, "G");
                assert_eq!(content, vec![b"to all of G".to_vec()]);
                shouts += 1;
            }
            Body::Ping => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    whisperer.join().unwrap();
    shouter.join().unwrap();
    assert_eq!(shouts, 1);
    ib.expect("the shout", is_shout(a.uuid()));
    // Nothing more, and the slow peer was never given up on.
    assert!(fake.recv(Duration::from_millis(200)).is_none());
    let seen = ia.drain_for(Duration::from_millis(200));
    assert!(
        !seen.iter().any(is_exit(fake.uuid)),
        "the slow peer was removed: {seen:?}"
    );
    assert_eq!(a.stats().unwrap().send_failures, 0);
}

/// A node (built by `b`) with the fake as its only peer, and a thread whispering to the
/// fake until a whisper fails: the node, the fake, the count of whispers that returned,
/// and the thread (it returns the error).
fn whispering_to_a_fake(
    b: zre::Builder,
) -> (
    Arc<Node>,
    FakePeer,
    Arc<AtomicUsize>,
    std::thread::JoinHandle<zre::Error>,
) {
    let a = Arc::new(b.start().unwrap());
    let fake = FakePeer::start(&a, &[]);
    inbox(&a, "alice").expect("ENTER slow", is_enter(fake.uuid));
    let sent = Arc::new(AtomicUsize::new(0));
    let whisperer = {
        let (a, sent, to) = (a.clone(), sent.clone(), fake.uuid);
        std::thread::spawn(move || loop {
            if let Err(e) = a.whisper(to, numbered(0)) {
                return e;
            }
            sent.fetch_add(1, Ordering::SeqCst);
        })
    };
    (a, fake, sent, whisperer)
}

#[test]
fn a_whisper_waiting_for_a_peer_that_expires_fails_instead_of_hanging() {
    // The fake never answers a PING: it expires 2 s after its HELLO.
    let (a, fake, sent, whisperer) = whispering_to_a_fake(
        builder(47301, "alice")
            .evasive_timeout(Duration::from_secs(1))
            .expired_timeout(Duration::from_secs(2)),
    );
    let mut ia = inbox(&a, "alice");
    ia.expect_within(Duration::from_secs(10), "EXIT slow", is_exit(fake.uuid));
    let err = whisperer.join().unwrap();
    assert!(
        matches!(&err, zre::Error::UnknownPeer(p) if *p == fake.uuid),
        "{err:?}"
    );
    assert!(sent.load(Ordering::SeqCst) > 0);
}

#[test]
fn stop_ends_a_whisper_waiting_for_a_backed_up_link() {
    let (a, _fake, sent, whisperer) = whispering_to_a_fake(
        builder(47302, "alice")
            .evasive_timeout(Duration::from_secs(60))
            .expired_timeout(Duration::from_secs(120))
            .stop_linger(Duration::from_millis(500)),
    );
    assert!(stalls(&sent, usize::MAX, Duration::from_millis(500)).is_some());
    let started = Instant::now();
    a.stop();
    // The backlog may wait for the peer until the stop linger, not longer.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = whisperer.join().unwrap();
    assert!(matches!(err, zre::Error::Stopped), "{err:?}");
}

#[test]
fn a_whisper_or_shout_with_a_deadline_gives_up_on_a_backed_up_link_and_sends_nothing() {
    let a = builder(47303, "alice")
        .evasive_timeout(Duration::from_secs(60))
        .expired_timeout(Duration::from_secs(120))
        .stop_linger(Duration::from_secs(10))
        .start()
        .unwrap();
    let fake = FakePeer::start(&a, &["G"]);
    inbox(&a, "alice").expect("ENTER slow", is_enter(fake.uuid));
    // Fill the link: sends that do not wait succeed until it is backed up, then time out
    // at once.
    let mut sent = 0;
    let timed_out = loop {
        match a.whisper_timeout(fake.uuid, numbered(sent), Duration::ZERO) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1_000_000, "the link never backed up");
    };
    assert!(matches!(timed_out, zre::Error::Timeout), "{timed_out:?}");
    // A deadline is kept, whether the wait is for one peer or for a group's member.
    for (what, result) in [
        (
            "whisper",
            Box::new(|| a.whisper_timeout(fake.uuid, numbered(sent), Duration::from_millis(300)))
                as Box<dyn Fn() -> Result<(), zre::Error>>,
        ),
        (
            "shout",
            Box::new(|| a.shout_timeout("G", numbered(sent), Duration::from_millis(300))),
        ),
    ] {
        let started = Instant::now();
        let r = result();
        let took = started.elapsed();
        assert!(matches!(r, Err(zre::Error::Timeout)), "{what}: {r:?}");
        assert!(took >= Duration::from_millis(300), "{what} took {took:?}");
        assert!(took < Duration::from_secs(5), "{what} took {took:?}");
    }
    // What timed out was not sent: the fake gets 0..sent once each, in order, and the
    // next whisper after that.
    let next = std::thread::scope(|s| {
        let h = s.spawn(|| a.whisper(fake.uuid, numbered(sent)));
        let mut want = 0;
        while want <= sent {
            let (msg, content) = fake
                .recv(Duration::from_secs(15))
                .expect("the rest arrives");
            if matches!(msg.body, zre::proto::codec::Body::Whisper) {
                let n = u64::from_le_bytes(content[0][..8].try_into().unwrap()) as usize;
                assert_eq!(n, want, "once and in order");
                want += 1;
            }
        }
        h.join().unwrap()
    });
    next.unwrap();
    // Backed up again, a stop that drops what the link holds returns at once (the stop
    // linger is 10 s).
    while a
        .whisper_timeout(fake.uuid, numbered(0), Duration::ZERO)
        .is_ok()
    {}
    let started = Instant::now();
    a.stop_timeout(Duration::ZERO);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_flush_after_one_that_timed_out_covers_what_was_sent_in_between() {
    let a = builder(47304, "alice")
        .evasive_timeout(Duration::from_secs(60))
        .expired_timeout(Duration::from_secs(120))
        .start()
        .unwrap();
    let fake = FakePeer::start(&a, &["G"]);
    inbox(&a, "alice").expect("ENTER slow", is_enter(fake.uuid));
    // What came so far (HELLO, the PING that proved the fake).
    while fake.recv(Duration::from_millis(300)).is_some() {}
    assert!(
        !a.flush(Duration::ZERO).unwrap(),
        "the fake has not answered"
    );
    a.whisper(fake.uuid, vec![b"M".to_vec()]).unwrap();
    std::thread::scope(|s| {
        let second = s.spawn(|| a.flush(Duration::from_secs(3)));
        std::thread::sleep(Duration::from_millis(100));
        // The fake answers the first flush's PING (sent before M) and leaves M unread.
        let (m, _) = fake
            .recv(Duration::from_secs(2))
            .expect("the first flush's PING");
        assert!(matches!(m.body, Body::Ping), "{:?}", m.body);
        let ok = Message::new(3, Body::PingOk).to_bytes().unwrap();
        fake._link.send(ok, 0).unwrap();
        // Before: Ok(true) after 0.1 s, with M never read.
        assert!(!second.join().unwrap().unwrap(), "M was never read");
    });
    let (m, c) = fake.recv(Duration::from_secs(2)).expect("M");
    assert!(matches!(m.body, Body::Whisper) && c == vec![b"M".to_vec()]);
}
