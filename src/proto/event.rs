//! What the application hears from its node.

use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Content of a whisper or shout: zero or more binary frames, delivered exactly as sent.
pub type Content = Vec<Vec<u8>>;

/// One event for the application, in the order the node saw it happen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer said HELLO and is proven: we discovered it ourselves (beacon, gossip), or it
    /// answered our PING at the endpoint its HELLO claims. Now known and ready.
    Enter {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
        /// Its headers.
        headers: BTreeMap<String, String>,
        /// Its mailbox endpoint.
        endpoint: String,
    },
    /// A peer left or was removed (port-0 beacon, expiry, protocol error, restart).
    Exit {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
    },
    /// A peer joined a group.
    Join {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
        /// The group.
        group: String,
    },
    /// A peer left a group.
    Leave {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
        /// The group.
        group: String,
    },
    /// A peer sent us content.
    Whisper {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
        /// The frames it sent.
        content: Content,
    },
    /// A peer sent content to a group we are in.
    Shout {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
        /// The group.
        group: String,
        /// The frames it sent.
        content: Content,
    },
    /// A peer has sent nothing for the evasive timeout although we pinged it.
    Evasive {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
    },
    /// A peer has stayed quiet past the silent timeout; it expires unless it speaks.
    Silent {
        /// The peer's UUID.
        peer: Uuid,
        /// Its name, shared with every other event about this peer (no copy per event).
        name: Arc<str>,
    },
    /// A group's election is over (Zyre's draft LEADER event): `peer` leads `group`. It
    /// may be this node (then `peer` is our UUID and `name` our name). See
    /// `Node::contest`.
    Leader {
        /// The leader's UUID.
        peer: Uuid,
        /// Its name.
        name: Arc<str>,
        /// The group.
        group: String,
    },
    /// This node stopped; no event follows.
    Stop,
}

impl Event {
    /// The event's lower-case type name (`enter`, `exit`, ...), as the NDJSON output uses.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Enter { .. } => "enter",
            Event::Exit { .. } => "exit",
            Event::Join { .. } => "join",
            Event::Leave { .. } => "leave",
            Event::Whisper { .. } => "whisper",
            Event::Shout { .. } => "shout",
            Event::Evasive { .. } => "evasive",
            Event::Silent { .. } => "silent",
            Event::Leader { .. } => "leader",
            Event::Stop => "stop",
        }
    }

    /// The peer the event is about (none for STOP).
    pub fn peer(&self) -> Option<Uuid> {
        match self {
            Event::Enter { peer, .. }
            | Event::Exit { peer, .. }
            | Event::Join { peer, .. }
            | Event::Leave { peer, .. }
            | Event::Whisper { peer, .. }
            | Event::Shout { peer, .. }
            | Event::Evasive { peer, .. }
            | Event::Silent { peer, .. }
            | Event::Leader { peer, .. } => Some(*peer),
            Event::Stop => None,
        }
    }

    /// The peer's name (empty for STOP).
    pub fn name(&self) -> &str {
        match self {
            Event::Enter { name, .. }
            | Event::Exit { name, .. }
            | Event::Join { name, .. }
            | Event::Leave { name, .. }
            | Event::Whisper { name, .. }
            | Event::Shout { name, .. }
            | Event::Evasive { name, .. }
            | Event::Silent { name, .. }
            | Event::Leader { name, .. } => name,
            Event::Stop => "",
        }
    }

    /// The group, for JOIN, LEAVE, SHOUT and LEADER.
    pub fn group(&self) -> Option<&str> {
        match self {
            Event::Join { group, .. }
            | Event::Leave { group, .. }
            | Event::Shout { group, .. }
            | Event::Leader { group, .. } => Some(group),
            _ => None,
        }
    }

    /// The content, for WHISPER and SHOUT.
    pub fn content(&self) -> Option<&Content> {
        match self {
            Event::Whisper { content, .. } | Event::Shout { content, .. } => Some(content),
            _ => None,
        }
    }
}

/// A UUID as Zyre prints it: 32 upper-case hex digits.
pub fn uuid_hex(uuid: &Uuid) -> String {
    let mut buf = [0u8; 32];
    uuid.simple().encode_upper(&mut buf).to_string()
}
