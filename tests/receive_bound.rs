//! The receive path is bounded (ports 47400-47409): a node whose application stops
//! reading stops reading its mailbox once `event_limit` events wait, so its memory stays
//! bounded and the sender's whisper waits; once the application reads again, everything
//! arrives once and in order. Two applications that whisper to each other and read only
//! between sends keep going; a slow but steady reader is not expired by its peers; a stop
//! says goodbye as soon as the peers answered.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use zre::{Event, Node};

/// This process's resident memory, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Starts two nodes on `port` and waits until each has seen the other ENTER.
fn pair(port: u16, tune: impl Fn(zre::Builder) -> zre::Builder) -> (Node, Node) {
    let a = tune(builder(port, "a")).start().unwrap();
    let b = tune(builder(port, "b")).start().unwrap();
    inbox(&a, "a").expect("a sees b", is_enter(b.uuid()));
    inbox(&b, "b").expect("b sees a", is_enter(a.uuid()));
    (a, b)
}

#[test]
fn a_paused_reader_keeps_memory_bounded_and_the_sender_waits_then_all_arrives() {
    const N: usize = 300_000;
    let (a, b) = pair(47401, |b| b);
    let before = rss();
    let sent = Arc::new(AtomicUsize::new(0));
    let result = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            for i in 0..N {
                a.whisper(b.uuid(), numbered(i))?;
                sent.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), zre::Error>(())
        });
        // B's application reads nothing: A must end up waiting, well short of N.
        let stopped_at = stalls(&sent, N, Duration::from_secs(1));
        let grown = rss().saturating_sub(before);
        let stats = b.stats().unwrap();
        // Now B reads everything, in order, once.
        let mut next = 0;
        let give_up = Instant::now() + Duration::from_secs(120);
        while next < N && Instant::now() < give_up {
            match b.recv_timeout(Duration::from_secs(1)).unwrap() {
                Some(Event::Whisper { peer, content, .. }) => {
                    assert_eq!(peer, a.uuid());
                    assert_eq!(number_of(&content), next, "once and in order");
                    next += 1;
                }
                Some(Event::Exit { .. }) => panic!("b saw a leave"),
                _ => {}
            }
        }
        sender.join().unwrap().unwrap();
        (stopped_at, grown, stats, next)
    });
    let (stopped_at, grown, stats, received) = result;
    eprintln!(
        "sender stopped at {stopped_at:?} of {N}; memory grew {} MB; {} stalls",
        grown >> 20,
        stats.receive_stalls
    );
    assert!(stopped_at.is_some(), "the sender never waited");
    assert!(
        grown <= 64 << 20,
        "memory grew by {} MB with a paused reader",
        grown >> 20
    );
    assert!(stats.receive_stalls >= 1, "{stats:?}");
    assert_eq!(received, N);
    // Nobody left on either side.
    let mut ia = inbox(&a, "a");
    assert!(
        !ia.drain_for(Duration::from_millis(300))
            .iter()
            .any(|e| matches!(e, Event::Exit { .. })),
        "a saw b leave"
    );
    assert_eq!(a.stats().unwrap().send_failures, 0);
}

#[test]
fn two_applications_whispering_to_each_other_and_reading_between_sends_keep_going() {
    let secs: u64 = std::env::var("ZRE_ECHO_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    // A small event limit makes the mutual wait come quickly if it can come at all.
    let (a, b) = pair(47402, |b| b.event_limit(100));
    let done = AtomicBool::new(false);
    let counts = [AtomicUsize::new(0), AtomicUsize::new(0)];
    std::thread::scope(|s| {
        for (me, other, got) in [(&a, b.uuid(), &counts[0]), (&b, a.uuid(), &counts[1])] {
            let done = &done;
            s.spawn(move || {
                let mut i = 0;
                while !done.load(Ordering::SeqCst) {
                    // A flat-out sender that reads only between its sends.
                    if let Err(e) = me.whisper(other, numbered(i)) {
                        assert!(done.load(Ordering::SeqCst), "whisper {i} failed: {e}");
                        break;
                    }
                    i += 1;
                    while let Ok(Some(e)) = me.try_recv() {
                        if matches!(e, Event::Whisper { .. }) {
                            got.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        // Progress is counted over windows of a few seconds: a waiting sender is let go
        // when libzmq has taken half its queue (5,000 messages), which a slow reader
        // may take a second or more to read.
        let mut last = [0, 0];
        for second in (0..secs).step_by(3) {
            std::thread::sleep(Duration::from_secs(3));
            let now = [0, 1].map(|i| counts[i].load(Ordering::SeqCst));
            if now[0] == last[0] || now[1] == last[1] {
                done.store(true, Ordering::SeqCst);
                // Unblock the senders: stopping ends a waiting whisper.
                a.stop_timeout(Duration::ZERO);
                b.stop_timeout(Duration::ZERO);
                panic!("no progress in second {second}: received {now:?}, a second ago {last:?}");
            }
            last = now;
        }
        eprintln!("received {last:?} in {secs} s");
        done.store(true, Ordering::SeqCst);
        a.stop_timeout(Duration::ZERO);
        b.stop_timeout(Duration::ZERO);
    });
}

#[test]
fn a_slow_but_steady_reader_is_not_expired() {
    // Short timers: a reader whose answers wait behind seconds of queued messages would
    // be expired after 2 x 1 s without an answer. It reads a few thousand events a
    // second: a waiting sender is let go every 5,000 (half its queue), about once a
    // second.
    let (a, b) = pair(47403, |b| {
        b.evasive_timeout(Duration::from_millis(300))
            .expired_timeout(Duration::from_secs(1))
            .event_limit(200)
    });
    let run = Duration::from_secs(6);
    let stop = AtomicBool::new(false);
    let left = std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                match a.whisper_timeout(b.uuid(), numbered(i), Duration::from_millis(100)) {
                    Ok(()) => i += 1,
                    Err(zre::Error::Timeout) => {}
                    Err(_) => break,
                }
            }
        });
        // B reads far fewer messages a second than A could send.
        let end = Instant::now() + run;
        let mut read = 0;
        while Instant::now() < end {
            if let Some(Event::Exit { .. }) = b.try_recv().unwrap() {
                panic!("b saw a leave");
            }
            read += 1;
            std::thread::sleep(Duration::from_micros(200));
        }
        stop.store(true, Ordering::SeqCst);
        let left: Vec<Event> = std::iter::from_fn(|| a.try_recv().unwrap()).collect();
        eprintln!("b read {read} events in {run:?}");
        left
    });
    let exits: Vec<_> = left
        .iter()
        .filter(|e| matches!(e, Event::Exit { .. }))
        .collect();
    assert!(exits.is_empty(), "a expired the slow reader: {exits:?}");
    assert!(a.peers().contains(&b.uuid()));
}

#[test]
fn a_stop_says_goodbye_once_the_peers_answered_not_at_the_next_beacon() {
    // Beacons every 5 s: a stop that waited for the next beacon, sent or heard, would
    // take seconds.
    let (a, b) = pair(47404, |b| {
        b.interval(Duration::from_secs(5))
            .stop_linger(Duration::from_secs(5))
    });
    let mut ib = inbox(&b, "b");
    // A's thread reads events, as an application does, then stops.
    while a.recv_timeout(Duration::from_millis(10)).unwrap().is_some() {}
    let started = Instant::now();
    a.stop();
    let took = started.elapsed();
    ib.expect("a leaves", is_exit(a.uuid()));
    let seen = started.elapsed();
    eprintln!("stop returned after {took:?}; b saw EXIT after {seen:?}");
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    assert!(seen < Duration::from_secs(1), "b saw EXIT after {seen:?}");
}
