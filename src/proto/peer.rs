//! What a node knows about one remote peer: identity, the link's two sequence counters,
//! the peer's groups and status, and its liveness timers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

use super::node::Timers;

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
    /// The groups it is in (from HELLO, JOIN, LEAVE).
    pub groups: BTreeSet<String>,
    /// Its status byte: every JOIN/LEAVE it sends carries this + 1.
    pub status: u8,
    /// True once its HELLO arrived (the application saw ENTER).
    pub ready: bool,
    /// Sequence number of the last message we sent it (HELLO carries 1).
    pub(crate) sent_sequence: u16,
    /// Sequence number the next message from it must carry.
    pub(crate) want_sequence: u16,
    /// When it was discovered.
    pub created: Instant,
    /// When we last received a valid message from it.
    pub last_message: Instant,
    /// When we send the next PING if it stays quiet.
    pub(crate) ping_at: Instant,
    pub(crate) evasive_reported: bool,
    pub(crate) silent_reported: bool,
    /// PINGs sent and not yet answered. Links are ordered, so when this is back to 0 the
    /// peer has processed everything we sent before the last PING.
    pub(crate) pings_outstanding: u32,
}

impl Peer {
    pub(crate) fn new(uuid: Uuid, endpoint: String, now: Instant, timers: &Timers) -> Self {
        Peer {
            uuid,
            endpoint,
            name: Arc::from(""),
            headers: Vec::new(),
            groups: BTreeSet::new(),
            status: 0,
            ready: false,
            sent_sequence: 0,
            want_sequence: 1,
            created: now,
            last_message: now,
            ping_at: now + timers.ping_interval(),
            evasive_reported: false,
            silent_reported: false,
            pings_outstanding: 0,
        }
    }

    /// The sequence number for the next message we send (u16, wrapping 65535 -> 0 like Zyre).
    pub(crate) fn next_sequence(&mut self) -> u16 {
        self.sent_sequence = self.sent_sequence.wrapping_add(1);
        self.sent_sequence
    }

    /// Any valid message proves the peer alive: push every timer back.
    pub(crate) fn refresh(&mut self, now: Instant, timers: &Timers) {
        self.last_message = now;
        self.ping_at = now + timers.ping_interval();
        self.evasive_reported = false;
        self.silent_reported = false;
    }

    pub(crate) fn evasive_at(&self, t: &Timers) -> Instant {
        self.last_message + t.evasive
    }

    pub(crate) fn silent_at(&self, t: &Timers) -> Instant {
        self.last_message + t.silent()
    }

    pub(crate) fn expired_at(&self, t: &Timers) -> Instant {
        self.last_message + t.expired
    }

    /// The earliest instant at which this peer's timers need attention.
    pub(crate) fn next_deadline(&self, t: &Timers) -> Instant {
        let mut d = self.expired_at(t);
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

    /// The sequence number the next message from this peer must carry.
    pub fn expected_sequence(&self) -> u16 {
        self.want_sequence
    }
}
