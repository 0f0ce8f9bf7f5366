//! zre-ping against another zre-ping: zpinger's exchange, round-trip times, summaries;
//! ping(8)'s --count without a peer, -w, -q and exit status; a peer that shouts "Hello"
//! but never answers a ping.

mod cli_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli_support::*;
use zre::proto::beacon::Beacon;
use zre::proto::codec::{Body, Hello, Message};
use zre::Uuid;

fn ping_args(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--interface",
        "lo",
        "--port",
        &port.to_string(),
        "--beacon-interval",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn ping_against_ping_reports_round_trips() {
    let port = 46040;
    let mut b = Proc::spawn(
        PING,
        &ping_args(port, &["--name", "b", "--interval", "200ms"]),
    );
    let mut a = Proc::spawn(
        PING,
        &ping_args(
            port,
            &["--name", "a", "--interval", "200ms", "--count", "3"],
        ),
    );
    let enter = a.expect("b enters", |v| kind(v) == "enter" && v["name"] == "b");
    let b_uuid = enter["peer"].as_str().unwrap().to_string();
    a.assert_exit(0);
    let out: Vec<_> = a.rest();
    let all: Vec<_> = a.seen.clone();
    // Round trips follow b's enter, so expect() above consumed none of them.
    let rtts: Vec<_> = out.iter().filter(|v| kind(v) == "rtt").collect();
    assert_eq!(rtts.len(), 3, "{all:?}");
    for (i, r) in rtts.iter().enumerate() {
        assert_eq!(r["peer"], b_uuid.as_str());
        assert_eq!(r["seq"], i as u64 + 1);
        assert!(r["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{r}");
    }
    // zpinger: b whispered "Hello" on our enter, we answered with a "Hello" shout.
    assert!(
        out.iter()
            .any(|v| kind(v) == "whisper" && v["text"] == "Hello"),
        "{all:?}"
    );
    let summary = out.iter().find(|v| kind(v) == "summary").expect("summary");
    assert_eq!(summary["peer"], b_uuid.as_str());
    assert_eq!(summary["sent"], 3);
    assert_eq!(summary["received"], 3);
    assert_eq!(summary["loss"], 0.0);
    let (min, avg, max) = (
        summary["min_ms"].as_f64().unwrap(),
        summary["avg_ms"].as_f64().unwrap(),
        summary["max_ms"].as_f64().unwrap(),
    );
    assert!(min <= avg && avg <= max, "{summary}");
    assert_eq!(out.last().map(kind), Some("summary"));

    // b saw a leave at once, kept pinging until Ctrl-C, and sums up.
    b.expect("a exits", |v| kind(v) == "exit" && v["name"] == "a");
    b.signal("INT");
    b.assert_exit(0);
    let rest = b.rest();
    let s = rest
        .iter()
        .find(|v| kind(v) == "summary")
        .expect("b's summary");
    assert_eq!(s["name"], "a");
    assert!(s["received"].as_u64().unwrap() >= 1, "{s}");
}

#[test]
fn count_ends_the_run_without_a_peer_and_total_loss_exits_1() {
    // Before (issue 11, item 7): with no peer zre-ping ran on forever.
    let started = Instant::now();
    let mut p = Proc::spawn(
        PING,
        &ping_args(46260, &["--interval", "200ms", "--count", "3"]),
    );
    p.assert_exit(1);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        p.stderr(),
        "",
        "total loss is said by the status alone, as ping(8)"
    );
    let out = p.rest();
    assert!(out.iter().all(|v| kind(v) == "stop"), "{out:?}");
}

#[test]
fn deadline_bounds_the_run_and_quiet_prints_only_summaries() {
    let port = 46261;
    let _peer = Proc::spawn(LISTEN, &node_args(port));
    // No --count: without -w this pings every 200 ms until Ctrl-C.
    let started = Instant::now();
    let mut p = Proc::spawn(
        PING,
        &ping_args(port, &["--interval", "200ms", "-w", "1500ms", "-q"]),
    );
    p.assert_exit(0);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    let out = p.rest();
    assert_eq!(out.len(), 1, "only the summary: {out:?}");
    let s = &out[0];
    assert_eq!(kind(s), "summary");
    let (sent, received) = (s["sent"].as_u64().unwrap(), s["received"].as_u64().unwrap());
    assert!((3..=8).contains(&sent), "{s}");
    assert_eq!(received, sent, "{s}");
    assert_eq!(s["loss"], 0.0);
}

/// A ZRE peer on lo that says HELLO, answers the one PING that proves its endpoint, then
/// shouts "Hello" to GLOBAL every 200 ms and never answers a PING again.
struct Shouter {
    uuid: Uuid,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shouter {
    fn start(port: u16) -> Shouter {
        let uuid = Uuid::new_v4();
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let ctx = zre::zmq::Context::new();
            let mailbox = ctx.socket(zre::zmq::ROUTER).unwrap();
            // Nothing queued may hold up the end (the context waits for it otherwise).
            mailbox.set_linger(0).unwrap();
            mailbox.bind("tcp://127.0.0.1:*").unwrap();
            let endpoint = mailbox.get_last_endpoint().unwrap().unwrap();
            let mailbox_port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            udp.set_broadcast(true).unwrap();
            let beacon = Beacon::new(uuid, mailbox_port).encode();
            let mut link: Option<zre::zmq::Socket> = None;
            let mut seq = 0u16;
            let mut next_beacon = Instant::now();
            let mut next_shout = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if Instant::now() >= next_beacon {
                    let _ = udp.send_to(&beacon, ("127.255.255.255", port));
                    next_beacon += Duration::from_millis(100);
                }
                if let Some(l) = &link {
                    if Instant::now() >= next_shout {
                        seq += 1;
                        let shout = Message::new(
                            seq,
                            Body::Shout {
                                group: "GLOBAL".into(),
                            },
                        );
                        // zre-ping may be gone: never wait for it.
                        let _ = l.send_multipart(
                            [shout.to_bytes().unwrap(), b"Hello".to_vec()],
                            zre::zmq::DONTWAIT,
                        );
                        next_shout += Duration::from_millis(200);
                    }
                }
                if mailbox.poll(zre::zmq::POLLIN, 20).unwrap() == 0 {
                    continue;
                }
                let frames = mailbox.recv_multipart(0).unwrap();
                let Ok(msg) = Message::decode(&frames[1]) else {
                    continue;
                };
                // zre-ping's HELLO: link back, say HELLO in GLOBAL, and answer the PING
                // that follows it blindly (the node's proof of our endpoint). That is the
                // only PING-OK we ever send.
                if let (Body::Hello(h), None) = (&msg.body, &link) {
                    let l = ctx.socket(zre::zmq::DEALER).unwrap();
                    l.set_linger(0).unwrap();
                    let mut identity = vec![1u8];
                    identity.extend_from_slice(uuid.as_bytes());
                    l.set_identity(&identity).unwrap();
                    l.connect(&h.endpoint).unwrap();
                    let hello = Message::new(
                        1,
                        Body::Hello(Hello {
                            endpoint: endpoint.clone(),
                            groups: vec!["GLOBAL".into()],
                            status: 1,
                            name: "shouter".into(),
                            headers: Default::default(),
                        }),
                    );
                    l.send(hello.to_bytes().unwrap(), 0).unwrap();
                    l.send(Message::new(2, Body::PingOk).to_bytes().unwrap(), 0)
                        .unwrap();
                    seq = 2;
                    next_shout = Instant::now();
                    link = Some(l);
                }
            }
        });
        Shouter {
            uuid,
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Shouter {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn hello_shouts_are_not_answers() {
    // Before (issue 11, item 7): each "Hello" shout answered the oldest ping, so a peer
    // shouting every 200 ms showed 0 % loss though it never answered one.
    let port = 46262;
    let shouter = Shouter::start(port);
    let hex = shouter.uuid.simple().to_string().to_uppercase();
    let mut p = Proc::spawn(
        PING,
        &ping_args(
            port,
            &[
                "--interval",
                "200ms",
                "--count",
                "3",
                "--reply-timeout",
                "500ms",
                "--evasive",
                "20s",
                "--expired",
                "60s",
            ],
        ),
    );
    p.assert_exit(1);
    let out = p.rest();
    let of = |k: &str| -> Vec<_> {
        out.iter()
            .filter(|v| kind(v) == k && v["peer"] == hex.as_str())
            .collect()
    };
    assert!(
        of("shout").iter().any(|v| v["text"] == "Hello"),
        "it did shout: {out:?}"
    );
    assert_eq!(of("rtt").len(), 0, "{out:?}");
    assert_eq!(of("lost").len(), 3, "{out:?}");
    let s = of("summary");
    assert_eq!(s.len(), 1, "{out:?}");
    assert_eq!(s[0]["sent"], 3);
    assert_eq!(s[0]["received"], 0);
    assert_eq!(s[0]["loss"], 100.0);
    assert!(s[0]["min_ms"].is_null());
}
