//! Shared by the real-socket suites (`nodes`, `processes`, `interop`, `lab`): starting
//! nodes on loopback, waiting for events with generous deadlines, and driving the test
//! doubles in child processes (`peer.rs`, over the one harness `tests/cli_support`), whose
//! events are the tools' NDJSON.
//!
//! Network safety: every node here uses interface `lo` (beacons to 127.255.255.255), and
//! every test passes its own beacon port from 47000-47999, never 5670. Every child process
//! is killed (by its PID) and reaped when its guard drops, also when a test fails.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use zre::{Builder, Event, Node, Uuid};

/// How long to wait for an event that must come: generous, the machine may be loaded.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Beacon interval for test nodes: short, so discovery is quick.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// A builder for a test node: loopback, its own beacon port, a short beacon interval.
pub fn builder(port: u16, name: &str) -> Builder {
    assert!((47000..48000).contains(&port), "test ports are 47000-47999");
    Node::builder()
        .name(name)
        .interface("lo")
        .port(port)
        .interval(INTERVAL)
}

/// Starts a test node (see [`builder`]).
pub fn start(port: u16, name: &str) -> Node {
    builder(port, name).start().expect("start node")
}

/// Events from one source, with the ones a test did not ask for yet kept in order, so
/// waiting for one event never loses another.
pub struct Inbox<'a, E> {
    label: String,
    backlog: VecDeque<E>,
    source: Box<dyn FnMut(Duration) -> Option<E> + 'a>,
}

impl<'a, E: Debug> Inbox<'a, E> {
    /// An inbox over `source`, which returns the next event or `None` after the timeout.
    pub fn new(label: impl Into<String>, source: impl FnMut(Duration) -> Option<E> + 'a) -> Self {
        Inbox {
            label: label.into(),
            backlog: VecDeque::new(),
            source: Box::new(source),
        }
    }

    /// The first event (oldest first, waiting up to `within`) that `pred` accepts; the
    /// others stay for later. Panics with everything seen if none comes.
    pub fn expect_within(
        &mut self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&E) -> bool,
    ) -> E {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i).unwrap();
        }
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: no {what} within {within:?}; unmatched events: {:#?}",
                    self.label, self.backlog
                );
            }
            if let Some(e) = (self.source)(left.min(Duration::from_millis(200))) {
                if pred(&e) {
                    return e;
                }
                self.backlog.push_back(e);
            }
        }
    }

    /// [`Inbox::expect_within`] with the default [`DEADLINE`].
    pub fn expect(&mut self, what: &str, pred: impl FnMut(&E) -> bool) -> E {
        self.expect_within(DEADLINE, what, pred)
    }

    /// Collects what arrives during `d` (plus the backlog) and returns it all, leaving the
    /// inbox empty: for checking that something did NOT happen.
    pub fn drain_for(&mut self, d: Duration) -> Vec<E> {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(e) = (self.source)(left) {
                self.backlog.push_back(e);
            }
        }
        self.backlog.drain(..).collect()
    }

    /// What has arrived but was not asked for yet (without waiting).
    pub fn pending(&mut self) -> Vec<&E> {
        while let Some(e) = (self.source)(Duration::ZERO) {
            self.backlog.push_back(e);
        }
        self.backlog.iter().collect()
    }
}

/// An inbox over a node's events.
pub fn inbox<'a>(node: &'a Node, label: &str) -> Inbox<'a, Event> {
    Inbox::new(label, move |d| node.recv_timeout(d).ok().flatten())
}

/// Matches ENTER from `peer`.
pub fn is_enter(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Enter { peer: p, .. } if *p == peer)
}

/// Matches EXIT of `peer`.
pub fn is_exit(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Exit { peer: p, .. } if *p == peer)
}

/// Matches JOIN of `peer` to `group`.
pub fn is_join(peer: Uuid, group: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::Join { peer: p, group: g, .. } if *p == peer && g == group)
}

/// Matches LEAVE of `peer` from `group`.
pub fn is_leave(peer: Uuid, group: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::Leave { peer: p, group: g, .. } if *p == peer && g == group)
}

/// Matches any WHISPER from `peer`.
pub fn is_whisper(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Whisper { peer: p, .. } if *p == peer)
}

/// The kinds of EVASIVE, SILENT and EXIT events about `peer`, in order, up to its EXIT:
/// the life cycle of a peer that died without saying goodbye.
pub fn death_of(inbox: &mut Inbox<'_, Event>, what: &str, peer: Uuid) -> Vec<&'static str> {
    let mut order = Vec::new();
    loop {
        let e = inbox.expect(what, |e| {
            e.peer() == Some(peer)
                && matches!(
                    e,
                    Event::Evasive { .. } | Event::Silent { .. } | Event::Exit { .. }
                )
        });
        order.push(e.kind());
        if e.kind() == "exit" {
            return order;
        }
    }
}

/// Matches any SHOUT from `peer`.
pub fn is_shout(peer: Uuid) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Shout { peer: p, .. } if *p == peer)
}

/// Binary content that exercises framing: several frames, empty ones (first, middle and
/// last), every byte value, a NUL-only frame, non-ASCII UTF-8 and a frame over 64 KiB.
pub fn tricky_content() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        (0..=255u8).collect(),
        Vec::new(),
        vec![0],
        "héllo wörld ✓".as_bytes().to_vec(),
        (0..70_000u32).map(|i| (i % 251) as u8).collect(),
        Vec::new(),
    ]
}

/// Binary content pyre can carry (it needs at least one frame; empty ones inside are fine).
pub fn tricky_content_small() -> Vec<Vec<u8>> {
    vec![
        (0..=255u8).collect(),
        Vec::new(),
        vec![0, 0xff, 0],
        "ünïcode ✓".as_bytes().to_vec(),
        Vec::new(),
    ]
}

// ------------------------------------------------------------------ NDJSON events

#[path = "../cli_support/mod.rs"]
pub mod cli_support;
mod peer;
#[allow(unused_imports)]
pub use peer::*;

/// Content as the test doubles' commands take it: every frame `{"base64": ..}`.
pub fn frames_json(frames: &[Vec<u8>]) -> Value {
    json!(frames
        .iter()
        .map(|f| json!({"base64": B64.encode(f)}))
        .collect::<Vec<_>>())
}

/// The content of an NDJSON whisper/shout event: its `frames`, each `{"text": ..}` or
/// `{"base64": ..}`. Checks the shape too: `text` is there exactly when the content is one
/// UTF-8 frame, and a frame is `base64` only when it is not UTF-8.
pub fn frames_of(ev: &Value) -> Vec<Vec<u8>> {
    let frames: Vec<Vec<u8>> = ev["frames"]
        .as_array()
        .unwrap_or_else(|| panic!("no frames in {ev}"))
        .iter()
        .map(|f| match (f.get("text"), f.get("base64")) {
            (Some(Value::String(t)), None) => t.as_bytes().to_vec(),
            (None, Some(Value::String(b))) => {
                let bytes = B64.decode(b).unwrap_or_else(|e| panic!("{e}: {ev}"));
                assert!(
                    std::str::from_utf8(&bytes).is_err(),
                    "UTF-8 as base64: {ev}"
                );
                bytes
            }
            _ => panic!("a frame is {{\"text\"}} or {{\"base64\"}}: {ev}"),
        })
        .collect();
    match frames.as_slice() {
        [one] if std::str::from_utf8(one).is_ok() => {
            assert_eq!(
                ev["text"].as_str().map(str::as_bytes),
                Some(&one[..]),
                "{ev}"
            )
        }
        _ => assert!(ev.get("text").is_none(), "text with other content: {ev}"),
    }
    frames
}

/// The UUID in a JSON field (32 hex digits).
pub fn uuid_of(ev: &Value, key: &str) -> Uuid {
    Uuid::parse_str(
        ev[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {ev}")),
    )
    .unwrap_or_else(|e| panic!("bad {key} in {ev}: {e}"))
}

/// Matches an NDJSON event of `kind` whose `peer` is `peer`.
pub fn js(kind: &'static str, peer: Uuid) -> impl Fn(&Value) -> bool {
    let hex = zre::uuid_hex(&peer);
    move |v| v["type"] == kind && v["peer"] == hex.as_str()
}

/// Matches an NDJSON JOIN, LEAVE or SHOUT (`kind`) of `peer` in `group`.
pub fn jsg<'a>(kind: &'static str, peer: Uuid, group: &'a str) -> impl Fn(&Value) -> bool + 'a {
    let is = js(kind, peer);
    move |v| is(v) && v["group"] == group
}

/// The events of the given kinds among `events`.
pub fn of_kind<'a>(events: &'a [Value], kinds: &[&str]) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|v| kinds.iter().any(|k| v["type"] == *k))
        .collect()
}

/// A 1 KiB frame carrying `i` in its first 8 bytes (little-endian), as one message.
pub fn numbered(i: usize) -> Vec<Vec<u8>> {
    let mut frame = vec![0u8; 1024];
    frame[..8].copy_from_slice(&(i as u64).to_le_bytes());
    vec![frame]
}

/// The number [`numbered`] put in a message.
pub fn number_of(content: &[Vec<u8>]) -> usize {
    u64::from_le_bytes(content[0][..8].try_into().unwrap()) as usize
}

/// Waits until `count` stops moving (unchanged for `steady`) and returns where it
/// stopped, or None if it reached `target`; panics after 90 s of neither.
pub fn stalls(
    count: &std::sync::atomic::AtomicUsize,
    target: usize,
    steady: Duration,
) -> Option<usize> {
    let give_up = Instant::now() + Duration::from_secs(90);
    let (mut last, mut since) = (usize::MAX, Instant::now());
    while Instant::now() < give_up {
        let now = count.load(std::sync::atomic::Ordering::SeqCst);
        if now >= target {
            return None;
        }
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= steady {
            return Some(now);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the sender neither finished nor stopped within 90 s");
}
