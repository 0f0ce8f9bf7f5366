//! The node state machine: everything a ZRE node decides, with no sockets, threads or
//! clock reads.
//!
//! Contract (after quinn's `Connection`): feed inputs with `handle_*`, each taking the
//! current time as `now`; then drain [`NodeState::poll_output`], one ordered stream of
//! [`Output`]s (what to put on the network, what to tell the application, what to log),
//! and ask [`NodeState::poll_timeout`] when to call [`NodeState::handle_timeout`] next. A
//! stop is outputs too: disconnects, the port-0 beacon, then STOP. The driver owns the
//! clock and the sockets; tests own a virtual clock and an in-memory LAN, and carry out
//! a shout's [`Transmit::SendGroup`] with the same [`for_each_member`].
//!
//! Discovery is an input like any other: [`NodeState::handle_beacon`] for UDP beacons,
//! [`NodeState::handle_discovered`] for any other source (gossip, a static peer list).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::beacon::Beacon;
use super::codec::{check_string, Body, DecodeError, EncodeError, Hello, Message};
use super::election::{Action, Elections};
use super::endpoint;
use super::event::{uuid_hex, Content, Event};
use super::peer::Peer;
use crate::curve::{z85, AllowList};

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
    /// refreshes it) arrives a fifth of the timeout before it could be called evasive
    /// (the reference pings only once it is already evasive, which makes every idle peer
    /// "evasive" every few seconds). Either side's PING refreshes both (the PING there,
    /// the PING-OK here), so an idle pair exchanges about one PING per interval; pinging
    /// earlier would only wake idle nodes more often.
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

    /// How long a peer whose endpoint another UUID's HELLO claims has to send us anything
    /// (we PING it at once) before it is taken to be gone from that endpoint: one beacon
    /// interval, at most the evasive timeout. A live peer answers within a round trip; a
    /// restarted one cannot, since the new process at its endpoint drops our PING (we
    /// have not said HELLO to it).
    pub fn probe(&self) -> Duration {
        self.interval
            .min(self.evasive)
            .max(Duration::from_millis(1))
    }
}

/// `t + d`, or an instant too far away to matter when that would overflow: timers
/// come from the application, and `Duration::MAX` is a natural way to say "never".
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

/// Events held for one unproven peer after its HELLO (its ENTER and JOINs not counted),
/// and the content bytes among them; past either it is dropped.
const MAX_HELD_EVENTS: usize = 64;
const MAX_HELD_BYTES: usize = 1 << 20;

/// Beacon-only peers remembered without a link, per `max_pending`.
const REMEMBERED_PER_LINK: usize = 4;

/// UUIDs of beacons recorded per beacon interval, to tell a node that beacons every
/// interval from the one-off fakes of a flood (about 1 MiB at most, both intervals).
const HEARD_MAX: usize = 16_384;

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
    /// At most this many peers may be held unproven (discovered but silent, or said HELLO
    /// but not yet answered our PING). Each holds a DEALER: 2 file descriptors, 3 while
    /// its TCP connect is pending. The default, 32, keeps a flood of fake beacons or
    /// HELLOs under 100 fds, well below even a 256 `ulimit -n`. When full, a new beacon's
    /// peer is remembered without a socket (up to 4 x `max_pending`, then not taken) and a
    /// HELLO's peer waits without one (up to `max_pending`, oldest dropped); both are
    /// linked as links free up or go stale (see `evict_stale`).
    pub max_pending: usize,
    /// Static peers: mailbox endpoints (`tcp://host:port`) to connect to without knowing
    /// the UUID there (see [`NodeState::handle_static_peer`]). Configured, not learned, so
    /// not bounded; check each with [`check_endpoint`].
    pub static_peers: Vec<String>,
    /// Record a log line for every decision worth tracing (see [`NodeState::poll_output`]).
    pub verbose: bool,
    /// IPv6 mode (Zyre's `ZSYS_IPV6=1`): the name of our interface, the zone of every
    /// link-local endpoint. Peer endpoints, from beacons, HELLOs, gossip and statics, are
    /// kept in one form ([`endpoint::local`]) and our HELLO carries ours without zone
    /// ([`endpoint::for_hello`]). None (the default): IPv4, endpoints taken as they come.
    pub ipv6_zone: Option<String>,
    /// CURVE (as Zyre): our public key. Our beacons are then v3 and carry it, our HELLO
    /// carries it as `X-PUBLICKEY` (Z85), and only peers in CURVE mode are met: v1
    /// beacons and HELLOs without a key are ignored, as a plain node ignores v3 beacons.
    /// None: plain ZRE.
    pub curve_key: Option<[u8; 32]>,
    /// With CURVE, the public keys accepted (None: any key, as Zyre). A beacon or HELLO
    /// with another key is ignored before any connection; the driver's ZAP handler
    /// refuses such keys at the handshake. Replaced at run time by
    /// [`NodeState::handle_allow_list`].
    pub allow: Option<AllowList>,
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
            max_pending: 32,
            static_peers: Vec::new(),
            verbose: false,
            ipv6_zone: None,
            curve_key: None,
            allow: None,
        }
    }

    /// Our beacon announcing `port` (0: we are leaving): v3 with our key in CURVE mode.
    pub fn beacon(&self, port: u16) -> Vec<u8> {
        let mut b = Beacon::new(self.uuid, port);
        b.curve_key = self.curve_key;
        b.encode()
    }

    /// True if a peer with this key may be met: any key without an allow-list.
    pub fn allows(&self, key: &[u8; 32]) -> bool {
        self.allow.as_ref().is_none_or(|l| l.contains(key))
    }
}

/// The HELLO header that carries a CURVE node's public key (Z85), as Zyre names it.
pub const PUBLICKEY_HEADER: &str = "X-PUBLICKEY";

/// What a flush waits for (see [`NodeState::handle_flush_request`]): each ready peer and
/// the count of PINGs sent to it when the flush was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushTicket(Vec<(Uuid, u64)>);

/// One thing the state machine decided; see [`NodeState::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Something to put on the network.
    Transmit(Transmit),
    /// An event for the application.
    Event(Event),
    /// A decision worth tracing (only when `verbose`); the driver writes it, marked with
    /// the node's identity.
    Log(String),
}

/// Pushing outputs of each kind (the queue holds them in order).
trait OutputQueue {
    fn push_transmit(&mut self, t: Transmit);
    fn push_event(&mut self, e: Event);
}

impl OutputQueue for VecDeque<Output> {
    fn push_transmit(&mut self, t: Transmit) {
        self.push_back(Output::Transmit(t));
    }
    fn push_event(&mut self, e: Event) {
        self.push_back(Output::Event(e));
    }
}

/// A [`Transmit::SendGroup`] one member at a time: writes each member's sequence number
/// into the shared header and calls `each(member, header)`. The driver and the
/// simulation both send a shout this way.
pub fn for_each_member(
    header: &mut [u8],
    members: &[(Uuid, u16)],
    mut each: impl FnMut(Uuid, &[u8]),
) {
    for (peer, sequence) in members {
        super::codec::set_sequence(header, *sequence);
        each(*peer, header);
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
        /// In CURVE mode, the peer's public key: the DEALER is a CURVE client with it as
        /// the server key (and our own key pair).
        curve_key: Option<[u8; 32]>,
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
    /// The link opened under `from` (a static peer's key) is now the link of `to`, the
    /// peer whose HELLO claimed its endpoint: same DEALER, nothing re-sent.
    Rekey {
        /// The key it had.
        from: Uuid,
        /// The peer's UUID.
        to: Uuid,
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
    /// Contest the group's leadership (Zyre's draft `zyre_set_contest_in_group`): see
    /// [`super::election`]. Takes effect while we are in the group.
    Contest(String),
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
    /// Not a ZRE mailbox endpoint.
    #[error("bad peer endpoint {0:?}: want tcp://HOST:PORT")]
    BadEndpoint(String),
}

/// Checks a static peer's endpoint: `tcp://host:port`, port 1 to 65535.
pub fn check_endpoint(endpoint: &str) -> Result<(), CommandError> {
    if is_tcp_endpoint(endpoint) {
        Ok(())
    } else {
        Err(CommandError::BadEndpoint(endpoint.to_string()))
    }
}

/// A static peer: an endpoint we connect to without knowing who is there. Its link is
/// keyed by `key` (a UUID no peer may use) until a HELLO from a new UUID claims the
/// endpoint: then the same link (its DEALER, its sequence) becomes that peer's
/// ([`Transmit::Rekey`]), so the peer hears one HELLO from us, not two.
#[derive(Debug)]
struct StaticPeer {
    key: Uuid,
    endpoint: String,
    /// Our link is open and said HELLO at this time; no answer yet.
    linked_at: Option<Instant>,
    sent_sequence: u16,
    /// When to try again, while no peer holds the endpoint.
    next_try: Instant,
    backoff: Duration,
}

/// Counters of what the node received and what it dropped, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Valid beacons from others, of our mode (v1 plain, v3 in CURVE mode).
    pub beacons: u64,
    /// Datagrams that were not v1 beacons (bad size, prefix or version).
    pub beacons_invalid: u64,
    /// v3 (CURVE) beacons, ignored by a node without CURVE.
    pub beacons_curve: u64,
    /// v1 (plain) beacons, ignored by a node in CURVE mode.
    pub beacons_plain: u64,
    /// CURVE beacons and HELLOs whose key is not on the allow-list, ignored.
    pub keys_refused: u64,
    /// In CURVE mode: HELLOs without a valid `X-PUBLICKEY`, or whose key is not the one
    /// the peer beaconed or its connection authenticated with; messages from a peer
    /// over a connection authenticated with another key than the peer's. Dropped.
    pub keys_mismatched: u64,
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
    /// Pending peers dropped (or not taken) to keep within `max_pending`.
    pub pending_evicted: u64,
    /// Port-0 ("leaving") beacons for a known peer from an address other than its own.
    pub beacons_leave_refused: u64,
    /// HELLOs refused: claiming our own endpoint, or the endpoint of a peer that answered
    /// our PING (or lost it to a later claim).
    pub hellos_refused: u64,
    /// Well-formed messages refused because a string in them is not UTF-8 (still counted
    /// as received in the peer's sequence).
    pub messages_not_utf8: u64,
    /// Unproven peers dropped for sending too much before their proof.
    pub held_overflow: u64,
    /// Sends the driver could not queue (peer removed).
    pub send_failures: u64,
    /// Times the driver stopped reading the mailbox because the application had its
    /// event limit of events waiting (see `Builder::event_limit`); counted by the driver.
    pub receive_stalls: u64,
    /// Gossip (filled by the driver; zero without gossip): tuples held now, and hub
    /// client sessions now.
    pub gossip_tuples: u64,
    /// See `gossip_tuples`.
    pub gossip_clients: u64,
    /// Gossip frames that did not decode.
    pub gossip_malformed: u64,
    /// Gossip tuples refused (over a bound, too long, or claiming our UUID).
    pub gossip_refused: u64,
    /// Gossip tuples dropped: TTL ran out, or their publisher's connection went.
    pub gossip_expired: u64,
    /// Gossip tuples that named a peer to connect to.
    pub gossip_peers: u64,
}

/// The state of one ZRE node. See the module documentation for the contract.
#[derive(Debug)]
pub struct NodeState {
    config: Config,
    peers: super::UuidMap<Peer>,
    /// Peers discovered but not yet ready, oldest first, for eviction.
    pending: VecDeque<Uuid>,
    /// Peers we heard a beacon from while `max_pending` links were taken: remembered
    /// without a link (no socket), oldest first, linked as links free up. Their HELLO
    /// makes them ready at once, like a linked beacon-only peer's.
    remembered: VecDeque<Uuid>,
    /// Peers that said HELLO and have no link yet: waiting for one (oldest first), or
    /// behind a claim on their endpoint.
    waiting: VecDeque<Uuid>,
    /// UUIDs of beacons from unknown peers heard in this beacon interval (0) and the last
    /// (1), and when this one began.
    heard: [super::UuidMap<()>; 2],
    heard_since: Instant,
    /// The `now` of the input being handled, for what it sets deep down (a link's start).
    now: Instant,
    groups: BTreeSet<String>,
    status: u8,
    next_beacon: Instant,
    /// Static peers (see [`StaticPeer`]).
    statics: Vec<StaticPeer>,
    /// Set by `handle_stop_request`: waiting for every ready peer to answer a PING.
    draining: bool,
    stopped: bool,
    /// What the state machine decided, in order (see [`NodeState::poll_output`]).
    out: VecDeque<Output>,
    stats: Stats,
    /// Leader elections (draft ELECT/LEADER).
    elections: Elections,
    /// A peer's groups, HELLO or link changed: the elections' members are looked at again
    /// once the input is handled (`sync_elections`).
    elections_dirty: bool,
}

impl NodeState {
    /// A node started at `now`; its first beacon is due at once.
    pub fn new(mut config: Config, now: Instant) -> Self {
        if let Some(key) = &config.curve_key {
            // As Zyre: every HELLO says our key (the application cannot override it).
            config.headers.retain(|(k, _)| k != PUBLICKEY_HEADER);
            config
                .headers
                .push((PUBLICKEY_HEADER.to_string(), z85::encode_key(key)));
        }
        let statics = config.static_peers.clone();
        config.endpoint = local_endpoint(&config, &config.endpoint);
        let config_uuid = config.uuid;
        let mut node = NodeState {
            config,
            peers: Default::default(),
            pending: VecDeque::new(),
            remembered: VecDeque::new(),
            waiting: VecDeque::new(),
            heard: Default::default(),
            heard_since: now,
            now,
            groups: BTreeSet::new(),
            status: 0,
            next_beacon: now,
            draining: false,
            stopped: false,
            out: VecDeque::new(),
            stats: Stats::default(),
            statics: Vec::new(),
            elections: Elections::new(config_uuid),
            elections_dirty: false,
        };
        for endpoint in statics {
            // A bad one was refused by whoever built the configuration; skip it here.
            let _ = node.add_static(now, &endpoint);
        }
        node
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

    /// Who won the group's last election (our UUID if we did), while no election runs.
    pub fn leader(&self, group: &str) -> Option<Uuid> {
        self.elections.leader(group)
    }

    /// The groups' elections.
    pub fn elections(&self) -> &Elections {
        &self.elections
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.config.verbose {
            self.out.push_back(Output::Log(line()));
        }
    }

    // ---- inputs ------------------------------------------------------------------------

    /// A UDP datagram arrived on the beacon port from `from`.
    pub fn handle_beacon(&mut self, now: Instant, from: IpAddr, datagram: &[u8]) {
        self.now = self.now.max(now);
        self.on_beacon(now, from, datagram);
        self.fill_links();
    }

    fn on_beacon(&mut self, now: Instant, from: IpAddr, datagram: &[u8]) {
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
        match (beacon.curve_key, self.config.curve_key) {
            (Some(_), None) => {
                // A CURVE node's beacon: we speak no CURVE, so connecting would only fail.
                self.stats.beacons_curve += 1;
                self.trace(|| format!("ignore CURVE beacon from {from}"));
                return;
            }
            (None, Some(_)) => {
                // "A node SHALL ignore v2 beacons when operating in CURVE mode" (RFC 43;
                // Zyre's v1): a plain node cannot reach us, nor we it.
                self.stats.beacons_plain += 1;
                self.trace(|| format!("ignore plain beacon from {from}"));
                return;
            }
            _ => {}
        }
        if beacon.uuid == self.config.uuid {
            self.stats.beacons_own += 1;
            return;
        }
        if let Some(key) = &beacon.curve_key {
            if !self.config.allows(key) {
                // Not on the allow-list: no connection, no trace of it in the peer table.
                self.stats.keys_refused += 1;
                self.trace(|| format!("ignore beacon from {from}: key not allowed"));
                return;
            }
        }
        self.stats.beacons += 1;
        if beacon.port == 0 {
            // "A beacon with port 0 means I am leaving: remove that peer now." Only from
            // the peer's own address: anyone on the subnet can send this datagram, and
            // the reference would let them remove any peer with it.
            let Some(peer) = self.peers.get(&beacon.uuid) else {
                return;
            };
            if endpoint_host_of(&peer.endpoint)
                != Some(source_host(self.config.ipv6_zone.as_deref(), from).as_str())
            {
                self.stats.beacons_leave_refused += 1;
                self.trace(|| {
                    format!(
                        "ignore port-0 beacon for {} from {from}",
                        uuid_hex(&beacon.uuid)
                    )
                });
                return;
            }
            self.trace(|| format!("{} left (port-0 beacon)", uuid_hex(&beacon.uuid)));
            self.remove_peer(&beacon.uuid);
            return;
        }
        if let Some(peer) = self.peers.get_mut(&beacon.uuid) {
            // Known already (the usual case: every peer's beacon, every second). Only a
            // ready peer's beacon counts: before HELLO we know nothing of that node.
            if peer.ready {
                peer.heard_beacon(now, &self.config.timers);
            } else if peer.linked && !peer.said_hello {
                peer.beacon_again = true;
            } else if !peer.linked && !peer.said_hello {
                // Remembered, and beaconing again: a live node, most likely.
                self.promote(now, beacon.uuid);
            } else if peer.linked && peer.claim.is_none() {
                // Introduced by its HELLO, not proven yet, and now heard on our subnet.
                let here = format!(
                    "tcp://{}:{}",
                    source_host(self.config.ipv6_zone.as_deref(), from),
                    beacon.port
                );
                if peer.endpoint != here {
                    self.relink(beacon.uuid, here);
                }
            }
            return;
        }
        let repeated = self.heard_again(now, beacon.uuid);
        let endpoint = format!(
            "tcp://{}:{}",
            source_host(self.config.ipv6_zone.as_deref(), from),
            beacon.port
        );
        self.discover(
            now,
            beacon.uuid,
            &endpoint,
            beacon.curve_key,
            repeated,
            false,
        );
    }

    /// True if a beacon from `uuid` came in this beacon interval or the last one; records
    /// this one. A node beacons every interval; the fakes of a flood (fresh UUIDs) come
    /// once each. Bounded: past `HEARD_MAX` UUIDs an interval, no more are recorded.
    fn heard_again(&mut self, now: Instant, uuid: Uuid) -> bool {
        let interval = self.config.timers.interval;
        if now >= later(self.heard_since, interval) {
            let last = std::mem::take(&mut self.heard[0]);
            self.heard[1] = if now < later(self.heard_since, interval.saturating_mul(2)) {
                last
            } else {
                Default::default()
            };
            self.heard_since = now;
        }
        let again = self.heard.iter().any(|h| h.contains_key(&uuid));
        if !again && self.heard[0].len() < HEARD_MAX {
            self.heard[0].insert(uuid, ());
        }
        again
    }

    /// A peer exists at `endpoint` (from a beacon, gossip or configuration): connect to it
    /// and say HELLO unless it is already known.
    pub fn handle_discovered(&mut self, now: Instant, uuid: Uuid, endpoint: &str) {
        self.handle_discovered_key(now, uuid, endpoint, None);
    }

    /// [`NodeState::handle_discovered`] with the peer's CURVE public key (a gossip tuple
    /// `endpoint|key`, say). In CURVE mode a peer without a key, or with one not on the
    /// allow-list, is ignored; without CURVE, a peer with a key is.
    pub fn handle_discovered_key(
        &mut self,
        now: Instant,
        uuid: Uuid,
        endpoint: &str,
        key: Option<[u8; 32]>,
    ) {
        self.now = self.now.max(now);
        let fits = match (&key, self.config.curve_key) {
            (Some(k), Some(_)) => self.config.allows(k),
            (None, None) => true,
            _ => false,
        };
        if fits {
            let endpoint = local_endpoint(&self.config, endpoint);
            self.discover(now, uuid, &endpoint, key, false, true);
        } else {
            self.stats.keys_refused += 1;
            self.trace(|| {
                format!(
                    "{}: discovered with a key that does not fit",
                    uuid_hex(&uuid)
                )
            });
        }
        self.fill_links();
    }

    /// The allow-list changed (the driver re-read it): None accepts any key. Known peers
    /// whose key it no longer holds are removed (EXIT if they had entered), their links
    /// closed; their beacons are ignored from now on.
    pub fn handle_allow_list(&mut self, now: Instant, allow: Option<AllowList>) {
        self.now = self.now.max(now);
        self.config.allow = allow;
        let refused: Vec<Uuid> = self
            .peers
            .values()
            .filter(|p| p.curve_key.is_some_and(|k| !self.config.allows(&k)))
            .map(|p| p.uuid)
            .collect();
        for uuid in refused {
            self.stats.keys_refused += 1;
            self.trace(|| format!("{}: key no longer allowed, removed", uuid_hex(&uuid)));
            self.remove_peer(&uuid);
        }
        self.fill_links();
    }

    /// A static peer: connect to `endpoint` and say HELLO without knowing who is there.
    /// Whoever answers with a HELLO from a new UUID claiming that endpoint is bound to the
    /// link and PINGed; its PING-OK proves it (as for a peer introduced by HELLO), and it
    /// ENTERs. Unanswered within the evasive timeout, the link is closed and tried again,
    /// one interval later at first, doubling up to the expired timeout. While a peer holds
    /// the endpoint nothing is tried; once it is gone (it left, expired, or restarted),
    /// the endpoint is tried again at once: a static peer is expected to come back. The
    /// endpoint must be the one the peer announces in its HELLO. Adding one twice, or our
    /// own endpoint, does nothing.
    pub fn handle_static_peer(&mut self, now: Instant, endpoint: &str) -> Result<(), CommandError> {
        self.now = self.now.max(now);
        self.add_static(now, endpoint)?;
        self.fill_links();
        Ok(())
    }

    fn add_static(&mut self, now: Instant, endpoint: &str) -> Result<(), CommandError> {
        check_endpoint(endpoint)?;
        let endpoint = local_endpoint(&self.config, endpoint);
        if self.stopped || self.statics.iter().any(|s| s.endpoint == endpoint) {
            return Ok(());
        }
        // Keys count down from the largest UUID: not a valid UUID of any version, and
        // refused as a peer's (see `on_hello`).
        let key = Uuid::from_u128(u128::MAX - self.statics.len() as u128);
        self.statics.push(StaticPeer {
            key,
            endpoint,
            linked_at: None,
            sent_sequence: 0,
            next_try: now,
            backoff: self.config.timers.interval,
        });
        Ok(())
    }

    /// Opens, closes and retries static links; runs after every input, from `fill_links`.
    fn tend_statics(&mut self) {
        let now = self.now;
        let timers = self.config.timers;
        for i in 0..self.statics.len() {
            let s = &self.statics[i];
            let held = self.peers.values().any(|p| p.endpoint == s.endpoint);
            match s.linked_at {
                Some(at) if held || later(at, timers.evasive) <= now => {
                    let s = &mut self.statics[i];
                    s.linked_at = None;
                    let key = s.key;
                    if held {
                        // Someone said HELLO from there by another way: ours is not needed.
                        s.backoff = timers.interval;
                        s.next_try = now;
                    } else {
                        s.next_try = later(now, s.backoff);
                        s.backoff = s.backoff.saturating_mul(2).min(timers.expired);
                    }
                    self.out.push_transmit(Transmit::Disconnect { peer: key });
                    let (e, held) = (self.statics[i].endpoint.clone(), held);
                    self.trace(|| format!("static {e}: link closed (held: {held})"));
                }
                None if !held && s.next_try <= now && s.endpoint != self.config.endpoint => {
                    self.link_static(i);
                }
                None if held => {
                    let s = &mut self.statics[i];
                    s.backoff = timers.interval;
                    s.next_try = now;
                }
                _ => {}
            }
        }
    }

    fn link_static(&mut self, i: usize) {
        let s = &mut self.statics[i];
        s.linked_at = Some(self.now);
        s.sent_sequence = 0;
        let (key, endpoint) = (s.key, s.endpoint.clone());
        self.out.push_transmit(Transmit::Connect {
            peer: key,
            endpoint: endpoint.clone(),
            curve_key: None,
        });
        let hello = Body::Hello(self.our_hello());
        self.send_static(i, hello);
        self.trace(|| format!("static {endpoint}: HELLO sent"));
    }

    fn send_static(&mut self, i: usize, body: Body) {
        let s = &mut self.statics[i];
        s.sent_sequence = s.sent_sequence.wrapping_add(1);
        let key = s.key;
        match Message::new(s.sent_sequence, body).to_bytes() {
            Ok(frame) => self.out.push_transmit(Transmit::Send {
                peer: key,
                frames: vec![frame],
            }),
            Err(e) => {
                s.sent_sequence = s.sent_sequence.wrapping_sub(1);
                self.trace(|| format!("cannot encode: {e}"));
            }
        }
    }

    fn our_hello(&self) -> Hello {
        let endpoint = match self.config.ipv6_zone {
            // As Zyre: the zone names one of our interfaces, meaningless to the peer.
            Some(_) => endpoint::for_hello(&self.config.endpoint),
            None => self.config.endpoint.clone(),
        };
        Hello {
            endpoint,
            groups: self.groups.iter().cloned().collect(),
            status: self.status,
            name: self.config.name.clone(),
            headers: self.config.headers.clone(),
        }
    }

    /// A HELLO from the new peer `uuid` claims the endpoint of the open static link `i`:
    /// the link becomes the peer's (no second HELLO: Zyre re-creates a peer that says
    /// HELLO twice), and a PING on it proves the peer.
    fn bind_static(
        &mut self,
        now: Instant,
        i: usize,
        uuid: Uuid,
        hello: Hello,
        curve_key: Option<[u8; 32]>,
    ) {
        let timers = self.config.timers;
        let s = &mut self.statics[i];
        s.linked_at = None;
        s.backoff = timers.interval;
        s.next_try = now;
        let (key, sequence) = (s.key, s.sent_sequence);
        let mut peer = Peer::new(uuid, s.endpoint.clone(), now, &timers);
        peer.curve_key = curve_key;
        apply_hello(&mut peer, hello, now, &timers);
        peer.held = hello_events(&peer);
        peer.linked = true;
        peer.linked_at = now;
        peer.sent_sequence = sequence;
        self.peers.insert(uuid, peer);
        self.pending.push_back(uuid);
        self.stats.messages += 1;
        self.out.push_transmit(Transmit::Rekey {
            from: key,
            to: uuid,
        });
        self.trace(|| format!("{}: answered our static link, proving it", uuid_hex(&uuid)));
        self.send(&uuid, Body::Ping, Vec::new());
    }

    /// `repeated`: its beacons keep coming (see [`NodeState::heard_again`]).
    /// `must_prove`: not heard by beacon (see `Peer::must_prove`).
    fn discover(
        &mut self,
        now: Instant,
        uuid: Uuid,
        endpoint: &str,
        key: Option<[u8; 32]>,
        repeated: bool,
        must_prove: bool,
    ) {
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
        self.require_peer(now, uuid, endpoint, key, repeated);
        if let Some(peer) = self.peers.get_mut(&uuid) {
            peer.must_prove = must_prove;
        }
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
        self.handle_message_from(now, identity, frame, content, None);
    }

    /// [`NodeState::handle_message`] with the CURVE public key the message's connection
    /// authenticated with (the driver's ZAP handler puts it in the message's User-Id).
    /// In CURVE mode a peer is bound to one key: a HELLO must carry the key of its
    /// connection (and the peer's beaconed one), and a later message from the peer must
    /// come over a connection with that key, else it is dropped (`Stats::keys_mismatched`):
    /// one allowed node cannot speak for another by taking its routing id.
    pub fn handle_message_from(
        &mut self,
        now: Instant,
        identity: &[u8],
        frame: &[u8],
        content: Content,
        sender_key: Option<&[u8; 32]>,
    ) {
        self.now = self.now.max(now);
        self.on_message(now, identity, frame, content, sender_key);
        self.fill_links();
    }

    fn on_message(
        &mut self,
        now: Instant,
        identity: &[u8],
        frame: &[u8],
        content: Content,
        sender_key: Option<&[u8; 32]>,
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
            Err(DecodeError::NotUtf8 { id, sequence, .. }) => {
                self.stats.messages_not_utf8 += 1;
                self.trace(|| format!("refuse non-UTF-8 message from {}", uuid_hex(&uuid)));
                self.refuse_not_utf8(now, uuid, id, sequence);
                return;
            }
            Err(e) => {
                // Dropped without advancing the expected sequence, as the reference does:
                // the next good message from this peer then looks like a gap.
                self.stats.messages_invalid += 1;
                self.trace(|| format!("drop bad frame from {}: {e}", uuid_hex(&uuid)));
                return;
            }
        };
        self.handle_decoded(now, uuid, msg, content, sender_key);
    }

    /// A decoded message from the peer `uuid`: the rest of [`NodeState::handle_message`].
    fn handle_decoded(
        &mut self,
        now: Instant,
        uuid: Uuid,
        msg: Message,
        content: Content,
        sender_key: Option<&[u8; 32]>,
    ) {
        if self.stopped {
            return;
        }
        if uuid == self.config.uuid {
            self.stats.messages_unexpected += 1;
            return;
        }
        if let Body::Hello(hello) = msg.body {
            if let Some(key) = self.check_hello_key(uuid, &hello, sender_key) {
                self.on_hello(now, uuid, msg.sequence, hello, key);
            }
            return;
        }
        if let (Some(sender), Some(peer)) = (sender_key, self.peers.get(&uuid)) {
            if peer.curve_key.is_some_and(|k| k != *sender) {
                self.stats.keys_mismatched += 1;
                self.trace(|| {
                    format!("{}: message over another key's connection", uuid_hex(&uuid))
                });
                return;
            }
        }
        if !self.accept_sequence(now, uuid, msg.sequence, msg.body.name()) {
            return;
        }
        self.stats.messages += 1;
        let Some(peer) = self.peers.get_mut(&uuid) else {
            return;
        };
        let name = peer.name.clone();
        let event = match msg.body {
            // HELLO was handled before the sequence check.
            Body::Hello(_) => None,
            Body::Whisper => Some(Event::Whisper {
                peer: uuid,
                name,
                content,
            }),
            // Deliver only shouts to groups we are in: the sender may have seen our LEAVE
            // late.
            Body::Shout { group } if self.groups.contains(&group) => Some(Event::Shout {
                peer: uuid,
                name,
                group,
                content,
            }),
            Body::Shout { .. } => None,
            Body::Join { group, status } => {
                self.check_status(&uuid, status);
                let peer = self.peers.get_mut(&uuid).expect("peer checked above");
                peer.status = status;
                self.elections_dirty = true;
                peer.groups.insert(group.clone()).then_some(Event::Join {
                    peer: uuid,
                    name,
                    group,
                })
            }
            Body::Leave { group, status } => {
                self.check_status(&uuid, status);
                let peer = self.peers.get_mut(&uuid).expect("peer checked above");
                peer.status = status;
                self.elections_dirty = true;
                peer.groups.remove(&group).then_some(Event::Leave {
                    peer: uuid,
                    name,
                    group,
                })
            }
            Body::Ping => {
                self.send(&uuid, Body::PingOk, Vec::new());
                None
            }
            Body::PingOk => {
                let peer = self.peers.get_mut(&uuid).expect("peer checked above");
                let answered = peer.pings_outstanding > 0;
                peer.pings_outstanding = peer.pings_outstanding.saturating_sub(1);
                if let Some(sent) = peer.pings_sent_at.pop_front() {
                    peer.pongs += 1;
                    peer.rtt = Some(now.saturating_duration_since(sent));
                }
                if answered && !peer.ready && peer.linked {
                    // Our PING went to the endpoint its HELLO claimed, and it answered.
                    self.prove(&uuid);
                }
                None
            }
            Body::Elect {
                group,
                challenger_id,
            } => {
                self.trace(|| format!("ELECT {group} {challenger_id} from {}", uuid_hex(&uuid)));
                self.on_election(uuid, group, |e, group, now, members, out| {
                    e.on_elect(group, now, uuid, &challenger_id, members, out)
                });
                None
            }
            Body::Leader { group, leader_id } => {
                self.trace(|| format!("LEADER {group} {leader_id} from {}", uuid_hex(&uuid)));
                self.on_election(uuid, group, |e, group, now, members, out| {
                    e.on_leader(group, now, uuid, &leader_id, members, out)
                });
                None
            }
            Body::Goodbye => {
                // The peer is stopping. Zyre removes it here only in gossip mode (beacon
                // mode waits for the port-0 beacon); it comes over the peer's own link, in
                // sequence, so we believe it always.
                self.trace(|| format!("{}: GOODBYE", uuid_hex(&uuid)));
                self.remove_peer(&uuid);
                None
            }
        };
        if let Some(event) = event {
            self.emit(uuid, event);
        }
    }

    /// The checks every message after HELLO passes: a known peer that said HELLO, and the
    /// sequence number it owes us. True when the message is accepted; the peer is then
    /// refreshed, and a peer under probe has answered it.
    fn accept_sequence(&mut self, now: Instant, uuid: Uuid, sequence: u16, what: &str) -> bool {
        let Some(peer) = self.peers.get_mut(&uuid) else {
            self.stats.messages_unexpected += 1;
            self.trace(|| format!("drop {what} from unknown peer {}", uuid_hex(&uuid)));
            return false;
        };
        if !peer.said_hello {
            // "A non-HELLO message from an unknown or not-ready peer is dropped."
            self.stats.messages_unexpected += 1;
            self.trace(|| format!("drop {what} from {} before HELLO", uuid_hex(&uuid)));
            return false;
        }
        if sequence != peer.want_sequence {
            // Messages were lost: the link is no longer trustworthy. The peer reconnects
            // (and says HELLO again) on its next beacon.
            let want = peer.want_sequence;
            self.stats.sequence_gaps += 1;
            self.trace(|| {
                format!(
                    "{}: sequence gap (got {sequence}, want {want})",
                    uuid_hex(&uuid)
                )
            });
            self.remove_peer(&uuid);
            return false;
        }
        peer.want_sequence = sequence.wrapping_add(1);
        let timers = self.config.timers;
        peer.refresh(now, &timers);
        if peer.probe.take().is_some() {
            // Alive on its link after another UUID claimed its endpoint: the claim was
            // false.
            self.refuse_claims(&uuid);
        }
        true
    }

    /// A frame that decoded but for a string that is not UTF-8. The message is refused,
    /// yet it was received: the peer's sequence advances as for any message, or its next
    /// one would look like a gap. A refused HELLO admits no one (a known peer saying it
    /// restarted is removed: we cannot hold its new name or groups).
    fn refuse_not_utf8(&mut self, now: Instant, uuid: Uuid, id: u8, sequence: u16) {
        if self.stopped || uuid == self.config.uuid {
            return;
        }
        if id == 1 {
            if self.peers.get(&uuid).is_some_and(|p| p.said_hello) {
                self.remove_peer(&uuid);
            }
            return;
        }
        // A JOIN or LEAVE refused here leaves the peer's stored status one behind: its
        // next one is logged as unexpected and accepted (see `check_status`). The group is
        // not one we can be in, shout to, or name to the application.
        self.accept_sequence(now, uuid, sequence, "message with a non-UTF-8 string");
    }

    /// Hands an event to the application, or holds it while its peer is unproven.
    fn emit(&mut self, uuid: Uuid, event: Event) {
        let Some(peer) = self.peers.get_mut(&uuid) else {
            return;
        };
        if peer.ready {
            self.out.push_event(event);
            return;
        }
        let bytes = event
            .content()
            .map_or(0, |c| c.iter().map(Vec::len).sum::<usize>());
        let (n, b) = &mut peer.held_after_hello;
        *n += 1;
        *b += bytes;
        if *n > MAX_HELD_EVENTS || *b > MAX_HELD_BYTES {
            // A genuine peer sends next to nothing before its PING-OK (one round trip).
            self.stats.held_overflow += 1;
            self.trace(|| format!("{}: too much before proof, dropped", uuid_hex(&uuid)));
            self.remove_peer(&uuid);
            return;
        }
        peer.held.push(event);
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

    /// In CURVE mode, what a HELLO must show before it is looked at: an `X-PUBLICKEY`
    /// that is a key (Zyre ignores a HELLO without one, "to avoid a downgrade"), on the
    /// allow-list, equal to the key its connection authenticated with (when the driver
    /// knows it) and to the key the peer beaconed (when it is a peer we hold, not ready;
    /// a ready one saying HELLO again is re-created, and may come back with a new key).
    /// None if it fails; else the key (None in plain mode), which a peer introduced by
    /// this HELLO takes.
    fn check_hello_key(
        &mut self,
        uuid: Uuid,
        hello: &Hello,
        sender_key: Option<&[u8; 32]>,
    ) -> Option<Option<[u8; 32]>> {
        if self.config.curve_key.is_none() {
            return Some(None);
        }
        let key = hello
            .headers
            .iter()
            .find(|(k, _)| k == PUBLICKEY_HEADER)
            .and_then(|(_, v)| z85::decode_key(v).ok());
        let Some(key) = key else {
            self.stats.keys_mismatched += 1;
            self.trace(|| {
                format!(
                    "{}: HELLO without a valid {PUBLICKEY_HEADER}",
                    uuid_hex(&uuid)
                )
            });
            return None;
        };
        if !self.config.allows(&key) {
            self.stats.keys_refused += 1;
            self.trace(|| format!("{}: HELLO with a key not allowed", uuid_hex(&uuid)));
            return None;
        }
        let beaconed = self
            .peers
            .get(&uuid)
            .filter(|p| !p.ready)
            .and_then(|p| p.curve_key);
        if sender_key.is_some_and(|s| *s != key) || beaconed.is_some_and(|b| b != key) {
            self.stats.keys_mismatched += 1;
            self.trace(|| {
                format!(
                    "{}: HELLO's key is not its connection's or beacon's",
                    uuid_hex(&uuid)
                )
            });
            return None;
        }
        Some(Some(key))
    }

    /// HELLO. Who may ENTER, and when:
    /// - a peer we discovered (beacon, gossip), linked or remembered, is proven by its
    ///   HELLO: our link goes where its beacon came from, and the endpoint its HELLO claims
    ///   is not used;
    /// - a peer introduced by its HELLO alone is linked to the endpoint it claims and sent
    ///   HELLO and PING; it ENTERs when its PING-OK comes back (held until then, counted
    ///   against `max_pending`, dropped at expiry if it never answers);
    /// - a HELLO claiming the endpoint of a peer that said HELLO is a claim: the holder is
    ///   PINGed, the claimant waits unlinked, and the holder keeps its endpoint unless it
    ///   stays silent for [`Timers::probe`]. A HELLO arrives on a connection its sender
    ///   opened, so it proves nothing about the endpoint it names.
    fn on_hello(
        &mut self,
        now: Instant,
        uuid: Uuid,
        sequence: u16,
        mut hello: Hello,
        key: Option<[u8; 32]>,
    ) {
        if self.config.ipv6_zone.is_some() {
            hello.endpoint = local_endpoint(&self.config, &hello.endpoint);
        }
        self.elections_dirty = true;
        if self.peers.get(&uuid).is_some_and(|p| p.said_hello) && self.elections.rehello(uuid) {
            // It forgot us right after our ELECT or LEADER, having sent none: pyre does.
            self.trace(|| format!("{}: drops election messages, left out", uuid_hex(&uuid)));
        }
        if let Some(p) = self.peers.get(&uuid) {
            if p.ready {
                // "A HELLO from a peer that is already ready: the old peer is removed
                // (EXIT) and re-created (ENTER)." The new one proves itself like any
                // peer introduced by HELLO.
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
        let timers = self.config.timers;
        if let Some(peer) = self.peers.get_mut(&uuid) {
            if peer.said_hello {
                // HELLO again before proof: the peer re-created its link to us (a node that
                // held us ready does so on our HELLO). Keep our link and our PING, take
                // the new HELLO: re-linking would make it re-create us again, forever.
                apply_hello(peer, hello, now, &timers);
                peer.held = hello_events(peer);
                peer.held_after_hello = (0, 0);
                self.stats.messages += 1;
                return;
            }
            if peer.must_prove && peer.linked {
                // Learned by gossip or configuration: ENTER once it answers our PING on
                // our link (see `Peer::must_prove`); what it sends meanwhile is held.
                apply_hello(peer, hello, now, &timers);
                peer.held = hello_events(peer);
                peer.held_after_hello = (0, 0);
                self.stats.messages += 1;
                self.trace(|| format!("{}: HELLO, proving our link to it", uuid_hex(&uuid)));
                self.send(&uuid, Body::Ping, Vec::new());
                return;
            }
            // Discovered by us (linked, or remembered and linked now): proven. Our link
            // goes where its beacon came from; the endpoint its HELLO claims is not used.
            // In CURVE mode a HELLO that comes two intervals after we linked the peer
            // says ours was lost: the peer just began to accept us (its allow-list
            // changed), and our link died when its ZAP handler refused the handshake
            // (libzmq does not reconnect after that). Had ours arrived, the peer would
            // have linked us back at once. So the link is made anew: a new DEALER, whose
            // HELLO the peer has not seen.
            let relink = self.config.curve_key.is_some()
                && peer.linked
                && later(peer.linked_at, timers.interval.saturating_mul(2)) <= now;
            apply_hello(peer, hello, now, &timers);
            peer.ready = true;
            let linked = peer.linked;
            let events = hello_events(peer);
            self.pending.retain(|u| *u != uuid);
            self.remembered.retain(|u| *u != uuid);
            self.stats.messages += 1;
            self.trace(|| format!("{}: HELLO, ready", uuid_hex(&uuid)));
            self.out.extend(events.into_iter().map(Output::Event));
            if relink {
                self.trace(|| format!("{}: late HELLO, our link made anew", uuid_hex(&uuid)));
                self.out.push_transmit(Transmit::Disconnect { peer: uuid });
                if let Some(p) = self.peers.get_mut(&uuid) {
                    p.sent_sequence = 0;
                }
                self.link(&uuid);
            } else if !linked {
                self.link(&uuid);
            }
            return;
        }
        // We are about to connect wherever this HELLO points: only to a TCP endpoint, and
        // never to ourselves.
        if !is_tcp_endpoint(&hello.endpoint) {
            self.stats.messages_invalid += 1;
            self.trace(|| format!("drop HELLO with endpoint {:?}", hello.endpoint));
            return;
        }
        if hello.endpoint == self.config.endpoint {
            self.stats.hellos_refused += 1;
            self.trace(|| format!("{}: HELLO claims our endpoint", uuid_hex(&uuid)));
            return;
        }
        if self.statics.iter().any(|s| s.key == uuid) {
            // The key of a static link: no peer may take it.
            self.stats.hellos_refused += 1;
            return;
        }
        if let Some(i) = self
            .statics
            .iter()
            .position(|s| s.linked_at.is_some() && s.endpoint == hello.endpoint)
        {
            // An open static link means no peer holds the endpoint (`tend_statics`).
            self.bind_static(now, i, uuid, hello, key);
            return;
        }
        self.stats.messages += 1;
        // The holder, not another claimant waiting on the same endpoint.
        let holder = self
            .peers
            .values()
            .find(|p| p.endpoint == hello.endpoint && p.claim.is_none())
            .map(|p| (p.uuid, p.said_hello));
        let claim = match holder {
            Some((old, true)) => Some(old),
            Some((old, false)) => {
                // A discovered peer that never said HELLO proves nothing: whoever is at
                // that endpoint will beacon again.
                self.trace(|| format!("{}: endpoint claimed, dropped", uuid_hex(&old)));
                self.remove_peer(&old);
                None
            }
            None => None,
        };
        let mut peer = Peer::new(uuid, hello.endpoint.clone(), now, &timers);
        peer.curve_key = key;
        apply_hello(&mut peer, hello, now, &timers);
        peer.held = hello_events(&peer);
        peer.claim = claim;
        self.peers.insert(uuid, peer);
        match claim {
            None => {
                self.trace(|| format!("{}: HELLO, proving its endpoint", uuid_hex(&uuid)));
                self.admit(now, uuid);
            }
            Some(old) => {
                self.wait(uuid);
                self.trace(|| {
                    format!(
                        "{}: HELLO claims the endpoint of {}, probing it",
                        uuid_hex(&uuid),
                        uuid_hex(&old)
                    )
                });
                let Some(holder) = self.peers.get_mut(&old) else {
                    return;
                };
                if holder.probe.is_none() {
                    holder.probe = Some(later(now, timers.probe()));
                    self.send(&old, Body::Ping, Vec::new());
                }
            }
        }
    }

    /// A peer introduced by HELLO answered on our link: ENTER, then what it held.
    fn prove(&mut self, uuid: &Uuid) {
        let Some(peer) = self.peers.get_mut(uuid) else {
            return;
        };
        peer.ready = true;
        peer.held_after_hello = (0, 0);
        let held = std::mem::take(&mut peer.held);
        self.pending.retain(|u| u != uuid);
        self.trace(|| format!("{}: answered on our link, ready", uuid_hex(uuid)));
        self.out.extend(held.into_iter().map(Output::Event));
    }

    /// `holder` answered after its endpoint was claimed: every claim on it was false.
    fn refuse_claims(&mut self, holder: &Uuid) {
        let claimants: Vec<Uuid> = self
            .peers
            .values()
            .filter(|p| p.claim == Some(*holder))
            .map(|p| p.uuid)
            .collect();
        for c in claimants {
            self.stats.hellos_refused += 1;
            self.trace(|| format!("{}: claim refused, holder answered", uuid_hex(&c)));
            self.remove_peer(&c);
        }
    }

    /// An application command.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) -> Result<(), CommandError> {
        self.now = self.now.max(now);
        if self.stopped {
            return Ok(());
        }
        match cmd {
            Command::Join(group) => {
                check_string("group", &group)?;
                if self.groups.insert(group.clone()) {
                    self.status = self.status.wrapping_add(1);
                    let status = self.status;
                    self.send_to_all(Body::Join {
                        group: group.clone(),
                        status,
                    });
                    // After our JOIN: members hear it before any ELECT of ours.
                    let members = self.election_members(&group);
                    let mut actions = Vec::new();
                    let now = self.now;
                    self.elections.joined(&group, now, &members, &mut actions);
                    self.apply_election(actions);
                }
            }
            Command::Leave(group) => {
                check_string("group", &group)?;
                if self.groups.remove(&group) {
                    self.status = self.status.wrapping_add(1);
                    let status = self.status;
                    self.elections.left(&group);
                    self.send_to_all(Body::Leave { group, status });
                }
            }
            Command::Contest(group) => {
                check_string("group", &group)?;
                let members = self.election_members(&group);
                let mut actions = Vec::new();
                let joined = self.groups.contains(&group);
                let now = self.now;
                self.elections
                    .contest(&group, joined, now, &members, &mut actions);
                self.apply_election(actions);
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
                self.out.push_transmit(Transmit::SendGroup {
                    header,
                    members,
                    content,
                });
            }
        }
        self.sync_elections();
        Ok(())
    }

    /// The driver could not queue a message for `peer` (its send queue is full). The
    /// reference disconnects such a peer; so do we, and the application sees EXIT.
    pub fn handle_send_failed(&mut self, now: Instant, peer: &Uuid) {
        self.now = self.now.max(now);
        self.stats.send_failures += 1;
        if self.peers.contains_key(peer) {
            self.trace(|| format!("{}: send queue full, removing", uuid_hex(peer)));
            self.remove_peer(peer);
        }
        self.fill_links();
    }

    /// Time passed: send beacons and PINGs, report EVASIVE and SILENT, expire peers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.on_timeout(now);
        self.fill_links();
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        for group in self.elections.due(now) {
            // A contester's wave that waited for the group's election traffic to settle.
            let members = self.election_members(&group);
            let mut actions = Vec::new();
            self.elections
                .handle_timeout(&group, now, &members, &mut actions);
            self.apply_election(actions);
        }
        if self.config.beacon_port != 0 && now >= self.next_beacon {
            self.out.push_transmit(Transmit::Beacon(
                self.config.beacon(self.config.beacon_port),
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
            // Removing one peer can remove others (claims on its endpoint).
            let Some(peer) = self.peers.get_mut(&uuid) else {
                continue;
            };
            if peer.probe.is_some_and(|p| now >= p) {
                self.trace(|| format!("{}: silent after a claim on its endpoint", uuid_hex(&uuid)));
                self.remove_peer(&uuid);
                continue;
            }
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
                self.out.push_event(Event::Evasive {
                    peer: uuid,
                    name: name.clone(),
                });
            }
            let Some(peer) = self.peers.get_mut(&uuid) else {
                continue;
            };
            if now >= peer.silent_at(&timers) && !peer.silent_reported {
                peer.silent_reported = true;
                self.out.push_event(Event::Silent { peer: uuid, name });
            }
            let Some(peer) = self.peers.get_mut(&uuid) else {
                continue;
            };
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
    pub fn handle_stop_request(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.stopped || self.draining {
            return;
        }
        self.draining = true;
        self.ping_ready_peers();
    }

    /// PINGs every ready peer: its answer tells that it read all we sent before.
    fn ping_ready_peers(&mut self) {
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
        self.draining
            && self
                .peers
                .values()
                .all(|p| !p.ready || p.pings_outstanding == 0)
    }

    /// The application wants a round trip to `peer` measured: PING it now. Returns the
    /// ticket: once the peer's [`Peer::pongs`] reach it, the PING was answered and
    /// [`Peer::rtt`] tells how long it took (or a later PING's, if several were out).
    pub fn handle_ping_request(&mut self, now: Instant, peer: &Uuid) -> Result<u64, CommandError> {
        self.now = self.now.max(now);
        match self.peers.get(peer) {
            Some(p) if p.ready && p.linked => {}
            _ => return Err(CommandError::UnknownPeer(*peer)),
        }
        self.send(peer, Body::Ping, Vec::new());
        Ok(self.peers.get(peer).map_or(0, |p| p.pings_sent))
    }

    /// The application wants to know when every ready peer has taken what we sent it so
    /// far: PING each one now. A peer answers a PING only after reading everything we
    /// sent before it (one TCP stream, read in order), so once each has answered this
    /// PING (or left) [`NodeState::is_flushed`] says so for the returned ticket. Each
    /// request has its own PINGs: what was sent before it is covered, whatever other
    /// flushes or keep-alive PINGs are under way.
    pub fn handle_flush_request(&mut self, now: Instant) -> FlushTicket {
        self.now = self.now.max(now);
        if self.stopped {
            return FlushTicket::default();
        }
        self.ping_ready_peers();
        FlushTicket(
            self.peers
                .values()
                .filter(|p| p.ready)
                .map(|p| (p.uuid, p.pings_sent))
                .collect(),
        )
    }

    /// True once every peer in `ticket` answered the PING of its flush request, or left
    /// (a peer that left and came back with the same UUID counts as left).
    pub fn is_flushed(&self, ticket: &FlushTicket) -> bool {
        ticket
            .0
            .iter()
            .all(|(uuid, sent)| match self.peers.get(uuid) {
                Some(p) if p.ready && p.pings_sent >= *sent => p.pongs >= *sent,
                _ => true,
            })
    }

    /// Stop: forget every peer (no EXIT events: the node itself is going): disconnect
    /// each link, then the port-0 beacon that tells peers we left, then STOP. The driver
    /// sends that beacon only once the links are closed and flushed, so it cannot
    /// overtake our last messages.
    pub fn handle_stop(&mut self, _now: Instant) {
        if !self.stopped {
            if self.config.beacon_port == 0 {
                // No beacon, so no port-0 goodbye beacon: say GOODBYE (id 10) on each link,
                // as a Zyre node in gossip mode does, so peers that act on it (ours, Zyre
                // in gossip mode; pyre drops the sender, as good here) see us leave at
                // once rather than at their expiry. Zyre nodes beaconing ignore it.
                let ready: Vec<Uuid> = self
                    .peers
                    .values()
                    .filter(|p| p.ready && p.linked)
                    .map(|p| p.uuid)
                    .collect();
                for uuid in ready {
                    self.send(&uuid, Body::Goodbye, Vec::new());
                }
            }
            self.stopped = true;
            let linked: Vec<Uuid> = self
                .peers
                .values()
                .filter(|p| p.linked)
                .map(|p| p.uuid)
                .collect();
            self.peers.clear();
            for uuid in linked {
                self.out.push_transmit(Transmit::Disconnect { peer: uuid });
            }
            for s in std::mem::take(&mut self.statics) {
                if s.linked_at.is_some() {
                    self.out.push_transmit(Transmit::Disconnect { peer: s.key });
                }
            }
            self.pending.clear();
            self.remembered.clear();
            self.waiting.clear();
            self.elections = Elections::new(self.config.uuid);
            self.out
                .push_transmit(Transmit::Beacon(self.config.beacon(0)));
            self.out.push_event(Event::Stop);
        }
    }

    // ---- outputs -----------------------------------------------------------------------

    /// The next thing the state machine decided, in the order it decided them: a
    /// transmit, an event for the application or a log line. Order matters across
    /// kinds: a peer's ENTER comes before the events it caused, a port-0 beacon after
    /// the disconnects.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`NodeState::handle_timeout`] must be called next (None once stopped).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let timers = &self.config.timers;
        let statics = self.statics.iter().filter_map(|s| match s.linked_at {
            Some(at) => Some(later(at, timers.evasive)),
            None if s.endpoint != self.config.endpoint
                && !self.peers.values().any(|p| p.endpoint == s.endpoint) =>
            {
                Some(s.next_try)
            }
            None => None,
        });
        let peers = self
            .peers
            .values()
            .map(|p| p.next_deadline(timers))
            .chain(statics)
            .chain(self.elections.poll_timeout())
            .min();
        if self.config.beacon_port == 0 {
            peers
        } else {
            Some(peers.map_or(self.next_beacon, |p| p.min(self.next_beacon)))
        }
    }

    // ---- internals ---------------------------------------------------------------------

    /// Links a peer introduced by HELLO (HELLO and PING, for its proof) within
    /// `max_pending` links to unproven peers, in place of a stale link if need be, else it
    /// waits for a link. A peer we linked recently is never pushed out for it: it may be
    /// genuine and hold our HELLO, and linking it again would make it re-create us (EXIT
    /// and ENTER on its side).
    fn admit(&mut self, now: Instant, uuid: Uuid) {
        if self.pending.len() >= self.config.max_pending.max(1) && !self.evict_stale(now) {
            self.wait(uuid);
            return;
        }
        self.pending.push_back(uuid);
        self.link(&uuid);
    }

    /// A peer that said HELLO waits without a link: for a link to free up, or behind a
    /// claim on its endpoint. At most `max_pending` wait; the oldest goes first.
    fn wait(&mut self, uuid: Uuid) {
        while self.waiting.len() >= self.config.max_pending.max(1) {
            let Some(old) = self.waiting.pop_front() else {
                break;
            };
            self.stats.pending_evicted += 1;
            self.trace(|| format!("{}: evicted (too many waiting peers)", uuid_hex(&old)));
            self.remove_peer(&old);
        }
        self.waiting.push_back(uuid);
    }

    /// A discovered peer: linked (DEALER, HELLO) if fewer than `max_pending` links are
    /// unproven, else remembered without a socket, else not taken. A beacon never pushes
    /// out another peer: during a flood the table holds still instead of opening and
    /// closing a DEALER per fake beacon, and evicting a genuine peer we said HELLO to would
    /// make it re-create us (EXIT and ENTER on its side) when we link again.
    ///
    /// A peer whose beacons keep coming gets a link even then, in place of a stale one
    /// (see [`NodeState::evict_stale`]): a genuine node that is flooded too gets our HELLO,
    /// and enters, during a flood of one-off fake beacons.
    fn require_peer(
        &mut self,
        now: Instant,
        uuid: Uuid,
        endpoint: &str,
        key: Option<[u8; 32]>,
        repeated: bool,
    ) {
        let max = self.config.max_pending.max(1);
        let linked = self.pending.len() < max || (repeated && self.evict_stale(now));
        if !linked && self.remembered.len() >= max * REMEMBERED_PER_LINK {
            self.stats.pending_evicted += 1;
            self.trace(|| format!("{}: not held (too many pending peers)", uuid_hex(&uuid)));
            return;
        }
        let mut peer = Peer::new(uuid, endpoint.to_string(), now, &self.config.timers);
        peer.curve_key = key;
        self.peers.insert(uuid, peer);
        if linked {
            self.pending.push_back(uuid);
            self.trace(|| format!("{}: discovered at {endpoint}, HELLO sent", uuid_hex(&uuid)));
            self.link(&uuid);
        } else {
            self.remembered.push_back(uuid);
            self.trace(|| format!("{}: discovered at {endpoint}, no link yet", uuid_hex(&uuid)));
        }
    }

    /// A remembered peer beaconed again: link it now if a link is free or stale.
    fn promote(&mut self, now: Instant, uuid: Uuid) {
        if self.pending.len() >= self.config.max_pending.max(1) && !self.evict_stale(now) {
            return;
        }
        self.remembered.retain(|u| *u != uuid);
        self.pending.push_back(uuid);
        self.link(&uuid);
    }

    /// Removes the oldest stale link to an unproven peer. Stale: it said HELLO and has
    /// not answered our PING for an interval (a genuine peer answers within a round
    /// trip); or it has not said HELLO since we linked it, and has not beaconed again for
    /// two intervals (a node beacons every interval; a flood's fakes come once), or at
    /// all within the evasive timeout. A genuine peer hears our beacon, or gets our HELLO,
    /// and says HELLO within an interval; one that is merely slow keeps beaconing, and
    /// evicting it would make it re-create us when we link again. False if there is none.
    fn evict_stale(&mut self, now: Instant) -> bool {
        let t = self.config.timers;
        let stale = self.pending.iter().copied().find(|u| {
            self.peers.get(u).is_some_and(|p| {
                p.linked
                    && !p.ready
                    && if p.said_hello {
                        later(p.linked_at, t.interval) <= now
                    } else {
                        later(p.linked_at, t.evasive) <= now
                            || (!p.beacon_again
                                && later(p.linked_at, t.interval.saturating_mul(2)) <= now)
                    }
            })
        });
        let Some(victim) = stale else {
            return false;
        };
        self.stats.pending_evicted += 1;
        self.trace(|| format!("{}: evicted (stale link)", uuid_hex(&victim)));
        self.remove_peer(&victim);
        true
    }

    /// Links waiting peers that said HELLO (in place of a stale link if need be), then
    /// remembered beacon-only ones, oldest first, while fewer than `max_pending` links are
    /// unproven. Runs after every input, never inside one: a removal that freed a link
    /// must not be refilled in the middle of making room.
    fn fill_links(&mut self) {
        if self.stopped {
            return;
        }
        let now = self.now;
        while let Some(uuid) = self
            .waiting
            .iter()
            .copied()
            .find(|u| self.peers.get(u).is_some_and(|p| p.claim.is_none()))
        {
            if self.pending.len() >= self.config.max_pending.max(1) && !self.evict_stale(now) {
                break;
            }
            self.waiting.retain(|u| *u != uuid);
            self.pending.push_back(uuid);
            self.link(&uuid);
        }
        while self.pending.len() < self.config.max_pending.max(1) {
            let Some(uuid) = self.remembered.pop_front() else {
                break;
            };
            if self.peers.contains_key(&uuid) {
                self.pending.push_back(uuid);
                self.link(&uuid);
            }
        }
        self.tend_statics();
        self.sync_elections();
    }

    /// Opens our DEALER to the peer and says HELLO; a peer that said HELLO first is also
    /// PINGed, and its PING-OK proves it.
    fn link(&mut self, uuid: &Uuid) {
        let now = self.now;
        let Some(peer) = self.peers.get_mut(uuid) else {
            return;
        };
        peer.linked = true;
        peer.linked_at = now;
        self.elections_dirty = true;
        let prove = peer.said_hello && !peer.ready;
        self.out.push_transmit(Transmit::Connect {
            peer: *uuid,
            endpoint: peer.endpoint.clone(),
            curve_key: peer.curve_key,
        });
        let hello = Body::Hello(self.our_hello());
        self.send(uuid, hello, Vec::new());
        if prove {
            self.send(uuid, Body::Ping, Vec::new());
        }
    }

    /// Moves the link of a peer that said HELLO but has not answered our PING to where
    /// its beacon came from. Its HELLO named another endpoint (`--advertise`: an address
    /// for those beyond the subnet, often not reachable from inside it, as behind NAT);
    /// on the subnet the beacon's source is what works, and is what a peer that heard the
    /// beacon first uses, so either start order ends on the same endpoint. The old link
    /// never carried our PING's answer, so nothing on it was taken: the new one starts a
    /// new sequence with HELLO.
    fn relink(&mut self, uuid: Uuid, endpoint: String) {
        let Some(peer) = self.peers.get_mut(&uuid) else {
            return;
        };
        let old = std::mem::replace(&mut peer.endpoint, endpoint);
        peer.sent_sequence = 0;
        self.out.push_transmit(Transmit::Disconnect { peer: uuid });
        let new = self.peers[&uuid].endpoint.clone();
        self.trace(|| format!("{}: heard its beacon, link {old} -> {new}", uuid_hex(&uuid)));
        self.link(&uuid);
    }

    /// Removes a peer; EXIT only if the application saw it ENTER. Peers whose HELLO
    /// claimed its endpoint wait for this: the latest claimant is linked (and must still
    /// prove itself), the others are dropped.
    fn remove_peer(&mut self, uuid: &Uuid) {
        let Some(peer) = self.peers.remove(uuid) else {
            return;
        };
        self.elections_dirty = true;
        self.elections.forget(uuid);
        if peer.ready {
            self.out.push_event(Event::Exit {
                peer: peer.uuid,
                name: peer.name,
            });
        } else {
            self.pending.retain(|u| u != uuid);
            self.remembered.retain(|u| u != uuid);
            self.waiting.retain(|u| u != uuid);
        }
        if peer.linked {
            self.out.push_transmit(Transmit::Disconnect { peer: *uuid });
        }
        let mut claimants: Vec<(Instant, Uuid)> = self
            .peers
            .values()
            .filter(|p| p.claim == Some(*uuid))
            .map(|p| (p.created, p.uuid))
            .collect();
        claimants.sort();
        let Some((_, heir)) = claimants.pop() else {
            return;
        };
        for (_, other) in claimants {
            self.stats.hellos_refused += 1;
            self.remove_peer(&other);
        }
        if let Some(p) = self.peers.get_mut(&heir) {
            p.claim = None;
        }
        self.waiting.retain(|u| *u != heir);
        self.pending.push_back(heir);
        self.trace(|| {
            format!(
                "{} takes the endpoint of {}",
                uuid_hex(&heir),
                uuid_hex(uuid)
            )
        });
        self.link(&heir);
    }

    fn send(&mut self, uuid: &Uuid, body: Body, content: Content) {
        if !self.peers.get(uuid).is_some_and(|p| p.linked) {
            return;
        }
        if body == Body::Ping {
            let now = self.now;
            if let Some(peer) = self.peers.get_mut(uuid) {
                peer.pings_outstanding += 1;
                peer.pings_sent += 1;
                peer.pings_sent_at.push_back(now);
            }
        }
        let Some(header) = self.encode_for(uuid, &mut Message::new(0, body)) else {
            return;
        };
        let mut frames = Vec::with_capacity(1 + content.len());
        frames.push(header);
        frames.extend(content);
        self.out.push_transmit(Transmit::Send {
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

    /// The members of `group` for its election: peers that said HELLO, are linked (we
    /// can answer them) and are in the group, less those that drop election messages.
    /// Ordered, so that a run is the same every time.
    fn election_members(&self, group: &str) -> BTreeSet<Uuid> {
        self.peers
            .values()
            .filter(|p| p.said_hello && p.linked && p.groups.contains(group))
            .map(|p| p.uuid)
            .filter(|u| !self.elections.is_non_electing(u))
            .collect()
    }

    /// ELECT or LEADER from `uuid` about `group`: taken part in only in our groups (Zyre
    /// takes part in any group; a member that sends us one for a group we are not in
    /// has not seen our LEAVE yet).
    fn on_election(
        &mut self,
        uuid: Uuid,
        group: String,
        handle: impl FnOnce(&mut Elections, &str, Instant, &BTreeSet<Uuid>, &mut Vec<Action>),
    ) {
        if !self.groups.contains(&group) {
            self.trace(|| format!("{}: election in {group:?}, not ours", uuid_hex(&uuid)));
            return;
        }
        let members = self.election_members(&group);
        let mut actions = Vec::new();
        handle(
            &mut self.elections,
            &group,
            self.now,
            &members,
            &mut actions,
        );
        self.apply_election(actions);
    }

    /// Membership may have changed: tell the elections that track a group.
    fn sync_elections(&mut self) {
        if !std::mem::take(&mut self.elections_dirty) || self.stopped {
            return;
        }
        let now = self.now;
        for group in self.elections.tracked() {
            let members = self.election_members(&group);
            let mut actions = Vec::new();
            self.elections.sync(&group, now, &members, &mut actions);
            self.apply_election(actions);
        }
    }

    /// Carries out what an election decided: its messages, then its LEADER event (for us,
    /// or for a peer we know; held like its other events while it is unproven).
    fn apply_election(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, body } => {
                    self.trace(|| match &body {
                        Body::Elect {
                            group,
                            challenger_id,
                        } => format!("ELECT {group} {challenger_id} to {}", uuid_hex(&to)),
                        Body::Leader { group, leader_id } => {
                            format!("LEADER {group} {leader_id} to {}", uuid_hex(&to))
                        }
                        other => format!("{} to {}", other.name(), uuid_hex(&to)),
                    });
                    self.send(&to, body, Vec::new());
                }
                Action::Leader { group, leader } if leader == self.config.uuid => {
                    self.trace(|| format!("{group}: we lead"));
                    let name = Arc::from(self.config.name.as_str());
                    self.out.push_event(Event::Leader {
                        peer: leader,
                        name,
                        group,
                    });
                }
                Action::Leader { group, leader } => {
                    let Some(name) = self.peers.get(&leader).map(|p| p.name.clone()) else {
                        self.trace(|| format!("{group}: leader {} unknown", uuid_hex(&leader)));
                        continue;
                    };
                    self.trace(|| format!("{group}: {} leads", uuid_hex(&leader)));
                    self.emit(
                        leader,
                        Event::Leader {
                            peer: leader,
                            name,
                            group,
                        },
                    );
                }
            }
        }
    }

    fn send_to_all(&mut self, body: Body) {
        let uuids: Vec<Uuid> = self.peers.keys().copied().collect();
        for uuid in uuids {
            self.send(&uuid, body.clone(), Vec::new());
        }
        // An open static link said HELLO with our groups then: it hears the change too.
        for i in 0..self.statics.len() {
            if self.statics[i].linked_at.is_some() {
                self.send_static(i, body.clone());
            }
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

/// The host part of `tcp://host:port`, as [`endpoint_host`] writes it.
fn endpoint_host_of(endpoint: &str) -> Option<&str> {
    endpoint
        .strip_prefix("tcp://")
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(host, _)| host)
}

/// Takes in a HELLO: what the peer says about itself, and the start of its sequence.
fn apply_hello(peer: &mut Peer, hello: Hello, now: Instant, timers: &Timers) {
    peer.name = Arc::from(hello.name);
    peer.headers = hello.headers;
    peer.status = hello.status;
    peer.groups = hello.groups.into_iter().collect();
    peer.want_sequence = 2;
    peer.said_hello = true;
    peer.refresh(now, timers);
}

/// ENTER, then a JOIN per group its HELLO listed.
fn hello_events(peer: &Peer) -> Vec<Event> {
    let enter = Event::Enter {
        peer: peer.uuid,
        name: peer.name.clone(),
        headers: peer.headers.iter().cloned().collect::<BTreeMap<_, _>>(),
        endpoint: peer.endpoint.clone(),
    };
    std::iter::once(enter)
        .chain(peer.groups.iter().map(|g| Event::Join {
            peer: peer.uuid,
            name: peer.name.clone(),
            group: g.clone(),
        }))
        .collect()
}

/// The host part of the endpoint of a peer whose beacon came from `from`: in IPv6 mode
/// (`zone`) as [`endpoint::host`] writes it, else as before IPv6 mode existed.
fn source_host(zone: Option<&str>, from: IpAddr) -> String {
    match zone {
        Some(zone) => endpoint::host(from, zone),
        None => endpoint_host(from),
    }
}

/// A peer's `endpoint` in the form this node keeps (see [`Config::ipv6_zone`]).
fn local_endpoint(config: &Config, endpoint: &str) -> String {
    match &config.ipv6_zone {
        Some(zone) => endpoint::local(endpoint, zone),
        None => endpoint.to_string(),
    }
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
