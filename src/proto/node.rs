//! The node state machine: everything a ZRE node decides, with no sockets, threads or
//! clock reads.
//!
//! Contract (after quinn's `Connection`): feed inputs with `handle_*`, each taking the
//! current time as `now`; then drain outputs with [`NodeState::poll_transmit`] (what to put
//! on the network), [`NodeState::poll_event`] (what to tell the application) and
//! [`NodeState::poll_timeout`] (when to call [`NodeState::handle_timeout`] next). The driver
//! owns the clock and the sockets; tests own a virtual clock and an in-memory LAN.
//!
//! Discovery is an input like any other: [`NodeState::handle_beacon`] for UDP beacons,
//! [`NodeState::handle_discovered`] for any other source (gossip, a static peer list).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::beacon::Beacon;
use super::codec::{check_string, Body, EncodeError, Hello, Message};
use super::event::{uuid_hex, Content, Event};
use super::peer::Peer;

/// The node's timers. Defaults are Zyre's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Beacon interval (1 s).
    pub interval: Duration,
    /// A peer quiet this long (despite our PINGs) is reported EVASIVE (5 s).
    pub evasive: Duration,
    /// A peer quiet this long is reported SILENT (default: evasive + evasive / 5, so 6 s).
    pub silent: Option<Duration>,
    /// A peer quiet this long is removed with EXIT (30 s).
    pub expired: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            interval: Duration::from_secs(1),
            evasive: Duration::from_secs(5),
            silent: None,
            expired: Duration::from_secs(30),
        }
    }
}

impl Timers {
    /// The shortest beacon interval a node accepts: more often floods the LAN with
    /// broadcasts.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
    /// The shortest evasive timeout a node accepts: a PING goes out at four fifths of it,
    /// and its answer needs time to come back, or peers flap between evasive and not.
    pub const MIN_EVASIVE: Duration = Duration::from_millis(100);
    /// The longest timer a node accepts (a day).
    pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);

    /// Checks what a running node needs: `MIN_INTERVAL <= interval`, `MIN_EVASIVE <=
    /// evasive < silent < expired`, every timer at most [`Timers::MAX`]. The error is one
    /// sentence naming the timers, e.g. `evasive (10s) must be shorter than expired (5s)`.
    /// [`NodeState`] itself accepts any values (its arithmetic saturates); the node's
    /// builder refuses what this refuses.
    pub fn check(&self) -> Result<(), String> {
        let max = Self::MAX;
        for (name, d) in [
            ("interval", self.interval),
            ("evasive", self.evasive),
            ("expired", self.expired),
        ]
        .into_iter()
        .chain(self.silent.map(|s| ("silent", s)))
        {
            if d > max {
                return Err(format!("{name} ({d:?}) must be at most a day ({max:?})"));
            }
        }
        let (interval, evasive, silent, expired) =
            (self.interval, self.evasive, self.silent(), self.expired);
        if interval < Self::MIN_INTERVAL {
            let min = Self::MIN_INTERVAL;
            return Err(format!("interval ({interval:?}) must be at least {min:?}"));
        }
        if evasive < Self::MIN_EVASIVE {
            let min = Self::MIN_EVASIVE;
            return Err(format!("evasive ({evasive:?}) must be at least {min:?}"));
        }
        if expired <= evasive {
            return Err(format!(
                "evasive ({evasive:?}) must be shorter than expired ({expired:?})"
            ));
        }
        if silent <= evasive {
            return Err(format!(
                "silent ({silent:?}) must be longer than evasive ({evasive:?})"
            ));
        }
        if expired <= silent {
            let how = if self.silent.is_some() {
                ""
            } else {
                ", evasive + a fifth"
            };
            return Err(format!(
                "silent ({silent:?}{how}) must be shorter than expired ({expired:?})"
            ));
        }
        Ok(())
    }

    /// The effective silent timeout.
    pub fn silent(&self) -> Duration {
        self.silent
            .unwrap_or(self.evasive.saturating_add(self.evasive / 5))
    }

    /// A ready peer we heard nothing from (no message, no beacon) is pinged after four
    /// fifths of the evasive timeout (4 s of 5), so a healthy peer's answer (any message
    /// refreshes it) arrives a fifth of the timeout before it could be called evasive (the reference pings only once it is
    /// already evasive, which makes every idle peer "evasive" every few seconds). Either
    /// side's PING refreshes both (the PING there, the PING-OK here), so an idle pair
    /// exchanges about one PING per interval; half the timeout cost 60% more wake-ups.
    pub fn ping_interval(&self) -> Duration {
        (self.evasive - self.evasive / 5).max(Duration::from_millis(1))
    }

    /// How long the link to a peer whose beacons we hear may stay without a message
    /// before we PING it: the expired timeout less the evasive timeout (25 s of 30).
    /// Beacons put off the keep-alive PING (they prove the node alive), so an idle pair
    /// exchanges one PING per 25 s instead of one per 4 s, and the link is still checked.
    pub fn link_ping_interval(&self) -> Duration {
        self.expired
            .saturating_sub(self.evasive)
            .max(self.ping_interval())
    }
}

/// `t + d`, or an instant too far away to matter when that would overflow: timers
/// come from the application, and `Duration::MAX` is a natural way to say "never".
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

/// Everything the state machine needs to know about its own node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our UUID.
    pub uuid: Uuid,
    /// Our name (at most 255 bytes).
    pub name: String,
    /// Our headers, sent in HELLO.
    pub headers: Vec<(String, String)>,
    /// Our mailbox endpoint as peers should connect to it (`tcp://ip:port`).
    pub endpoint: String,
    /// The mailbox port announced in beacons (0: do not beacon).
    pub beacon_port: u16,
    /// Timers.
    pub timers: Timers,
    /// At most this many peers may be discovered but not yet say HELLO; past it the oldest
    /// is dropped, so a flood of fake beacons cannot exhaust the node.
    pub max_pending: usize,
    /// Record a log line for every decision worth tracing (see [`NodeState::poll_log`]).
    pub verbose: bool,
}

impl Config {
    /// A configuration with Zyre's defaults.
    pub fn new(
        uuid: Uuid,
        name: impl Into<String>,
        endpoint: impl Into<String>,
        port: u16,
    ) -> Self {
        Config {
            uuid,
            name: name.into(),
            headers: Vec::new(),
            endpoint: endpoint.into(),
            beacon_port: port,
            timers: Timers::default(),
            max_pending: 256,
            verbose: false,
        }
    }
}

/// What the driver must do on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Open a DEALER (identity 0x01 + our UUID) to this peer's mailbox.
    Connect {
        /// The peer.
        peer: Uuid,
        /// Its mailbox endpoint.
        endpoint: String,
    },
    /// Send these frames on the peer's DEALER: the ZRE frame, then the content frames.
    Send {
        /// The peer.
        peer: Uuid,
        /// `frames[0]` is the encoded ZRE message.
        frames: Vec<Vec<u8>>,
    },
    /// Send a SHOUT to every member of a group: on each member's DEALER, `header` with
    /// that member's sequence number written in
    /// ([`set_sequence`](super::codec::set_sequence)), then every frame of
    /// `content`. One encoding and one copy of the content for the whole group.
    SendGroup {
        /// The encoded ZRE message (its sequence bytes are overwritten per member).
        header: Vec<u8>,
        /// Each member and the sequence number of this message on its link.
        members: Vec<(Uuid, u16)>,
        /// The content frames.
        content: Content,
    },
    /// Close the peer's DEALER.
    Disconnect {
        /// The peer.
        peer: Uuid,
    },
    /// Broadcast this beacon.
    Beacon(Vec<u8>),
}

/// Commands from the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Join a group (nothing happens if already joined).
    Join(String),
    /// Leave a group (nothing happens if not joined).
    Leave(String),
    /// Send content to one peer.
    Whisper {
        /// The peer.
        peer: Uuid,
        /// The frames.
        content: Content,
    },
    /// Send content to every peer in a group.
    Shout {
        /// The group.
        group: String,
        /// The frames.
        content: Content,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No peer with that UUID is known.
    #[error("unknown peer {}", uuid_hex(.0))]
    UnknownPeer(Uuid),
    /// A name did not fit its wire field.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Counters of what the node received and what it dropped, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that were valid v1 beacons from others.
    pub beacons: u64,
    /// Datagrams that were not v1 beacons (bad size, prefix or version).
    pub beacons_invalid: u64,
    /// v3 (CURVE) beacons, parsed and ignored.
    pub beacons_curve: u64,
    /// Beacons carrying our own UUID.
    pub beacons_own: u64,
    /// Valid messages received from peers.
    pub messages: u64,
    /// Frames that did not decode.
    pub messages_invalid: u64,
    /// Messages dropped: wrong identity, or not HELLO from an unknown or pending peer.
    pub messages_unexpected: u64,
    /// Peers removed because a sequence number was skipped.
    pub sequence_gaps: u64,
    /// Pending peers dropped to keep within `max_pending`.
    pub pending_evicted: u64,
    /// Sends the driver could not queue (peer removed).
    pub send_failures: u64,
    /// Times the driver stopped reading the mailbox because the application had its
    /// event limit of events waiting (see `Builder::event_limit`); counted by the driver.
    pub receive_stalls: u64,
}

/// The state of one ZRE node. See the module documentation for the contract.
#[derive(Debug)]
pub struct NodeState {
    config: Config,
    peers: super::UuidMap<Peer>,
    /// Peers discovered but not yet ready, oldest first, for eviction.
    pending: VecDeque<Uuid>,
    groups: BTreeSet<String>,
    status: u8,
    next_beacon: Instant,
    /// Set by `handle_stop_request`: waiting for every ready peer to answer a PING.
    draining: bool,
    stopped: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    log: VecDeque<String>,
    stats: Stats,
}

impl NodeState {
    /// A node started at `now`; its first beacon is due at once.
    pub fn new(config: Config, now: Instant) -> Self {
        NodeState {
            config,
            peers: Default::default(),
            pending: VecDeque::new(),
            groups: BTreeSet::new(),
            status: 0,
            next_beacon: now,
            draining: false,
            stopped: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            log: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Our configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters of received and dropped input.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Every peer we know, ready or pending.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// One peer.
    pub fn peer(&self, uuid: &Uuid) -> Option<&Peer> {
        self.peers.get(uuid)
    }

    /// The groups we are in.
    pub fn groups(&self) -> &BTreeSet<String> {
        &self.groups
    }

    /// Our status byte.
    pub fn status(&self) -> u8 {
        self.status
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.config.verbose {
            self.log.push_back(line());
        }
    }

    // ---- inputs ------------------------------------------------------------------------

    /// A UDP datagram arrived on the beacon port from `from`.
    pub fn handle_beacon(&mut self, now: Instant, from: IpAddr, datagram: &[u8]) {
        if self.stopped {
            return;
        }
        let beacon = match Beacon::decode(datagram) {
            Ok(b) => b,
            Err(e) => {
                self.stats.beacons_invalid += 1;
                self.trace(|| format!("drop datagram from {from}: {e}"));
                return;
            }
        };
        if beacon.curve_key.is_some() {
            // A CURVE node's beacon: we speak no CURVE, so connecting would only fail.
            self.stats.beacons_curve += 1;
            self.trace(|| format!("ignore CURVE beacon from {from}"));
            return;
        }
        if beacon.uuid == self.config.uuid {
            self.stats.beacons_own += 1;
            return;
        }
        self.stats.beacons += 1;
        if beacon.port == 0 {
            // "A beacon with port 0 means I am leaving: remove that peer now."
            if self.peers.contains_key(&beacon.uuid) {
                self.trace(|| format!("{} left (port-0 beacon)", uuid_hex(&beacon.uuid)));
                self.remove_peer(&beacon.uuid);
            }
            return;
        }
        if let Some(peer) = self.peers.get_mut(&beacon.uuid) {
            // Known already (the usual case: every peer's beacon, every second). Only a
            // ready peer's beacon counts: before HELLO we know nothing of that node.
            if peer.ready {
                peer.heard_beacon(now, &self.config.timers);
            }
            return;
        }
        let endpoint = format!("tcp://{}:{}", endpoint_host(from), beacon.port);
        self.handle_discovered(now, beacon.uuid, &endpoint);
    }

    /// A peer exists at `endpoint` (from a beacon, gossip or configuration): connect to it
    /// and say HELLO unless it is already known.
    pub fn handle_discovered(&mut self, now: Instant, uuid: Uuid, endpoint: &str) {
        if self.stopped || uuid == self.config.uuid || self.peers.contains_key(&uuid) {
            return;
        }
        if self.peers.values().any(|p| p.endpoint == endpoint) {
            // Another UUID holds this endpoint. If the holder restarted, the new node says
            // HELLO to us once it hears our beacon, and that HELLO replaces it. Acting on
            // the beacon alone would let a forged one push out a healthy peer, and a
            // second link to the same mailbox makes both nodes re-create each other.
            self.trace(|| {
                format!(
                    "{} at {endpoint}: endpoint in use, wait for its HELLO",
                    uuid_hex(&uuid)
                )
            });
            return;
        }
        self.require_peer(now, uuid, endpoint);
    }

    /// A message arrived on our mailbox: `identity` is the routing id the ROUTER reported,
    /// `frame` the ZRE frame and `content` the frames after it.
    pub fn handle_message(
        &mut self,
        now: Instant,
        identity: &[u8],
        frame: &[u8],
        content: Content,
    ) {
        if self.stopped {
            return;
        }
        // "An identity that is not 17 bytes is dropped."
        let uuid = match identity {
            [1, rest @ ..] if rest.len() == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rest);
                Uuid::from_bytes(b)
            }
            _ => {
                self.stats.messages_unexpected += 1;
                self.trace(|| format!("drop message from identity of {} bytes", identity.len()));
                return;
            }
        };
        let msg = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                // Dropped without advancing the expected sequence, as the reference does:
                // the next good message from this peer then looks like a gap.
                self.stats.messages_invalid += 1;
                self.trace(|| format!("drop bad frame from {}: {e}", uuid_hex(&uuid)));
                return;
            }
        };
        self.handle_decoded(now, uuid, msg, content);
    }

    /// A decoded message from the peer `uuid`: the rest of [`NodeState::handle_message`].
    fn handle_decoded(&mut self, now: Instant, uuid: Uuid, msg: Message, content: Content) {
        if self.stopped {
            return;
        }
        if uuid == self.config.uuid {
            self.stats.messages_unexpected += 1;
            return;
        }
        if let Body::Hello(hello) = msg.body {
            self.on_hello(now, uuid, msg.sequence, hello);
            return;
        }
        let Some(peer) = self.peers.get_mut(&uuid) else {
            self.stats.messages_unexpected += 1;
            self.trace(|| {
                format!(
                    "drop {} from unknown peer {}",
                    msg.body.name(),
                    uuid_hex(&uuid)
                )
            });
            return;
        };
        if !peer.ready {
            // "A non-HELLO message from an unknown or not-ready peer is dropped."
            self.stats.messages_unexpected += 1;
            self.trace(|| {
                format!(
                    "drop {} from {} before HELLO",
                    msg.body.name(),
                    uuid_hex(&uuid)
                )
            });
            return;
        }
        if msg.sequence != peer.want_sequence {
            // Messages were lost: the link is no longer trustworthy. The peer reconnects
            // (and says HELLO again) on its next beacon.
            let want = peer.want_sequence;
            self.stats.sequence_gaps += 1;
            self.trace(|| {
                format!(
                    "{}: sequence gap (got {}, want {want})",
                    uuid_hex(&uuid),
                    msg.sequence
                )
            });
            self.remove_peer(&uuid);
            return;
        }
        self.stats.messages += 1;
        peer.want_sequence = msg.sequence.wrapping_add(1);
        let timers = self.config.timers;
        peer.refresh(now, &timers);
        let name = peer.name.clone();
        match msg.body {
            // HELLO was handled before the sequence check.
            Body::Hello(_) => {}
            Body::Whisper => self.events.push_back(Event::Whisper {
                peer: uuid,
                name,
                content,
            }),
            Body::Shout { group } => {
                // Deliver only shouts to groups we are in: the sender may have seen our
                // LEAVE late.
                if self.groups.contains(&group) {
                    self.events.push_back(Event::Shout {
                        peer: uuid,
                        name,
                        group,
                        content,
                    });
                }
            }
            Body::Join { group, status } => {
                self.check_status(&uuid, status);
                let peer = self.peers.get_mut(&uuid).expect("peer checked above");
                peer.status = status;
                if peer.groups.insert(group.clone()) {
                    self.events.push_back(Event::Join {
                        peer: uuid,
                        name,
                        group,
                    });
                }
            }
            Body::Leave { group, status } => {
                self.check_status(&uuid, status);
                let peer = self.peers.get_mut(&uuid).expect("peer checked above");
                peer.status = status;
                if peer.groups.remove(&group) {
                    self.events.push_back(Event::Leave {
                        peer: uuid,
                        name,
                        group,
                    });
                }
            }
            Body::Ping => {
                self.send(&uuid, Body::PingOk, Vec::new());
            }
            Body::PingOk => {
                if let Some(p) = self.peers.get_mut(&uuid) {
                    p.pings_outstanding = p.pings_outstanding.saturating_sub(1);
                }
            }
            Body::Elect { .. } | Body::Leader { .. } | Body::Goodbye => {
                // Draft messages: valid on the wire (the sequence advanced), not acted on.
                self.trace(|| format!("ignore draft message from {}", uuid_hex(&uuid)));
            }
        }
    }

    fn check_status(&mut self, uuid: &Uuid, status: u8) {
        let Some(peer) = self.peers.get(uuid) else {
            return;
        };
        let want = peer.status.wrapping_add(1);
        if status != want {
            // The reference asserts here and pyre raises; we take the peer's word for its
            // status and carry on, because the membership change itself is unambiguous.
            self.trace(|| format!("{}: status {status}, expected {want}", uuid_hex(uuid)));
        }
    }

    fn on_hello(&mut self, now: Instant, uuid: Uuid, sequence: u16, hello: Hello) {
        if let Some(p) = self.peers.get(&uuid) {
            if p.ready {
                // "A HELLO from a peer that is already ready: the old peer is removed
                // (EXIT) and re-created (ENTER)."
                self.trace(|| format!("{}: second HELLO, re-creating", uuid_hex(&uuid)));
                self.remove_peer(&uuid);
            }
        }
        if sequence != 1 {
            // "A HELLO whose sequence is not 1 is a gap."
            self.stats.sequence_gaps += 1;
            self.trace(|| format!("{}: HELLO with sequence {sequence}", uuid_hex(&uuid)));
            if self.peers.contains_key(&uuid) {
                self.remove_peer(&uuid);
            }
            return;
        }
        if !self.peers.contains_key(&uuid) {
            // We are about to connect wherever this HELLO points: only to a TCP endpoint.
            if !is_tcp_endpoint(&hello.endpoint) {
                self.stats.messages_invalid += 1;
                self.trace(|| format!("drop HELLO with endpoint {:?}", hello.endpoint));
                return;
            }
            self.require_peer(now, uuid, &hello.endpoint);
        }
        self.purge_same_endpoint(uuid, &hello.endpoint);
        self.stats.messages += 1;
        let timers = self.config.timers;
        let Some(peer) = self.peers.get_mut(&uuid) else {
            return;
        };
        peer.name = Arc::from(hello.name);
        peer.headers = hello.headers;
        peer.status = hello.status;
        peer.groups = hello.groups.into_iter().collect();
        peer.want_sequence = 2;
        peer.ready = true;
        peer.refresh(now, &timers);
        let enter = Event::Enter {
            peer: uuid,
            name: peer.name.clone(),
            headers: peer.headers.iter().cloned().collect::<BTreeMap<_, _>>(),
            endpoint: peer.endpoint.clone(),
        };
        let joins: Vec<Event> = peer
            .groups
            .iter()
            .map(|g| Event::Join {
                peer: uuid,
                name: peer.name.clone(),
                group: g.clone(),
            })
            .collect();
        self.pending.retain(|u| *u != uuid);
        self.trace(|| format!("{}: HELLO, ready", uuid_hex(&uuid)));
        self.events.push_back(enter);
        self.events.extend(joins);
    }

    /// An application command.
    pub fn handle_command(&mut self, _now: Instant, cmd: Command) -> Result<(), CommandError> {
        if self.stopped {
            return Ok(());
        }
        match cmd {
            Command::Join(group) => {
                check_string("group", &group)?;
                if self.groups.insert(group.clone()) {
                    self.status = self.status.wrapping_add(1);
                    let status = self.status;
                    self.send_to_all(Body::Join { group, status });
                }
            }
            Command::Leave(group) => {
                check_string("group", &group)?;
                if self.groups.remove(&group) {
                    self.status = self.status.wrapping_add(1);
                    let status = self.status;
                    self.send_to_all(Body::Leave { group, status });
                }
            }
            Command::Whisper { peer, content } => {
                // Only peers the application has seen ENTER: a pending one has not said
                // HELLO yet and may never.
                if !self.peers.get(&peer).is_some_and(|p| p.ready) {
                    return Err(CommandError::UnknownPeer(peer));
                }
                self.send(&peer, Body::Whisper, content);
            }
            Command::Shout { group, content } => {
                check_string("group", &group)?;
                let members: Vec<(Uuid, u16)> = self
                    .peers
                    .values_mut()
                    .filter(|p| p.ready && p.groups.contains(&group))
                    .map(|p| (p.uuid, p.next_sequence()))
                    .collect();
                if members.is_empty() {
                    return Ok(());
                }
                // The group name was checked above, so this cannot fail; if it ever did, no
                // member may be left a sequence number ahead.
                let header = match Message::new(0, Body::Shout { group }).to_bytes() {
                    Ok(h) => h,
                    Err(e) => {
                        for (uuid, _) in &members {
                            if let Some(p) = self.peers.get_mut(uuid) {
                                p.sent_sequence = p.sent_sequence.wrapping_sub(1);
                            }
                        }
                        return Err(e.into());
                    }
                };
                self.transmits.push_back(Transmit::SendGroup {
                    header,
                    members,
                    content,
                });
            }
        }
        Ok(())
    }

    /// The driver could not queue a message for `peer` (its send queue is full). The
    /// reference disconnects such a peer; so do we, and the application sees EXIT.
    pub fn handle_send_failed(&mut self, _now: Instant, peer: &Uuid) {
        self.stats.send_failures += 1;
        if self.peers.contains_key(peer) {
            self.trace(|| format!("{}: send queue full, removing", uuid_hex(peer)));
            self.remove_peer(peer);
        }
    }

    /// Time passed: send beacons and PINGs, report EVASIVE and SILENT, expire peers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        if self.config.beacon_port != 0 && now >= self.next_beacon {
            self.transmits.push_back(Transmit::Beacon(
                Beacon::new(self.config.uuid, self.config.beacon_port).encode(),
            ));
            self.next_beacon = later(now, self.config.timers.interval);
        }
        let timers = self.config.timers;
        let due: Vec<Uuid> = self
            .peers
            .values()
            .filter(|p| p.next_deadline(&timers) <= now)
            .map(|p| p.uuid)
            .collect();
        for uuid in due {
            let peer = self.peers.get_mut(&uuid).expect("collected above");
            if now >= peer.expired_at(&timers) {
                self.trace(|| format!("{}: expired", uuid_hex(&uuid)));
                self.remove_peer(&uuid);
                continue;
            }
            if !peer.ready {
                continue;
            }
            let name = peer.name.clone();
            if now >= peer.evasive_at(&timers) && !peer.evasive_reported {
                peer.evasive_reported = true;
                self.events.push_back(Event::Evasive {
                    peer: uuid,
                    name: name.clone(),
                });
            }
            let peer = self.peers.get_mut(&uuid).expect("collected above");
            if now >= peer.silent_at(&timers) && !peer.silent_reported {
                peer.silent_reported = true;
                self.events.push_back(Event::Silent { peer: uuid, name });
            }
            let peer = self.peers.get_mut(&uuid).expect("collected above");
            if now >= peer.ping_at {
                peer.ping_at = later(now, timers.ping_interval());
                self.send(&uuid, Body::Ping, Vec::new());
            }
        }
    }

    /// Our messages to `peer` are moving: its node took some of a backlog off its link,
    /// which it does only while it reads its mailbox. That proves it alive as a message
    /// would (no EVASIVE, no expiry), though it has not answered: a peer that reads slowly
    /// behind a long queue may answer our PING later than the expired timeout allows.
    pub fn handle_link_progress(&mut self, now: Instant, peer: &Uuid) {
        let timers = self.config.timers;
        if let Some(p) = self.peers.get_mut(peer) {
            if p.ready {
                p.link_moved(now, &timers);
            }
        }
    }

    /// The application wants to stop. Before the port-0 beacon may go out, every ready
    /// peer must have processed what we sent it, or the beacon (UDP) could overtake the
    /// last messages (TCP) and the peer would drop them as from an unknown sender. So PING
    /// each ready peer; [`NodeState::is_drained`] turns true once all have answered.
    /// Peers that never answer are the driver's to give up on (its stop linger).
    pub fn handle_stop_request(&mut self, _now: Instant) {
        if self.stopped || self.draining {
            return;
        }
        self.draining = true;
        let ready: Vec<Uuid> = self
            .peers
            .values()
            .filter(|p| p.ready)
            .map(|p| p.uuid)
            .collect();
        for uuid in ready {
            self.send(&uuid, Body::Ping, Vec::new());
        }
    }

    /// True once a stop was requested and every ready peer answered its PING.
    pub fn is_drained(&self) -> bool {
        self.draining && self.is_flushed()
    }

    /// The application wants to know when every ready peer has taken what we sent it so
    /// far: PING each one. A peer answers a PING only after reading everything we sent
    /// before it (one TCP stream, read in order), so [`NodeState::is_flushed`] turns true
    /// once all have answered (or left).
    pub fn handle_flush_request(&mut self, _now: Instant) {
        if self.stopped {
            return;
        }
        let ready: Vec<Uuid> = self
            .peers
            .values()
            .filter(|p| p.ready)
            .map(|p| p.uuid)
            .collect();
        for uuid in ready {
            self.send(&uuid, Body::Ping, Vec::new());
        }
    }

    /// True when no ready peer owes us an answer to a PING.
    pub fn is_flushed(&self) -> bool {
        self.peers
            .values()
            .all(|p| !p.ready || p.pings_outstanding == 0)
    }

    /// Stop: forget every peer (no EXIT events: the node itself is going), emit STOP and
    /// return the port-0 beacon the driver sends once everything queued is flushed.
    pub fn handle_stop(&mut self, _now: Instant) -> Vec<u8> {
        if !self.stopped {
            self.stopped = true;
            let uuids: Vec<Uuid> = self.peers.keys().copied().collect();
            for uuid in uuids {
                self.peers.remove(&uuid);
                self.transmits
                    .push_back(Transmit::Disconnect { peer: uuid });
            }
            self.pending.clear();
            self.events.push_back(Event::Stop);
        }
        Beacon::new(self.config.uuid, 0).encode()
    }

    // ---- outputs -----------------------------------------------------------------------

    /// The next thing to put on the network.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next log line (only when `verbose`).
    pub fn poll_log(&mut self) -> Option<String> {
        self.log.pop_front()
    }

    /// When [`NodeState::handle_timeout`] must be called next (None once stopped).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let timers = &self.config.timers;
        let peers = self.peers.values().map(|p| p.next_deadline(timers)).min();
        if self.config.beacon_port == 0 {
            peers
        } else {
            Some(peers.map_or(self.next_beacon, |p| p.min(self.next_beacon)))
        }
    }

    // ---- internals ---------------------------------------------------------------------

    fn require_peer(&mut self, now: Instant, uuid: Uuid, endpoint: &str) {
        while self.pending.len() >= self.config.max_pending.max(1) {
            let Some(oldest) = self.pending.pop_front() else {
                break;
            };
            self.stats.pending_evicted += 1;
            self.trace(|| format!("{}: evicted (too many pending peers)", uuid_hex(&oldest)));
            self.remove_peer(&oldest);
        }
        let peer = Peer::new(uuid, endpoint.to_string(), now, &self.config.timers);
        self.peers.insert(uuid, peer);
        self.pending.push_back(uuid);
        self.transmits.push_back(Transmit::Connect {
            peer: uuid,
            endpoint: endpoint.to_string(),
        });
        let hello = Body::Hello(Hello {
            endpoint: self.config.endpoint.clone(),
            groups: self.groups.iter().cloned().collect(),
            status: self.status,
            name: self.config.name.clone(),
            headers: self.config.headers.clone(),
        });
        self.trace(|| format!("{}: discovered at {endpoint}, HELLO sent", uuid_hex(&uuid)));
        self.send(&uuid, hello, Vec::new());
    }

    /// "A new UUID on an endpoint that belongs to a known peer": the old peer restarted
    /// under a new UUID. The reference only disconnects it and reports EXIT at expiry,
    /// ~30 s later; we remove it now. Only a HELLO proves the new peer (it answered on
    /// that endpoint): a beacon alone could be forged to push a healthy peer out.
    fn purge_same_endpoint(&mut self, uuid: Uuid, claimed: &str) {
        let connected = self.peers.get(&uuid).map(|p| p.endpoint.clone());
        let stale: Vec<Uuid> = self
            .peers
            .values()
            .filter(|p| p.uuid != uuid)
            .filter(|p| p.endpoint == claimed || Some(&p.endpoint) == connected.as_ref())
            .map(|p| p.uuid)
            .collect();
        for old in stale {
            self.trace(|| {
                format!(
                    "{} replaces {} at {claimed}",
                    uuid_hex(&uuid),
                    uuid_hex(&old)
                )
            });
            self.remove_peer(&old);
        }
    }

    /// Removes a peer; EXIT only if the application saw it ENTER.
    fn remove_peer(&mut self, uuid: &Uuid) {
        if let Some(peer) = self.peers.remove(uuid) {
            if peer.ready {
                self.events.push_back(Event::Exit {
                    peer: peer.uuid,
                    name: peer.name,
                });
            } else {
                self.pending.retain(|u| u != uuid);
            }
            self.transmits
                .push_back(Transmit::Disconnect { peer: *uuid });
        }
    }

    fn send(&mut self, uuid: &Uuid, body: Body, content: Content) {
        if body == Body::Ping {
            if let Some(peer) = self.peers.get_mut(uuid) {
                peer.pings_outstanding += 1;
            }
        }
        let Some(header) = self.encode_for(uuid, &mut Message::new(0, body)) else {
            return;
        };
        let mut frames = Vec::with_capacity(1 + content.len());
        frames.push(header);
        frames.extend(content);
        self.transmits.push_back(Transmit::Send {
            peer: *uuid,
            frames,
        });
    }

    /// The ZRE frame of `msg` with the peer's next sequence number (None: unknown peer,
    /// or a bug that left a field too long).
    fn encode_for(&mut self, uuid: &Uuid, msg: &mut Message) -> Option<Vec<u8>> {
        let peer = self.peers.get_mut(uuid)?;
        msg.sequence = peer.next_sequence();
        match msg.to_bytes() {
            Ok(frame) => Some(frame),
            Err(e) => {
                // Lengths are checked where commands and configuration enter; reaching this
                // is a bug, but not one to crash a node over. Undo the sequence step.
                peer.sent_sequence = peer.sent_sequence.wrapping_sub(1);
                self.trace(|| format!("cannot encode: {e}"));
                None
            }
        }
    }

    fn send_to_all(&mut self, body: Body) {
        let uuids: Vec<Uuid> = self.peers.keys().copied().collect();
        for uuid in uuids {
            self.send(&uuid, body.clone(), Vec::new());
        }
    }
}

/// `tcp://host:port` with a numeric port: the only kind of endpoint a ZRE peer has.
fn is_tcp_endpoint(endpoint: &str) -> bool {
    endpoint
        .strip_prefix("tcp://")
        .and_then(|rest| rest.rsplit_once(':'))
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
}

fn endpoint_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{v6}]"),
        },
    }
}
