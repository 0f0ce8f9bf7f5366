//! zre-ping: Zyre's zpinger, plus round-trip times like ping(8) (see `man zre-ping`).
//!
//! zpinger's rules: join GLOBAL; whisper "Hello" to each peer that enters; answer a
//! "Hello" whisper with a "Hello" shout to GLOBAL. A ping is that whisper, its answer the
//! peer's next "Hello" shout; answers carry no sequence number, so each answers the
//! peer's oldest ping still waiting.

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use zre::cli::args::Checked as _;
use zre::cli::args::{Format, PingArgs};
use zre::cli::output::{escape, short_time, Obj, Output};
use zre::cli::{self};
use zre::{uuid_hex, Event, Node, Uuid};

const GROUP: &str = "GLOBAL";
const HELLO: &[u8] = b"Hello";

fn main() -> ExitCode {
    let args = PingArgs::parse_checked();
    cli::run("zre-ping", || Pinger::new(&args)?.run())
}

#[derive(Debug)]
struct Peer {
    name: String,
    present: bool,
    sent: u64,
    received: u64,
    rtts: Vec<Duration>,
    waiting: VecDeque<(u64, Instant)>,
    next_ping: Option<Instant>,
}

struct Pinger<'a> {
    args: &'a PingArgs,
    every: Option<Duration>,
    out: Output,
    node: Node,
    peers: BTreeMap<Uuid, Peer>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl<'a> Pinger<'a> {
    fn new(args: &'a PingArgs) -> anyhow::Result<Self> {
        let out = Output::stdout(args.output.format, args.output.color);
        let node = cli::start_node(&args.node)?;
        node.join(GROUP)?;
        // --count without --interval pings every second, like ping(8).
        let every = args.every.or(args.count.map(|_| Duration::from_secs(1)));
        Ok(Pinger {
            args,
            every,
            out,
            node,
            peers: BTreeMap::new(),
        })
    }

    fn human(&self) -> bool {
        self.out.format() == Format::Human
    }

    fn report(
        &mut self,
        kind: &str,
        peer: Uuid,
        seq: u64,
        rtt: Option<Duration>,
    ) -> anyhow::Result<()> {
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
                    ms(r)
                ),
                None => format!("{t} no reply from {name} ({}): seq={seq}", uuid_hex(&peer)),
            }
        } else {
            let mut o = Obj::event(kind)
                .str("peer", &uuid_hex(&peer))
                .str("name", &name)
                .field("seq", Value::from(seq));
            if let Some(r) = rtt {
                o = o.field("rtt_ms", Value::from(ms(r)));
            }
            o.finish()
        };
        self.out.line(&line)?;
        Ok(())
    }

    fn ping(&mut self, peer: Uuid, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // The peer may have just gone: its EXIT follows, nothing to report here.
        if self.node.whisper(peer, vec![HELLO.to_vec()]).is_ok() {
            p.sent += 1;
            p.waiting.push_back((p.sent, now));
        }
        p.next_ping = match (self.every, self.args.count) {
            (Some(_), Some(n)) if p.sent >= n => None,
            (Some(e), _) => Some(now + e),
            (None, _) => None,
        };
    }

    /// Pings that are due, and pings that waited too long.
    fn tick(&mut self, now: Instant) -> anyhow::Result<()> {
        let uuids: Vec<Uuid> = self.peers.keys().copied().collect();
        for u in uuids {
            let mut lost = Vec::new();
            if let Some(p) = self.peers.get_mut(&u) {
                while let Some(&(seq, at)) = p.waiting.front() {
                    if now.duration_since(at) < self.args.reply_timeout && p.present {
                        break;
                    }
                    p.waiting.pop_front();
                    lost.push(seq);
                }
            }
            for seq in lost {
                self.report("lost", u, seq, None)?;
            }
            let due = self
                .peers
                .get(&u)
                .is_some_and(|p| p.present && p.next_ping.is_some_and(|t| t <= now));
            if due {
                self.ping(u, now);
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        let Some(n) = self.args.count else {
            return false;
        };
        !self.peers.is_empty()
            && self
                .peers
                .values()
                .all(|p| p.waiting.is_empty() && (p.sent >= n || !p.present))
    }

    fn handle(&mut self, event: &Event, now: Instant) -> anyhow::Result<()> {
        self.out.emit(event)?;
        match event {
            Event::Enter { peer, name, .. } => {
                self.peers.insert(
                    *peer,
                    Peer {
                        name: name.to_string(),
                        present: true,
                        sent: 0,
                        received: 0,
                        rtts: Vec::new(),
                        waiting: VecDeque::new(),
                        next_ping: None,
                    },
                );
                self.ping(*peer, now);
            }
            Event::Exit { peer, .. } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.present = false;
                }
            }
            Event::Whisper { content, .. } if content.as_slice() == [HELLO] => {
                self.node.shout(GROUP, vec![HELLO.to_vec()])?;
            }
            Event::Shout {
                peer,
                group,
                content,
                ..
            } if group == GROUP && content.as_slice() == [HELLO] => {
                let answered = self.peers.get_mut(peer).and_then(|p| {
                    let (seq, at) = p.waiting.pop_front()?;
                    let rtt = now.duration_since(at);
                    p.received += 1;
                    p.rtts.push(rtt);
                    Some((seq, rtt))
                });
                if let Some((seq, rtt)) = answered {
                    self.report("rtt", *peer, seq, Some(rtt))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn summary(&mut self) -> anyhow::Result<()> {
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
                    (Some(ms(*min)), Some(ms(avg)), Some(ms(*max)))
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
        Ok(())
    }

    fn run(mut self) -> anyhow::Result<()> {
        let stop = cli::stop_flag()?;
        cli::stop_when_stdout_closes(&stop);
        while !stop.load(Ordering::SeqCst) && !self.done() {
            self.tick(Instant::now())?;
            if let Some(event) = self
                .node
                .recv_timeout(cli::TICK.min(self.every.unwrap_or(cli::TICK)))?
            {
                self.handle(&event, Instant::now())?;
            }
        }
        self.node.stop();
        while let Ok(Some(event)) = self.node.try_recv() {
            self.out.emit(&event)?;
        }
        self.summary()
    }
}
