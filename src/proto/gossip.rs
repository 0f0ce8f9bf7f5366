//! zgossip: discovery where UDP broadcast does not reach (CZMQ's `zgossip`, as Zyre uses it).
//!
//! A node may be a hub (a ROUTER other nodes connect to), a client of hubs (one DEALER
//! each), or both. Every node publishes one tuple, its UUID (32 upper-case hex digits) to
//! its mailbox endpoint; a hub stores tuples and passes each new one on to everyone
//! connected, and a node connects to every endpoint it learns, as to a beaconed peer.
//!
//! Wire format (zeromq/czmq `src/zgossip_msg.bnf`; ../shared/research/beyond-the-lan.md
//! §1.2): one frame per message, `AA A0`, the message id, the version 1, then for PUBLISH
//! a `string` key (1-byte length), a `longstr` value (4-byte length) and a `u32` ttl in
//! milliseconds. Integers are big endian.
//!
//! This module is pure: the driver feeds it frames and `now` and carries out its
//! [`GossipOutput`]s in order.
//!
//! Where we go beyond CZMQ (whose tuples never expire, so a dead node or a restarted hub
//! leaves ghosts behind), and why it stays compatible:
//! - **Our tuples carry a TTL** (the node's expired timeout) and are published again every
//!   third of it. CZMQ ignores the ttl and drops repeats of a tuple it holds, so to a CZMQ
//!   hub this is a no-op. Our hub and our clients drop a tuple whose TTL ran out.
//! - **Our hub drops the tuples a client published when that client is gone.** CZMQ
//!   clients never PING, so silence proves nothing; instead the hub sends clients it has
//!   not heard from a PONG now and then (a CZMQ client ignores PONGs), and the driver
//!   reports a client to which it can no longer route ([`Gossip::handle_client_gone`]).
//! - **Our client PINGs every 400 ms**: CZMQ's hub forgets a client silent for 1 s and
//!   then refuses its PUBLISH with INVALID, after which CZMQ's own client says HELLO but
//!   never publishes again. Ours answers INVALID with HELLO and its tuples.
//! - **Our hub answers a PING from a client it does not know with INVALID** (CZMQ answers
//!   PONG), so our clients learn at once that a hub restarted. A CZMQ client answers
//!   INVALID with HELLO, which is what a restarted hub needs.
//! - **Our hub survives any frame**: a malformed one is counted and dropped (one kills
//!   CZMQ's hub). Stored tuples are bounded in all, per client and in size.
//! - **A hub does not echo a tuple to the client that published it** (CZMQ does; its
//!   clients ignore it).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::node::{check_endpoint, later};

/// First two bytes of every zgossip frame (`0xAAA0 | 0`).
pub const SIGNATURE: [u8; 2] = [0xAA, 0xA0];
/// The protocol version in every frame.
pub const VERSION: u8 = 1;

/// How often our client PINGs each hub: CZMQ's hub forgets a client after 1 s of silence.
pub const PING_INTERVAL: Duration = Duration::from_millis(400);
/// How often the hub checks that silent clients are still there.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// One zgossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipMessage {
    /// A client opens its session (id 1).
    Hello,
    /// A tuple (id 2).
    Publish(Tuple),
    /// Keep-alive (id 3).
    Ping,
    /// Answer to PING (id 4).
    Pong,
    /// "I do not know you": say HELLO again (id 5).
    Invalid,
}

/// A gossip tuple. Bytes, not text: a hub passes on what it was given unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    /// At most 255 bytes (a `string`).
    pub key: Vec<u8>,
    /// A `longstr`.
    pub value: Vec<u8>,
    /// Time to live in milliseconds; 0 is "no expiry" (all CZMQ ever sends).
    pub ttl: u32,
}

/// Why a frame is not a zgossip message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// The frame ended before a field did.
    #[error("truncated zgossip frame ({0} bytes)")]
    Truncated(usize),
    /// Not `AA A0`.
    #[error("bad zgossip signature {0:02X?}")]
    BadSignature([u8; 2]),
    /// Not one of 1..=5.
    #[error("unknown zgossip message id {0}")]
    UnknownId(u8),
    /// Not version 1.
    #[error("unsupported zgossip version {0}")]
    BadVersion(u8),
    /// Bytes after the last field (CZMQ never sends any).
    #[error("{0} trailing bytes after a zgossip message")]
    TrailingBytes(usize),
    /// A key over 255 bytes cannot be encoded (CZMQ would write a wrong length byte).
    #[error("zgossip key of {0} bytes; at most 255")]
    KeyTooLong(usize),
    /// A value over 4 GiB cannot be encoded.
    #[error("zgossip value of {0} bytes is too long")]
    ValueTooLong(usize),
}

impl GossipMessage {
    fn id(&self) -> u8 {
        match self {
            GossipMessage::Hello => 1,
            GossipMessage::Publish(_) => 2,
            GossipMessage::Ping => 3,
            GossipMessage::Pong => 4,
            GossipMessage::Invalid => 5,
        }
    }

    /// The message's name as the protocol spells it.
    pub fn name(&self) -> &'static str {
        match self {
            GossipMessage::Hello => "HELLO",
            GossipMessage::Publish(_) => "PUBLISH",
            GossipMessage::Ping => "PING",
            GossipMessage::Pong => "PONG",
            GossipMessage::Invalid => "INVALID",
        }
    }

    /// The frame. Fails only for a key over 255 bytes or a value over u32: we never put
    /// a malformed frame on the wire (one stops CZMQ's hub).
    pub fn encode(&self) -> Result<Vec<u8>, GossipError> {
        // "signature, id, version": the id comes before the version, as in ZRE.
        let mut out = vec![SIGNATURE[0], SIGNATURE[1], self.id(), VERSION];
        if let GossipMessage::Publish(t) = self {
            let key_len =
                u8::try_from(t.key.len()).map_err(|_| GossipError::KeyTooLong(t.key.len()))?;
            let value_len = u32::try_from(t.value.len())
                .map_err(|_| GossipError::ValueTooLong(t.value.len()))?;
            out.reserve(1 + t.key.len() + 4 + t.value.len() + 4);
            out.push(key_len);
            out.extend_from_slice(&t.key);
            out.extend_from_slice(&value_len.to_be_bytes());
            out.extend_from_slice(&t.value);
            out.extend_from_slice(&t.ttl.to_be_bytes());
        }
        Ok(out)
    }

    /// Decodes one frame; total over bytes (never panics, allocates only what is present).
    pub fn decode(frame: &[u8]) -> Result<GossipMessage, GossipError> {
        if frame.len() < 4 {
            if frame.len() >= 2 && frame[..2] != SIGNATURE {
                return Err(GossipError::BadSignature([frame[0], frame[1]]));
            }
            return Err(GossipError::Truncated(frame.len()));
        }
        if frame[..2] != SIGNATURE {
            return Err(GossipError::BadSignature([frame[0], frame[1]]));
        }
        let id = frame[2];
        if !(1..=5).contains(&id) {
            return Err(GossipError::UnknownId(id));
        }
        if frame[3] != VERSION {
            return Err(GossipError::BadVersion(frame[3]));
        }
        let body = &frame[4..];
        let msg = match id {
            1 => GossipMessage::Hello,
            3 => GossipMessage::Ping,
            4 => GossipMessage::Pong,
            5 => GossipMessage::Invalid,
            _ => {
                let truncated = || GossipError::Truncated(frame.len());
                let (&key_len, rest) = body.split_first().ok_or_else(truncated)?;
                let key = rest.get(..key_len as usize).ok_or_else(truncated)?;
                let rest = &rest[key_len as usize..];
                let len = rest.get(..4).ok_or_else(truncated)?;
                let value_len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let rest = &rest[4..];
                // Compared before anything is allocated: a length is only a claim.
                if rest.len() < value_len {
                    return Err(truncated());
                }
                let (value, rest) = rest.split_at(value_len);
                let ttl = rest.get(..4).ok_or_else(truncated)?;
                let ttl = u32::from_be_bytes([ttl[0], ttl[1], ttl[2], ttl[3]]);
                if rest.len() > 4 {
                    return Err(GossipError::TrailingBytes(rest.len() - 4));
                }
                return Ok(GossipMessage::Publish(Tuple {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    ttl,
                }));
            }
        };
        if !body.is_empty() {
            return Err(GossipError::TrailingBytes(body.len()));
        }
        Ok(msg)
    }
}

/// The tuple a ZRE node publishes: its UUID as Zyre writes it (`zuuid_str`: 32 upper-case
/// hex digits) and its mailbox endpoint.
pub fn node_tuple(uuid: &Uuid, endpoint: &str) -> (Vec<u8>, Vec<u8>) {
    (
        super::event::uuid_hex(uuid).into_bytes(),
        endpoint.as_bytes().to_vec(),
    )
}

/// Why a tuple does not name a ZRE peer we can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAPeer {
    /// The key is not 32 hex digits.
    Key,
    /// The value is not `tcp://HOST:PORT`.
    Endpoint,
    /// The value carries a CURVE public key (`endpoint|key`): CURVE over gossip is not done
    /// yet (a CURVE node with gossip is refused at start).
    Curve,
}

/// Reads a tuple as Zyre does (zyre_node.c `zyre_node_recv_gossip`): the key is the
/// peer's UUID, the value its endpoint, with `|` and a Z85 public key after it when the
/// peer uses CURVE. Case-insensitive hex, as `zuuid_set_str` reads it; anything else is
/// refused (Zyre would give such a peer a random UUID).
pub fn tuple_peer(key: &[u8], value: &[u8]) -> Result<(Uuid, String), NotAPeer> {
    let key = std::str::from_utf8(key).map_err(|_| NotAPeer::Key)?;
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NotAPeer::Key);
    }
    let uuid = Uuid::parse_str(key).map_err(|_| NotAPeer::Key)?;
    let value = std::str::from_utf8(value).map_err(|_| NotAPeer::Endpoint)?;
    if value.contains('|') {
        return Err(NotAPeer::Curve);
    }
    check_endpoint(value).map_err(|_| NotAPeer::Endpoint)?;
    Ok((uuid, value.to_string()))
}

/// Limits and timers of a [`Gossip`].
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// Our own tuple (see [`node_tuple`]); `None`: we only relay.
    pub own: Option<(Vec<u8>, Vec<u8>)>,
    /// The TTL our tuple carries; it is published again every third of it. Zero: no TTL
    /// (as CZMQ), published once per session.
    pub ttl: Duration,
    /// At most this many tuples are held in all.
    pub max_tuples: usize,
    /// At most this many tuples published by one hub client are held.
    pub max_per_client: usize,
    /// At most this many client sessions.
    pub max_clients: usize,
    /// A value longer than this is refused (ours are endpoints: tens of bytes).
    pub max_value: usize,
}

impl GossipConfig {
    /// Our defaults: 16,384 tuples, 1,024 per client, 1,024 clients, values up to 1 KiB.
    pub fn new(own: Option<(Vec<u8>, Vec<u8>)>, ttl: Duration) -> Self {
        GossipConfig {
            own,
            ttl,
            max_tuples: 16_384,
            max_per_client: 1_024,
            max_clients: 1_024,
            max_value: 1_024,
        }
    }
}

/// One thing a [`Gossip`] decided; carried out by the driver in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipOutput {
    /// A frame for a hub client, through our ROUTER (`client` is its routing id). If it
    /// cannot be routed there, the driver calls [`Gossip::handle_client_gone`].
    ToClient {
        /// The routing id.
        client: Vec<u8>,
        /// One zgossip frame.
        frame: Vec<u8>,
    },
    /// A frame for the hub we connected to as `remote` (index into the connect list).
    ToRemote {
        /// Index of the hub.
        remote: usize,
        /// One zgossip frame.
        frame: Vec<u8>,
    },
    /// A peer to connect to, learned (or learned again) from a tuple.
    Peer {
        /// Its UUID.
        uuid: Uuid,
        /// Its mailbox endpoint.
        endpoint: String,
    },
    /// A decision worth tracing.
    Log(String),
}

/// Counters, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Tuples held now.
    pub tuples: u64,
    /// Hub client sessions now.
    pub clients: u64,
    /// Frames that did not decode (dropped; the sender is not answered).
    pub malformed: u64,
    /// Tuples refused: over a bound, a value too long, or claiming our own key.
    pub refused: u64,
    /// Tuples dropped because their TTL ran out or their publisher went away.
    pub expired: u64,
    /// Tuples that named a peer (delivered to the node).
    pub peers: u64,
    /// Tuples held but not naming a ZRE peer we can use (bad key, endpoint, or CURVE).
    pub not_peers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Own,
    Client(Vec<u8>),
    Remote(usize),
}

#[derive(Debug)]
struct Stored {
    value: Vec<u8>,
    /// None: no TTL (held until its publisher goes away, or for ever if from a hub).
    expires: Option<Instant>,
    origin: Origin,
}

#[derive(Debug)]
struct Session {
    said_hello: bool,
    heard_at: Instant,
    /// Tuples held that this client published.
    tuples: usize,
}

/// The zgossip state of one node: its hub's sessions, its hubs, and the tuples held.
#[derive(Debug)]
pub struct Gossip {
    config: GossipConfig,
    remotes: usize,
    tuples: HashMap<Vec<u8>, Stored>,
    sessions: HashMap<Vec<u8>, Session>,
    out: std::collections::VecDeque<GossipOutput>,
    next_ping: Instant,
    next_refresh: Instant,
    next_sweep: Instant,
    stats: GossipStats,
}

impl Gossip {
    /// A node that connects to `remotes` hubs (indices `0..remotes`), with or without a
    /// hub of its own: the first HELLO (and our tuple) goes to each hub at once.
    pub fn new(config: GossipConfig, remotes: usize, now: Instant) -> Self {
        let mut g = Gossip {
            config,
            remotes,
            tuples: HashMap::new(),
            sessions: HashMap::new(),
            out: Default::default(),
            next_ping: later(now, PING_INTERVAL),
            next_refresh: now,
            next_sweep: now,
            stats: GossipStats::default(),
        };
        // Our tuple goes to each hub after its HELLO (a PUBLISH before HELLO is refused
        // by CZMQ's hub), in `greet`.
        g.hold_own(now);
        for r in 0..remotes {
            g.greet(r, now);
        }
        g
    }

    /// Counters.
    pub fn stats(&self) -> GossipStats {
        GossipStats {
            tuples: self.tuples.len() as u64,
            clients: self.sessions.len() as u64,
            ..self.stats
        }
    }

    /// The next output to carry out.
    pub fn poll_output(&mut self) -> Option<GossipOutput> {
        self.out.pop_front()
    }

    /// When [`Gossip::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_sweep.min(self.next_refresh);
        if self.remotes > 0 {
            t = t.min(self.next_ping);
        }
        t
    }

    /// A frame from a hub client (routing id `client`) on our ROUTER.
    pub fn handle_client(&mut self, now: Instant, client: &[u8], frame: &[u8]) {
        let msg = match GossipMessage::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                self.log(format!(
                    "hub: dropped a frame from client {}: {e}",
                    hex(client)
                ));
                return;
            }
        };
        if let Some(s) = self.sessions.get_mut(client) {
            s.heard_at = now;
        }
        match msg {
            GossipMessage::Hello => {
                if !self.open_session(now, client) {
                    return;
                }
                if let Some(s) = self.sessions.get_mut(client) {
                    s.said_hello = true;
                }
                // "HELLO: the server sends a PUBLISH for every tuple it holds."
                let frames: Vec<Vec<u8>> = self
                    .tuples
                    .iter()
                    .filter(|(_, t)| t.origin != Origin::Client(client.to_vec()))
                    .filter_map(|(k, t)| publish_frame(k, t, now))
                    .collect();
                for frame in frames {
                    self.out.push_back(GossipOutput::ToClient {
                        client: client.to_vec(),
                        frame,
                    });
                }
            }
            GossipMessage::Publish(t) => {
                // Before HELLO too: harmless, and a client whose hub restarted may
                // publish before it learns it must say HELLO again.
                if !self.open_session(now, client) {
                    return;
                }
                self.accept(now, t, Origin::Client(client.to_vec()));
            }
            GossipMessage::Ping => {
                let answer = if self.sessions.contains_key(client) {
                    GossipMessage::Pong
                } else {
                    // Not CZMQ's PONG: tells a client whose hub restarted to say HELLO.
                    GossipMessage::Invalid
                };
                self.send_client(client, &answer);
            }
            GossipMessage::Pong | GossipMessage::Invalid => {}
        }
    }

    /// Our ROUTER can no longer route to `client` (its connection is gone): its session
    /// ends and the tuples it published go with it.
    pub fn handle_client_gone(&mut self, _now: Instant, client: &[u8]) {
        if self.sessions.remove(client).is_none() {
            return;
        }
        let origin = Origin::Client(client.to_vec());
        let before = self.tuples.len();
        self.tuples.retain(|_, t| t.origin != origin);
        let gone = before - self.tuples.len();
        self.stats.expired += gone as u64;
        self.log(format!(
            "hub: client {} is gone with {gone} tuple(s)",
            hex(client)
        ));
    }

    /// A frame from the hub we connected to as `remote`.
    pub fn handle_remote(&mut self, now: Instant, remote: usize, frame: &[u8]) {
        if remote >= self.remotes {
            return;
        }
        match GossipMessage::decode(frame) {
            Ok(GossipMessage::Publish(t)) => self.accept(now, t, Origin::Remote(remote)),
            Ok(GossipMessage::Invalid) => {
                // The hub forgot us (it restarted, or we were silent too long): HELLO
                // again, and our tuples, which CZMQ's own client does not re-send.
                self.log(format!("hub {remote}: INVALID, saying HELLO again"));
                self.greet(remote, now);
            }
            Ok(_) => {}
            Err(e) => {
                self.stats.malformed += 1;
                self.log(format!("hub {remote}: dropped a frame: {e}"));
            }
        }
    }

    /// Timers: PINGs to our hubs, our tuple's refresh, expiry and client probes.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.remotes > 0 && now >= self.next_ping {
            self.next_ping = later(now, PING_INTERVAL);
            for r in 0..self.remotes {
                self.send_remote(r, &GossipMessage::Ping);
            }
        }
        if now >= self.next_refresh {
            self.refresh_own(now);
        }
        if now >= self.next_sweep {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Instant) {
        let period = self.sweep_period();
        self.next_sweep = later(now, period);
        let before = self.tuples.len();
        self.tuples
            .retain(|_, t| t.origin == Origin::Own || t.expires.is_none_or(|e| e > now));
        let expired = before - self.tuples.len();
        if expired > 0 {
            self.stats.expired += expired as u64;
            self.recount();
            self.log(format!("{expired} tuple(s) expired"));
        }
        // Silent clients may be gone: a PONG (which CZMQ's client ignores) finds out, as
        // the driver reports a client it cannot route to.
        let silent: Vec<Vec<u8>> = self
            .sessions
            .iter()
            .filter(|(_, s)| later(s.heard_at, PROBE_INTERVAL) <= now)
            .map(|(c, _)| c.clone())
            .collect();
        for c in silent {
            self.send_client(&c, &GossipMessage::Pong);
        }
        // Tuples with a TTL are passed to the node again: a peer that left the node (it
        // expired in a partition, say) is tried again while its publisher keeps it alive.
        let again: Vec<(Vec<u8>, Vec<u8>)> = self
            .tuples
            .iter()
            .filter(|(_, t)| t.expires.is_some() && t.origin != Origin::Own)
            .map(|(k, t)| (k.clone(), t.value.clone()))
            .collect();
        for (k, v) in again {
            if let Ok((uuid, endpoint)) = tuple_peer(&k, &v) {
                self.out.push_back(GossipOutput::Peer { uuid, endpoint });
            }
        }
    }

    fn sweep_period(&self) -> Duration {
        let third = self.config.ttl / 3;
        if third.is_zero() {
            PROBE_INTERVAL
        } else {
            third.min(PROBE_INTERVAL)
        }
    }

    /// Holds our own tuple with a fresh TTL; returns its PUBLISH frame.
    fn hold_own(&mut self, now: Instant) -> Option<Vec<u8>> {
        let ttl = self.config.ttl;
        // Without a TTL it is published once (as CZMQ); HELLO after INVALID re-sends it.
        self.next_refresh = if ttl.is_zero() {
            later(now, Duration::from_secs(86_400 * 365))
        } else {
            later(now, ttl / 3)
        };
        let (key, value) = self.config.own.clone()?;
        let ttl_ms = u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX);
        self.tuples.insert(
            key.clone(),
            Stored {
                value: value.clone(),
                expires: (ttl_ms > 0).then(|| later(now, ttl)),
                origin: Origin::Own,
            },
        );
        GossipMessage::Publish(Tuple {
            key,
            value,
            ttl: ttl_ms,
        })
        .encode()
        .ok()
    }

    /// Our own tuple again, with a fresh TTL, to our hub's clients and our hubs.
    fn refresh_own(&mut self, now: Instant) {
        if let Some(frame) = self.hold_own(now) {
            if !self.config.ttl.is_zero() {
                self.forward(&frame, &Origin::Own);
            }
        }
    }

    /// HELLO and the tuples we hold to hub `remote` (CZMQ's client sends all it holds).
    fn greet(&mut self, remote: usize, now: Instant) {
        self.send_remote(remote, &GossipMessage::Hello);
        let frames: Vec<Vec<u8>> = self
            .tuples
            .iter()
            .filter(|(_, t)| t.origin != Origin::Remote(remote))
            .filter_map(|(k, t)| publish_frame(k, t, now))
            .collect();
        for frame in frames {
            self.out.push_back(GossipOutput::ToRemote { remote, frame });
        }
    }

    /// A session for `client`; false if the bound on sessions refuses it.
    fn open_session(&mut self, now: Instant, client: &[u8]) -> bool {
        if self.sessions.contains_key(client) {
            return true;
        }
        if self.sessions.len() >= self.config.max_clients {
            self.stats.refused += 1;
            self.log(format!("hub: refused client {}: too many", hex(client)));
            return false;
        }
        self.sessions.insert(
            client.to_vec(),
            Session {
                said_hello: false,
                heard_at: now,
                tuples: 0,
            },
        );
        true
    }

    /// CZMQ's `server_accept`: store a new or changed tuple and pass it on; a repeat only
    /// extends its TTL, and is passed on when that moved it by a third of the TTL or more
    /// (so a refresh reaches clients and other hubs, and a repeat coming back round a loop
    /// of hubs, never later than the one before it, stops).
    fn accept(&mut self, now: Instant, t: Tuple, origin: Origin) {
        let own_key = self.config.own.as_ref().map(|(k, _)| k.as_slice());
        if own_key == Some(t.key.as_slice()) {
            // Our own tuple echoed, or someone claiming our UUID.
            return;
        }
        if t.value.len() > self.config.max_value {
            self.stats.refused += 1;
            return;
        }
        let ttl = Duration::from_millis(t.ttl as u64);
        let expires = (t.ttl > 0).then(|| later(now, ttl));
        if let Some(stored) = self.tuples.get_mut(&t.key) {
            if stored.value == t.value {
                let Some(new) = expires else {
                    return;
                };
                let moved = match stored.expires {
                    Some(old) => new > later(old, ttl / 3),
                    // Held without TTL (our own, or from a hub): nothing to extend.
                    None => false,
                };
                if moved {
                    stored.expires = Some(new);
                    let frame = GossipMessage::Publish(t.clone()).encode();
                    if let Ok(frame) = frame {
                        self.forward(&frame, &origin);
                    }
                    self.deliver(&t.key, &t.value);
                } else if stored.expires.is_some_and(|old| new > old) {
                    stored.expires = Some(new);
                }
                return;
            }
        } else {
            if self.tuples.len() >= self.config.max_tuples {
                self.stats.refused += 1;
                return;
            }
            if let Origin::Client(c) = &origin {
                match self.sessions.get(c) {
                    Some(s) if s.tuples < self.config.max_per_client => {}
                    _ => {
                        self.stats.refused += 1;
                        return;
                    }
                }
            }
        }
        // New, or a new value for a known key (a node restarted on another port, say).
        let previous = self.tuples.insert(
            t.key.clone(),
            Stored {
                value: t.value.clone(),
                expires,
                origin: origin.clone(),
            },
        );
        if let Some(Stored {
            origin: Origin::Client(c),
            ..
        }) = &previous
        {
            if let Some(s) = self.sessions.get_mut(c) {
                s.tuples = s.tuples.saturating_sub(1);
            }
        }
        if let Origin::Client(c) = &origin {
            if let Some(s) = self.sessions.get_mut(c) {
                s.tuples += 1;
            }
        }
        if let Ok(frame) = GossipMessage::Publish(t.clone()).encode() {
            self.forward(&frame, &origin);
        }
        self.deliver(&t.key, &t.value);
    }

    fn deliver(&mut self, key: &[u8], value: &[u8]) {
        let own_value = self.config.own.as_ref().map(|(_, v)| v.as_slice());
        match tuple_peer(key, value) {
            // Zyre's self filter compares endpoints: an old tuple of ours under another
            // UUID (from before a restart) is not a peer.
            Ok(_) if own_value == Some(value) => {}
            Ok((uuid, endpoint)) => {
                self.stats.peers += 1;
                self.out.push_back(GossipOutput::Peer { uuid, endpoint });
            }
            Err(_) => self.stats.not_peers += 1,
        }
    }

    /// To every client that said HELLO and every hub, except where it came from.
    fn forward(&mut self, frame: &[u8], from: &Origin) {
        let clients: Vec<Vec<u8>> = self
            .sessions
            .iter()
            .filter(|(c, s)| s.said_hello && *from != Origin::Client(c.to_vec()))
            .map(|(c, _)| c.clone())
            .collect();
        for client in clients {
            self.out.push_back(GossipOutput::ToClient {
                client,
                frame: frame.to_vec(),
            });
        }
        for remote in 0..self.remotes {
            if *from != Origin::Remote(remote) {
                self.out.push_back(GossipOutput::ToRemote {
                    remote,
                    frame: frame.to_vec(),
                });
            }
        }
    }

    /// Per-client tuple counts from the table (after a change of ownership or expiry).
    fn recount(&mut self) {
        for s in self.sessions.values_mut() {
            s.tuples = 0;
        }
        for t in self.tuples.values() {
            if let Origin::Client(c) = &t.origin {
                if let Some(s) = self.sessions.get_mut(c) {
                    s.tuples += 1;
                }
            }
        }
    }

    fn send_client(&mut self, client: &[u8], msg: &GossipMessage) {
        if let Ok(frame) = msg.encode() {
            self.out.push_back(GossipOutput::ToClient {
                client: client.to_vec(),
                frame,
            });
        }
    }

    fn send_remote(&mut self, remote: usize, msg: &GossipMessage) {
        if let Ok(frame) = msg.encode() {
            self.out.push_back(GossipOutput::ToRemote { remote, frame });
        }
    }

    fn log(&mut self, line: String) {
        self.out.push_back(GossipOutput::Log(line));
    }
}

/// A PUBLISH of a held tuple with what is left of its TTL (0 if it has none).
fn publish_frame(key: &[u8], t: &Stored, now: Instant) -> Option<Vec<u8>> {
    let ttl = match t.expires {
        None => 0,
        Some(e) => {
            let left = e.saturating_duration_since(now).as_millis().max(1);
            u32::try_from(left).unwrap_or(u32::MAX)
        }
    };
    GossipMessage::Publish(Tuple {
        key: key.to_vec(),
        value: t.value.clone(),
        ttl,
    })
    .encode()
    .ok()
}

fn hex(bytes: &[u8]) -> String {
    struct Hex<'a>(&'a [u8]);
    impl fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for b in self.0 {
                write!(f, "{b:02X}")?;
            }
            Ok(())
        }
    }
    Hex(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID_HEX: &str = "F81D4FAE7DEC11D0A76500A0C91E6BF6";

    fn publish(key: &str, value: &str, ttl: u32) -> Vec<u8> {
        GossipMessage::Publish(Tuple {
            key: key.into(),
            value: value.into(),
            ttl,
        })
        .encode()
        .unwrap()
    }

    fn drain(g: &mut Gossip) -> Vec<GossipOutput> {
        std::iter::from_fn(|| g.poll_output())
            .filter(|o| !matches!(o, GossipOutput::Log(_)))
            .collect()
    }

    fn decoded(frame: &[u8]) -> GossipMessage {
        GossipMessage::decode(frame).unwrap()
    }

    /// The frame of beyond-the-lan.md §1.2, which CZMQ 4.2.1's hub accepted and stored.
    #[test]
    fn publish_matches_the_frame_czmq_accepted() {
        let frame = publish(UUID_HEX, "tcp://192.168.1.10:49152", 0);
        let mut want = vec![0xAA, 0xA0, 0x02, 0x01, 0x20];
        want.extend_from_slice(UUID_HEX.as_bytes());
        want.extend_from_slice(&[0, 0, 0, 0x18]);
        want.extend_from_slice(b"tcp://192.168.1.10:49152");
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(frame, want);
        assert_eq!(frame.len(), 69);
        assert_eq!(
            GossipMessage::Hello.encode().unwrap(),
            [0xAA, 0xA0, 1, 1],
            "id before version"
        );
        assert_eq!(GossipMessage::Invalid.encode().unwrap(), [0xAA, 0xA0, 5, 1]);
    }

    #[test]
    fn every_message_round_trips_and_every_truncation_is_an_error() {
        let all = [
            GossipMessage::Hello,
            GossipMessage::Ping,
            GossipMessage::Pong,
            GossipMessage::Invalid,
            decoded(&publish(UUID_HEX, "tcp://10.0.0.1:5", 7)),
            decoded(&publish("", "", u32::MAX)),
        ];
        for m in all {
            let frame = m.encode().unwrap();
            assert_eq!(GossipMessage::decode(&frame), Ok(m.clone()));
            for cut in 0..frame.len() {
                assert!(
                    GossipMessage::decode(&frame[..cut]).is_err(),
                    "{m:?} cut at {cut}"
                );
            }
            let mut long = frame.clone();
            long.push(0);
            assert!(matches!(
                GossipMessage::decode(&long),
                Err(GossipError::TrailingBytes(1))
            ));
        }
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(
            GossipMessage::decode(&[0xAA, 0xA1, 1, 1]),
            Err(GossipError::BadSignature([0xAA, 0xA1]))
        );
        assert_eq!(
            GossipMessage::decode(&[0xAA, 0xA0, 6, 1]),
            Err(GossipError::UnknownId(6))
        );
        assert_eq!(
            GossipMessage::decode(&[0xAA, 0xA0, 1, 2]),
            Err(GossipError::BadVersion(2))
        );
        // A value length claiming 4 GiB allocates nothing.
        assert!(matches!(
            GossipMessage::decode(&[0xAA, 0xA0, 2, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(GossipError::Truncated(_))
        ));
        // Every byte value in every position of a short frame.
        for len in 0..8 {
            for b in 0..=255u8 {
                let _ = GossipMessage::decode(&vec![b; len]);
            }
        }
        let long_key = Tuple {
            key: vec![b'k'; 256],
            value: Vec::new(),
            ttl: 0,
        };
        assert_eq!(
            GossipMessage::Publish(long_key).encode(),
            Err(GossipError::KeyTooLong(256))
        );
    }

    #[test]
    fn tuples_name_peers_as_zyre_reads_them() {
        let (uuid, ep) = tuple_peer(UUID_HEX.as_bytes(), b"tcp://10.0.0.1:49152").unwrap();
        assert_eq!(crate::proto::event::uuid_hex(&uuid), UUID_HEX);
        assert_eq!(ep, "tcp://10.0.0.1:49152");
        let lower = UUID_HEX.to_lowercase();
        assert!(tuple_peer(lower.as_bytes(), b"tcp://10.0.0.1:1").is_ok());
        assert_eq!(tuple_peer(b"F81D", b"tcp://10.0.0.1:1"), Err(NotAPeer::Key));
        assert_eq!(
            tuple_peer(UUID_HEX.as_bytes(), b"udp://x:1"),
            Err(NotAPeer::Endpoint)
        );
        assert_eq!(
            tuple_peer(
                UUID_HEX.as_bytes(),
                b"tcp://10.0.0.1:1|rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
            ),
            Err(NotAPeer::Curve)
        );
    }

    fn own(n: u8) -> (Vec<u8>, Vec<u8>) {
        node_tuple(
            &Uuid::from_u128(n as u128),
            &format!("tcp://10.0.0.{n}:5000"),
        )
    }

    fn hub(now: Instant) -> Gossip {
        Gossip::new(
            GossipConfig::new(Some(own(1)), Duration::from_secs(3)),
            0,
            now,
        )
    }

    fn key(n: u8) -> String {
        crate::proto::event::uuid_hex(&Uuid::from_u128(n as u128))
    }

    fn endpoint(n: u8) -> String {
        format!("tcp://10.0.0.{n}:5000")
    }

    #[test]
    fn hub_sends_its_table_on_hello_and_passes_new_tuples_to_everyone_else() {
        let t0 = Instant::now();
        let mut g = hub(t0);
        g.handle_client(t0, b"a", &GossipMessage::Hello.encode().unwrap());
        let out = drain(&mut g);
        // The table: our own tuple, with its TTL left.
        assert_eq!(out.len(), 1);
        let GossipOutput::ToClient { client, frame } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(client, b"a");
        let GossipMessage::Publish(t) = decoded(frame) else {
            panic!()
        };
        assert_eq!(t.key, key(1).into_bytes());
        assert_eq!(t.ttl, 3000);

        g.handle_client(t0, b"b", &GossipMessage::Hello.encode().unwrap());
        drain(&mut g);
        g.handle_client(t0, b"a", &publish(&key(2), &endpoint(2), 3000));
        let out = drain(&mut g);
        // To b (not back to a), and to the node as a peer.
        assert_eq!(
            out,
            vec![
                GossipOutput::ToClient {
                    client: b"b".to_vec(),
                    frame: publish(&key(2), &endpoint(2), 3000)
                },
                GossipOutput::Peer {
                    uuid: Uuid::from_u128(2),
                    endpoint: endpoint(2)
                }
            ]
        );
        // A repeat is dropped; a changed value passes.
        g.handle_client(t0, b"a", &publish(&key(2), &endpoint(2), 3000));
        assert_eq!(drain(&mut g), vec![]);
        g.handle_client(t0, b"a", &publish(&key(2), &endpoint(3), 3000));
        assert_eq!(drain(&mut g).len(), 2);
    }

    #[test]
    fn our_own_tuple_is_never_taken_from_others() {
        let t0 = Instant::now();
        let mut g = hub(t0);
        g.handle_client(t0, b"a", &publish(&key(1), "tcp://6.6.6.6:1", 0));
        assert_eq!(drain(&mut g), vec![]);
        // Another UUID at our endpoint: held, but not a peer (Zyre's self filter).
        g.handle_client(t0, b"a", &publish(&key(9), &endpoint(1), 0));
        assert_eq!(drain(&mut g), vec![]);
        assert_eq!(g.stats().tuples, 2);
    }

    #[test]
    fn a_ping_from_a_client_the_hub_does_not_know_gets_invalid() {
        let t0 = Instant::now();
        let mut g = hub(t0);
        let ping = GossipMessage::Ping.encode().unwrap();
        g.handle_client(t0, b"a", &ping);
        assert_eq!(
            drain(&mut g),
            vec![GossipOutput::ToClient {
                client: b"a".to_vec(),
                frame: GossipMessage::Invalid.encode().unwrap()
            }]
        );
        g.handle_client(t0, b"a", &GossipMessage::Hello.encode().unwrap());
        drain(&mut g);
        g.handle_client(t0, b"a", &ping);
        assert_eq!(
            drain(&mut g),
            vec![GossipOutput::ToClient {
                client: b"a".to_vec(),
                frame: GossipMessage::Pong.encode().unwrap()
            }]
        );
    }

    #[test]
    fn tuples_expire_with_their_ttl_or_their_publisher() {
        let t0 = Instant::now();
        let mut g = hub(t0);
        g.handle_client(t0, b"a", &GossipMessage::Hello.encode().unwrap());
        g.handle_client(t0, b"a", &publish(&key(2), &endpoint(2), 3000));
        g.handle_client(t0, b"b", &GossipMessage::Hello.encode().unwrap());
        g.handle_client(t0, b"b", &publish(&key(3), &endpoint(3), 0));
        drain(&mut g);
        assert_eq!(g.stats().tuples, 3);
        // Refreshed within the TTL, key 2 stays; without, it goes.
        let mut t = t0;
        for _ in 0..10 {
            t += Duration::from_millis(500);
            g.handle_timeout(t);
            g.handle_client(t, b"a", &publish(&key(2), &endpoint(2), 3000));
        }
        assert_eq!(g.stats().tuples, 3);
        assert_eq!(g.stats().expired, 0);
        t += Duration::from_millis(3100);
        g.handle_timeout(t);
        assert_eq!(g.stats().tuples, 2, "key 2's TTL ran out");
        // Key 3 has no TTL: it goes with its publisher.
        g.handle_client_gone(t, b"b");
        assert_eq!(g.stats().tuples, 1);
        assert_eq!(g.stats().expired, 2);
        assert_eq!(g.stats().clients, 1);
    }

    #[test]
    fn silent_clients_are_probed_with_pong() {
        let t0 = Instant::now();
        let mut g = hub(t0);
        g.handle_client(t0, b"a", &GossipMessage::Hello.encode().unwrap());
        drain(&mut g);
        g.handle_timeout(t0 + PROBE_INTERVAL);
        let out = drain(&mut g);
        assert!(out.contains(&GossipOutput::ToClient {
            client: b"a".to_vec(),
            frame: GossipMessage::Pong.encode().unwrap()
        }));
    }

    #[test]
    fn a_refresh_is_passed_on_but_a_repeat_round_a_loop_of_hubs_stops() {
        let t0 = Instant::now();
        // A hub that is also a client of another hub (remote 0).
        let mut g = Gossip::new(
            GossipConfig::new(Some(own(1)), Duration::from_secs(3)),
            1,
            t0,
        );
        drain(&mut g);
        g.handle_client(t0, b"a", &GossipMessage::Hello.encode().unwrap());
        g.handle_client(t0, b"a", &publish(&key(2), &endpoint(2), 3000));
        drain(&mut g);
        // The same tuple back from the other hub, with less TTL left: dropped.
        g.handle_remote(t0, 0, &publish(&key(2), &endpoint(2), 2900));
        assert_eq!(drain(&mut g), vec![]);
        // A refresh 1.1 s later moved the expiry by more than a third: passed on.
        let t1 = t0 + Duration::from_millis(1100);
        g.handle_client(t1, b"a", &publish(&key(2), &endpoint(2), 3000));
        let out = drain(&mut g);
        assert!(out.contains(&GossipOutput::ToRemote {
            remote: 0,
            frame: publish(&key(2), &endpoint(2), 3000)
        }));
        // ... and the copy coming back is dropped.
        g.handle_remote(t1, 0, &publish(&key(2), &endpoint(2), 3000));
        assert_eq!(drain(&mut g), vec![]);
    }

    #[test]
    fn our_client_greets_pings_and_says_hello_again_after_invalid() {
        let t0 = Instant::now();
        let mut g = Gossip::new(
            GossipConfig::new(Some(own(1)), Duration::from_secs(3)),
            2,
            t0,
        );
        let out = drain(&mut g);
        let hello = GossipMessage::Hello.encode().unwrap();
        let mine = publish(&key(1), &endpoint(1), 3000);
        assert_eq!(
            out,
            vec![
                GossipOutput::ToRemote {
                    remote: 0,
                    frame: hello.clone()
                },
                GossipOutput::ToRemote {
                    remote: 0,
                    frame: mine.clone()
                },
                GossipOutput::ToRemote {
                    remote: 1,
                    frame: hello.clone()
                },
                GossipOutput::ToRemote {
                    remote: 1,
                    frame: mine.clone()
                },
            ]
        );
        // PING well inside CZMQ's 1 s.
        assert!(g.poll_timeout() <= t0 + PING_INTERVAL);
        g.handle_timeout(t0 + PING_INTERVAL);
        let pings: Vec<_> = drain(&mut g)
            .into_iter()
            .filter(|o| matches!(o, GossipOutput::ToRemote { frame, .. } if frame[2] == 3))
            .collect();
        assert_eq!(pings.len(), 2);
        g.handle_remote(t0, 1, &GossipMessage::Invalid.encode().unwrap());
        assert_eq!(
            drain(&mut g),
            vec![
                GossipOutput::ToRemote {
                    remote: 1,
                    frame: hello
                },
                GossipOutput::ToRemote {
                    remote: 1,
                    frame: mine
                },
            ]
        );
        // Our tuple is published again every third of its TTL.
        g.handle_timeout(t0 + Duration::from_secs(1));
        assert!(drain(&mut g)
            .iter()
            .any(|o| matches!(o, GossipOutput::ToRemote { frame, .. } if frame[2] == 2)));
    }

    #[test]
    fn tuples_from_a_hub_with_a_ttl_are_offered_to_the_node_again_until_they_expire() {
        let t0 = Instant::now();
        let mut g = Gossip::new(
            GossipConfig::new(Some(own(1)), Duration::from_secs(3)),
            1,
            t0,
        );
        drain(&mut g);
        g.handle_remote(t0, 0, &publish(&key(2), &endpoint(2), 3000));
        let peer = GossipOutput::Peer {
            uuid: Uuid::from_u128(2),
            endpoint: endpoint(2),
        };
        assert!(drain(&mut g).contains(&peer));
        g.handle_timeout(t0 + Duration::from_secs(1));
        assert!(drain(&mut g).contains(&peer));
        g.handle_timeout(t0 + Duration::from_millis(3100));
        assert!(!drain(&mut g).contains(&peer));
        assert_eq!(g.stats().tuples, 1);
    }

    #[test]
    fn a_flood_is_bounded_per_client_and_in_all() {
        let t0 = Instant::now();
        let mut g = hub(t0);
        g.handle_client(t0, b"flood", &GossipMessage::Hello.encode().unwrap());
        for i in 1_000..11_000u32 {
            let k = format!("{i:032X}");
            g.handle_client(t0, b"flood", &publish(&k, "tcp://10.9.9.9:1", 0));
        }
        drain(&mut g);
        assert_eq!(g.stats().tuples, 1 + 1_024);
        assert_eq!(g.stats().refused, 10_000 - 1_024);
        // Another client still gets in.
        g.handle_client(t0, b"ok", &GossipMessage::Hello.encode().unwrap());
        g.handle_client(t0, b"ok", &publish(&key(5), &endpoint(5), 0));
        assert!(drain(&mut g).contains(&GossipOutput::Peer {
            uuid: Uuid::from_u128(5),
            endpoint: endpoint(5)
        }));
        // Oversized values are refused.
        let big = "x".repeat(2_000);
        g.handle_client(t0, b"ok", &publish(&key(6), &big, 0));
        assert_eq!(g.stats().tuples, 1 + 1_024 + 1);
    }

    #[test]
    fn every_truncation_of_every_message_leaves_the_hub_serving() {
        let t0 = Instant::now();
        let mut g = hub(t0);
        let frames = [
            GossipMessage::Hello.encode().unwrap(),
            publish(&key(2), &endpoint(2), 10),
            GossipMessage::Ping.encode().unwrap(),
            GossipMessage::Pong.encode().unwrap(),
            GossipMessage::Invalid.encode().unwrap(),
        ];
        let mut malformed = 0;
        for f in &frames {
            for cut in 0..f.len() {
                g.handle_client(t0, b"evil", &f[..cut]);
                malformed += 1;
            }
        }
        g.handle_client(t0, b"evil", &[0xAA, 0xA1, 1, 1]);
        malformed += 1;
        assert_eq!(g.stats().malformed, malformed);
        g.handle_client(t0, b"ok", &GossipMessage::Hello.encode().unwrap());
        assert!(!drain(&mut g).is_empty());
    }
}
