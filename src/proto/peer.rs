//! What a node knows about one remote peer: identity, the link's two sequence counters,
//! the peer's groups and status, and its liveness timers.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::event::Event;
use super::node::{later, Timers};

/// One remote peer, from the moment it is discovered (pending) until it is removed.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's UUID.
    pub uuid: Uuid,
    /// Its mailbox endpoint, `tcp://ip:port`.
    pub endpoint: String,
    /// Its name, from HELLO (empty until then); events share it.
    pub name: Arc<str>,
    /// Its headers, from HELLO.
    pub headers: Vec<(String, String)>,
    /// Its CURVE public key (CURVE mode only): from its beacon, or from the HELLO that
    /// introduced it. Our DEALER to it uses it as the server key.
    pub curve_key: Option<[u8; 32]>,
    /// The groups it is in (from HELLO, JOIN, LEAVE).
    pub groups: BTreeSet<String>,
    /// Its status byte: every JOIN/LEAVE it sends carries this + 1.
    pub status: u8,
    /// True once the application saw ENTER: its HELLO arrived and it is proven (see
    /// [`NodeState`](super::node::NodeState) on proof).
    pub ready: bool,
    /// Its HELLO arrived: from here on its sequence numbers are checked. A peer can say
    /// HELLO and still wait for proof; its events are then held.
    pub(crate) said_hello: bool,
    /// We hold a DEALER to its endpoint (not while it waits behind a claim on its
    /// endpoint, or is remembered from a beacon while links were scarce).
    pub(crate) linked: bool,
    /// When we linked it.
    pub(crate) linked_at: Instant,
    /// It beaconed again after we linked it (before its HELLO): a live node, likely.
    pub(crate) beacon_again: bool,
    /// Learned by gossip or configuration, not by its beacon on our subnet: its HELLO on
    /// its own link does not show that ours reaches it (behind NAT it may not), so it
    /// ENTERs only once it answered a PING on our link, as a peer introduced by HELLO.
    pub(crate) must_prove: bool,
    /// Events of a peer that said HELLO but is not proven yet, ENTER first; the
    /// application gets them once it is proven, and never if it is not.
    pub(crate) held: Vec<Event>,
    /// Events and content bytes held since its HELLO (bounded, see `MAX_HELD_*`).
    pub(crate) held_after_hello: (usize, usize),
    /// The peer whose endpoint this one's HELLO claimed: it waits, unlinked, until that
    /// peer fails our PING (then it is linked and must prove itself) or answers (then it
    /// is dropped).
    pub(crate) claim: Option<Uuid>,
    /// Another peer's HELLO claimed this one's endpoint: unless this peer sends a valid
    /// message by then, it is removed at this instant.
    pub(crate) probe: Option<Instant>,
    /// Sequence number of the last message we sent it (HELLO carries 1).
    pub(crate) sent_sequence: u16,
    /// Sequence number the next message from it must carry.
    pub(crate) want_sequence: u16,
    /// When it was discovered.
    pub created: Instant,
    /// When we last received a valid message from it (the link is alive).
    pub last_message: Instant,
    /// When we last heard from it at all: a message, or a beacon once it is ready (the
    /// node is alive). EVASIVE, SILENT and expiry count from here; a link that carries
    /// nothing for twice the expired timeout expires the peer too.
    pub last_heard: Instant,
    /// When we send the next PING if it stays quiet.
    pub(crate) ping_at: Instant,
    pub(crate) evasive_reported: bool,
    pub(crate) silent_reported: bool,
    /// PINGs sent and not yet answered. Links are ordered, so when this is back to 0 the
    /// peer has processed everything we sent before the last PING.
    pub(crate) pings_outstanding: u32,
    /// When each outstanding PING went out, oldest first: PING-OKs come back in order.
    pub(crate) pings_sent_at: VecDeque<Instant>,
    /// PINGs sent and PING-OKs received over the link's life (see
    /// `NodeState::handle_ping_request`).
    pub(crate) pings_sent: u64,
    pub(crate) pongs: u64,
    /// The round trip of the last PING answered: from our sending it to our reading its
    /// PING-OK (queued messages ahead of either count too).
    pub rtt: Option<Duration>,
}

impl Peer {
    pub(crate) fn new(uuid: Uuid, endpoint: String, now: Instant, timers: &Timers) -> Self {
        Peer {
            uuid,
            endpoint,
            name: Arc::from(""),
            headers: Vec::new(),
            curve_key: None,
            groups: BTreeSet::new(),
            status: 0,
            ready: false,
            said_hello: false,
            linked: false,
            linked_at: now,
            beacon_again: false,
            must_prove: false,
            held: Vec::new(),
            held_after_hello: (0, 0),
            claim: None,
            probe: None,
            sent_sequence: 0,
            want_sequence: 1,
            created: now,
            last_message: now,
            last_heard: now,
            ping_at: later(now, timers.ping_interval()),
            evasive_reported: false,
            silent_reported: false,
            pings_outstanding: 0,
            pings_sent_at: VecDeque::new(),
            pings_sent: 0,
            pongs: 0,
            rtt: None,
        }
    }

    /// The sequence number for the next message we send (u16, wrapping 65535 -> 0 like Zyre).
    pub(crate) fn next_sequence(&mut self) -> u16 {
        self.sent_sequence = self.sent_sequence.wrapping_add(1);
        self.sent_sequence
    }

    /// Any valid message proves the peer and the link alive: push every timer back.
    pub(crate) fn refresh(&mut self, now: Instant, timers: &Timers) {
        self.last_message = now;
        self.last_heard = now;
        self.ping_at = later(now, timers.ping_interval());
        self.evasive_reported = false;
        self.silent_reported = false;
    }

    /// Our link to the peer drained (see `NodeState::handle_link_progress`): the peer is
    /// alive and reading. Like [`Peer::refresh`], but the keep-alive PING is never moved
    /// earlier (the driver planned its wake-up for it) and the peer's own sequence is
    /// not involved.
    pub(crate) fn link_moved(&mut self, now: Instant, timers: &Timers) {
        self.last_message = self.last_message.max(now);
        self.last_heard = self.last_heard.max(now);
        self.ping_at = self.ping_at.max(later(now, timers.ping_interval()));
        self.evasive_reported = false;
        self.silent_reported = false;
    }

    /// A beacon from a ready peer proves the node alive (as in the reference), though not
    /// our link to it: it puts off EVASIVE, SILENT, expiry and the keep-alive PING. The
    /// link is still PINGed once it has carried nothing for
    /// [`Timers::link_ping_interval`] (a PING already sent is not repeated before its own
    /// interval), and expires the peer after twice the expired timeout.
    pub(crate) fn heard_beacon(&mut self, now: Instant, timers: &Timers) {
        self.last_heard = now;
        let quiet = later(now, timers.ping_interval());
        let link = later(self.last_message, timers.link_ping_interval());
        self.ping_at = self.ping_at.max(quiet.min(link));
        self.evasive_reported = false;
        self.silent_reported = false;
    }

    pub(crate) fn evasive_at(&self, t: &Timers) -> Instant {
        later(self.last_heard, t.evasive)
    }

    pub(crate) fn silent_at(&self, t: &Timers) -> Instant {
        later(self.last_heard, t.silent())
    }

    /// The last sign of life plus the expired timeout, or a link silent for twice that.
    /// A killed peer stops both at once and its PINGs keep `last_message` within a link
    /// ping interval (expired - evasive) of the end, so the link's limit is never the
    /// earlier one then: EXIT still comes after EVASIVE and SILENT.
    pub(crate) fn expired_at(&self, t: &Timers) -> Instant {
        later(self.last_heard, t.expired).min(later(self.last_message, t.expired.saturating_mul(2)))
    }

    /// The earliest instant at which this peer's timers need attention.
    pub(crate) fn next_deadline(&self, t: &Timers) -> Instant {
        let mut d = self.expired_at(t);
        if let Some(probe) = self.probe {
            d = d.min(probe);
        }
        if self.ready {
            d = d.min(self.ping_at);
            if !self.evasive_reported {
                d = d.min(self.evasive_at(t));
            }
            if !self.silent_reported {
                d = d.min(self.silent_at(t));
            }
        }
        d
    }

    /// PING-OKs received from this peer so far (compare with the ticket of
    /// `NodeState::handle_ping_request`).
    pub fn pongs(&self) -> u64 {
        self.pongs
    }

    /// The sequence number the next message from this peer must carry.
    pub fn expected_sequence(&self) -> u16 {
        self.want_sequence
    }

    /// True while we hold a DEALER to it (a peer waiting behind a claim on its endpoint,
    /// or remembered from a beacon while links were scarce, has none).
    pub fn is_linked(&self) -> bool {
        self.linked
    }
}
