//! zre-ping: Zyre's zpinger, plus round-trip times like ping(8) (see `man zre-ping`).
//!
//! zpinger's rules, kept for interoperability: join GLOBAL; whisper "Hello" to each peer
//! that enters; answer a "Hello" whisper with a "Hello" shout to GLOBAL. The round trips
//! are not measured with those (a "Hello" shout answers nothing in particular): each ping
//! is [`Node::ping`], a ZRE PING that the peer's node answers with a PING-OK, timed by
//! our node. Each runs on a thread of its own, so that a peer slow to answer holds up
//! neither the events nor the pings of the others.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use zre::cli::args::Checked as _;
use zre::cli::args::{Format, PingArgs};
use zre::cli::output::{escape, millis, short_time, Obj, Output};
use zre::cli::{self};
use zre::{uuid_hex, Event, Node, Uuid};

const GROUP: &str = "GLOBAL";
const HELLO: &[u8] = b"Hello";

/// How long the main loop waits for an event while pings are out, so that their answers
/// are reported within this (their round trips are measured by the node, not here).
const POLL: Duration = Duration::from_millis(10);

/// How long a run that is ending (Ctrl-C, --deadline) waits for the pings still out.
const GRACE: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let args = PingArgs::parse_checked();
    cli::run_status("zre-ping", || run(&args))
}

#[derive(Debug, Default)]
struct Peer {
    name: String,
    present: bool,
    sent: u64,
    received: u64,
    rtts: Vec<Duration>,
    /// Pings out, not yet answered nor lost.
    out: u64,
    next_ping: Option<Instant>,
}

/// What a ping thread reports: the peer, the ping's sequence number, the outcome.
type Answer = (Uuid, u64, Result<Duration, zre::Error>);

struct Pinger<'a> {
    args: &'a PingArgs,
    /// How often each peer is pinged again (None: once, when it enters).
    every: Option<Duration>,
    out: Output,
    peers: BTreeMap<Uuid, Peer>,
}

impl Pinger<'_> {
    fn human(&self) -> bool {
        self.out.format() == Format::Human
    }

    fn emit(&mut self, event: &Event) -> anyhow::Result<()> {
        if !self.args.quiet {
            self.out.emit(event)?;
        }
        Ok(())
    }

    fn report(&mut self, peer: Uuid, seq: u64, rtt: Option<Duration>) -> anyhow::Result<()> {
        if self.args.quiet {
            return Ok(());
        }
        let name = self
            .peers
            .get(&peer)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let line = if self.human() {
            let t = short_time();
            let name = escape(&name);
            match rtt {
                Some(r) => format!(
                    "{t} reply from {name} ({}): seq={seq} time={} ms",
                    uuid_hex(&peer),
                    millis(r)
                ),
                None => format!("{t} no reply from {name} ({}): seq={seq}", uuid_hex(&peer)),
            }
        } else {
            let mut o = Obj::event(if rtt.is_some() { "rtt" } else { "lost" })
                .str("peer", &uuid_hex(&peer))
                .str("name", &name)
                .field("seq", Value::from(seq));
            if let Some(r) = rtt {
                o = o.field("rtt_ms", Value::from(millis(r)));
            }
            o.finish()
        };
        self.out.line(&line)?;
        Ok(())
    }

    /// Peers due a ping: their sequence numbers, counted as sent and out.
    fn due(&mut self, now: Instant) -> Vec<(Uuid, u64)> {
        let mut due = Vec::new();
        for (u, p) in &mut self.peers {
            if !p.present || p.next_ping.is_none_or(|t| t > now) {
                continue;
            }
            p.sent += 1;
            p.out += 1;
            due.push((*u, p.sent));
            p.next_ping = match (self.every, self.args.count) {
                (_, Some(n)) if p.sent >= n => None,
                // Not before now: a late tick does not make pings bunch up.
                (Some(e), _) => p.next_ping.map(|t| (t + e).max(now)),
                (None, _) => None,
            };
        }
        due
    }

    /// A ping's outcome. One cut short by our own stop is not counted at all.
    fn answer(&mut self, (peer, seq, result): Answer) -> anyhow::Result<()> {
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        p.out -= 1;
        match result {
            Ok(rtt) => {
                p.received += 1;
                p.rtts.push(rtt);
                self.report(peer, seq, Some(rtt))
            }
            // No answer in time, or the peer left (or was never reachable).
            Err(zre::Error::Timeout | zre::Error::UnknownPeer(_)) => self.report(peer, seq, None),
            // Our node stopped first: the ping neither came back nor was lost.
            Err(zre::Error::Stopped) => {
                p.sent -= 1;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// With --count N: every peer met had its N pings answered or lost (or left), and
    /// one of them had all N, or N intervals passed (no peer, or none stayed).
    fn done(&self, now: Instant, window_end: Option<Instant>) -> bool {
        let (Some(n), Some(end)) = (self.args.count, window_end) else {
            return false;
        };
        let finished = self
            .peers
            .values()
            .all(|p| p.out == 0 && (p.sent >= n || !p.present));
        finished && (now >= end || self.peers.values().any(|p| p.sent >= n))
    }

    fn handle(&mut self, node: &Node, event: &Event, now: Instant) -> anyhow::Result<()> {
        self.emit(event)?;
        match event {
            Event::Enter { peer, name, .. } => {
                // zpinger's greeting; the peer may have gone already (its EXIT follows).
                let _ = node.whisper(*peer, vec![HELLO.to_vec()]);
                let p = self.peers.entry(*peer).or_default();
                p.name = name.to_string();
                p.present = true;
                if self.args.count.is_none_or(|n| p.sent < n) {
                    p.next_ping = Some(now);
                }
            }
            Event::Exit { peer, .. } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.present = false;
                    p.next_ping = None;
                }
            }
            Event::Whisper { content, .. } if content.as_slice() == [HELLO] => {
                node.shout(GROUP, vec![HELLO.to_vec()])?;
            }
            _ => {}
        }
        Ok(())
    }

    /// One summary per peer pinged; whether any ping was answered.
    fn summary(&mut self) -> anyhow::Result<bool> {
        let mut lines = Vec::new();
        for (u, p) in &self.peers {
            if p.sent == 0 {
                continue;
            }
            let loss = 100.0 * (p.sent - p.received) as f64 / p.sent as f64;
            let loss = (loss * 10.0).round() / 10.0;
            let (min, avg, max) = match (p.rtts.iter().min(), p.rtts.iter().max()) {
                (Some(min), Some(max)) => {
                    let sum: Duration = p.rtts.iter().sum();
                    let avg = sum / p.rtts.len() as u32;
                    (Some(millis(*min)), Some(millis(avg)), Some(millis(*max)))
                }
                _ => (None, None, None),
            };
            lines.push(if self.human() {
                let mut s = format!(
                    "--- {} ({}): {} sent, {} received, {loss}% loss",
                    escape(&p.name),
                    uuid_hex(u),
                    p.sent,
                    p.received
                );
                if let (Some(min), Some(avg), Some(max)) = (min, avg, max) {
                    s.push_str(&format!(", rtt min/avg/max = {min}/{avg}/{max} ms"));
                }
                s
            } else {
                Obj::event("summary")
                    .str("peer", &uuid_hex(u))
                    .str("name", &p.name)
                    .field("sent", Value::from(p.sent))
                    .field("received", Value::from(p.received))
                    .field("loss", Value::from(loss))
                    .field("min_ms", min.map_or(Value::Null, Value::from))
                    .field("avg_ms", avg.map_or(Value::Null, Value::from))
                    .field("max_ms", max.map_or(Value::Null, Value::from))
                    .finish()
            });
        }
        for l in lines {
            self.out.line(&l)?;
        }
        Ok(self.peers.values().any(|p| p.received > 0))
    }
}

/// Ok(0): some ping was answered (or our reader left); Ok(1): none was, as ping(8).
fn run(args: &PingArgs) -> anyhow::Result<u8> {
    let stop = cli::stop_flag()?;
    cli::stop_when_stdout_closes(&stop);
    let out = Output::stdout(args.output.format, args.output.color);
    let node = cli::start_node(&args.node)?;
    node.join(GROUP)?;
    let start = Instant::now();
    // --count without --interval pings every second, like ping(8).
    let every = args.every.or(args.count.map(|_| Duration::from_secs(1)));
    let window_end = args
        .count
        .zip(every)
        .map(|(n, e)| start + e.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX)));
    let deadline = args.deadline.map(|d| start + d);
    let mut pinger = Pinger {
        args,
        every,
        out,
        peers: BTreeMap::new(),
    };
    let (tx, rx) = mpsc::channel::<Answer>();
    let answered = std::thread::scope(|s| -> anyhow::Result<bool> {
        let node = &node;
        let mut body = || -> anyhow::Result<()> {
            loop {
                let now = Instant::now();
                if stop.load(Ordering::SeqCst)
                    || deadline.is_some_and(|d| now >= d)
                    || pinger.done(now, window_end)
                {
                    break;
                }
                for (peer, seq) in pinger.due(now) {
                    let tx = tx.clone();
                    let timeout = args.reply_timeout;
                    s.spawn(move || {
                        let _ = tx.send((peer, seq, node.ping(peer, timeout)));
                    });
                }
                while let Ok(a) = rx.try_recv() {
                    pinger.answer(a)?;
                }
                let waiting = pinger.peers.values().any(|p| p.out > 0);
                let mut wait = if waiting { POLL } else { cli::TICK };
                if let Some(e) = every {
                    wait = wait.min(e);
                }
                if let Some(d) = deadline {
                    wait = wait.min(d.saturating_duration_since(now));
                }
                if let Some(event) = node.recv_timeout(wait)? {
                    pinger.handle(node, &event, Instant::now())?;
                }
            }
            // Ending early (Ctrl-C, --deadline): the pings out get a moment to come back.
            let grace = Instant::now() + GRACE;
            while pinger.peers.values().any(|p| p.out > 0) {
                let left = grace.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(a) => pinger.answer(a)?,
                    Err(_) => break,
                }
            }
            Ok(())
        };
        let result = body();
        // Also on an error: the ping threads end once the node has stopped.
        node.stop();
        result?;
        // The pings still out return Stopped now: not counted.
        while pinger.peers.values().any(|p| p.out > 0) {
            match rx.recv_timeout(cli::TICK) {
                Ok(a) => pinger.answer(a)?,
                Err(_) => break,
            }
        }
        while let Ok(Some(event)) = node.try_recv() {
            pinger.emit(&event)?;
        }
        pinger.summary()
    })?;
    Ok(if answered || cli::stdout_closed() {
        cli::EXIT_OK
    } else {
        cli::EXIT_FAILURE
    })
}
