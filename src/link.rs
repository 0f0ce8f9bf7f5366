//! The way to one peer: its DEALER socket, and the messages that found its queue full.
//!
//! Back-pressure: the DEALER holds at most [`SEND_HWM`] messages, so a sender cannot run
//! gigabytes ahead of the link. A message that finds the queue full is not dropped: it
//! waits in the link's backlog, and every later message to that peer queues behind it,
//! because the peer checks sequence numbers and drops a peer whose messages arrive out of
//! order. Application whispers and shouts wait (in [`crate::driver::command`]) before they
//! add to a backlog; protocol messages (HELLO, PING, PING-OK, JOIN, LEAVE) never wait and
//! go to the backlog, which is bounded by [`Link::new`]'s `limit`: past it the peer is
//! removed, as Zyre removes a peer whose queue is full.
//!
//! Why 10,000 (the figures are in BENCHMARKS.md, fourth round): far below Zyre's queue
//! (the expired timeout in ms x 100, 3 million messages), so a sender cannot run
//! hundreds of megabytes ahead of the link; and large enough that a waiting sender, woken
//! each time libzmq has taken half the limit off the queue, is not woken every few
//! messages, which a shout would pay once per member.

use std::collections::VecDeque;
use std::os::fd::RawFd;

use uuid::Uuid;

use crate::proto::UuidMap;

/// Messages a peer's DEALER queues before a send finds it full.
pub(crate) const SEND_HWM: i32 = 10_000;

/// One message, frame by frame, as it will go on the wire.
pub(crate) type Frames = Vec<Vec<u8>>;

/// Why a message could not be queued.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The backlog is at its limit: the peer has not read for a long time.
    Overflow,
    /// libzmq refused the message for another reason (the context is ending, say).
    Zmq(zmq::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Overflow => write!(f, "send queue full"),
            SendError::Zmq(e) => write!(f, "{e}"),
        }
    }
}

pub(crate) struct Link {
    dealer: zmq::Socket,
    /// The DEALER's `ZMQ_FD`: readable when libzmq has news for the socket, such as room
    /// in its queue again. Only `ZMQ_EVENTS` (or a send) under the core's lock reads it.
    fd: RawFd,
    /// Whole messages, in order, that found the DEALER full.
    backlog: VecDeque<Frames>,
    /// At most this many messages wait in the backlog.
    limit: usize,
    /// Application threads waiting for room on this link. They flush the backlog
    /// themselves, so the driver leaves the descriptor to them.
    pub(crate) waiters: u32,
}

impl Link {
    pub(crate) fn new(dealer: zmq::Socket, limit: usize) -> Result<Link, zmq::Error> {
        let fd = dealer.get_fd()?;
        Ok(Link {
            dealer,
            fd,
            backlog: VecDeque::new(),
            limit,
            waiters: 0,
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub(crate) fn is_backlogged(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Queues a message behind any backlog, or in the backlog if the DEALER is full.
    pub(crate) fn send(&mut self, frames: Frames) -> Result<(), SendError> {
        if self.backlog.is_empty() {
            match send_message(&self.dealer, frames) {
                Ok(()) => return Ok(()),
                Err(Full::Again(frames)) => return self.push_backlog(frames),
                Err(Full::Failed(e)) => return Err(SendError::Zmq(e)),
            }
        }
        self.push_backlog(frames)
    }

    /// Queues a shout for this member: the header with its sequence number, then the
    /// content all members share (copied only if it must wait here).
    pub(crate) fn send_shared(
        &mut self,
        header: &[u8],
        content: &[Vec<u8>],
    ) -> Result<(), SendError> {
        if self.backlog.is_empty() {
            match send_shared(&self.dealer, header, content) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(SendError::Zmq(e)),
            }
        }
        let mut frames = Vec::with_capacity(1 + content.len());
        frames.push(header.to_vec());
        frames.extend(content.iter().cloned());
        self.push_backlog(frames)
    }

    fn push_backlog(&mut self, frames: Frames) -> Result<(), SendError> {
        if self.backlog.len() >= self.limit {
            return Err(SendError::Overflow);
        }
        self.backlog.push_back(frames);
        Ok(())
    }

    /// Moves backlog into the DEALER while it has room. True once the backlog is empty.
    pub(crate) fn flush(&mut self) -> Result<bool, zmq::Error> {
        if self.backlog.is_empty() {
            return Ok(true);
        }
        // A send looks at libzmq's commands (the one saying the queue has room again) at
        // most once a millisecond; asking for the events looks at once, and clears the
        // descriptor's signal that the caller woke on.
        self.dealer.get_events()?;
        while let Some(frames) = self.backlog.pop_front() {
            match send_message(&self.dealer, frames) {
                Ok(()) => {}
                Err(Full::Again(frames)) => {
                    self.backlog.push_front(frames);
                    return Ok(false);
                }
                Err(Full::Failed(e)) => return Err(e),
            }
        }
        Ok(true)
    }

    pub(crate) fn set_linger(&self, linger: i32) {
        let _ = self.dealer.set_linger(linger);
    }
}

enum Full {
    /// The queue is full: the message, untouched.
    Again(Frames),
    Failed(zmq::Error),
}

/// Sends one message whole, or hands it back if the queue is full. Only the first frame
/// can find it full: libzmq counts whole messages against the limit, so the rest of a
/// message always follows its first frame.
fn send_message(dealer: &zmq::Socket, mut frames: Frames) -> Result<(), Full> {
    let count = frames.len();
    if count == 0 {
        return Ok(());
    }
    let more = |i: usize| if i + 1 < count { zmq::SNDMORE } else { 0 };
    // The first frame is copied, so the message is still whole if it is refused. It is
    // a ZRE header: a few bytes for a whisper or shout.
    if !send_first(dealer, &frames[0], count > 1).map_err(Full::Failed)? {
        return Err(Full::Again(frames));
    }
    for (i, frame) in frames.drain(1..).enumerate() {
        let flags = zmq::DONTWAIT | more(i + 1);
        // Small frames are copied (libzmq keeps up to 33 bytes inside the message itself);
        // large ones are handed over without a copy.
        let sent = if frame.len() <= 64 {
            dealer.send(&frame[..], flags)
        } else {
            dealer.send(frame, flags)
        };
        sent.map_err(Full::Failed)?;
    }
    Ok(())
}

/// Sends a message's first frame (a copy of it). False if the queue is full: nothing
/// was sent.
fn send_first(dealer: &zmq::Socket, frame: &[u8], more: bool) -> Result<bool, zmq::Error> {
    let flags = zmq::DONTWAIT | if more { zmq::SNDMORE } else { 0 };
    match dealer.send(frame, flags) {
        Ok(()) => Ok(true),
        Err(zmq::Error::EAGAIN) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A shout's frames for one member (each copied into this member's message; small ones
/// live inside the message, no allocation). False if the queue is full and nothing was
/// sent.
fn send_shared(
    dealer: &zmq::Socket,
    header: &[u8],
    content: &[Vec<u8>],
) -> Result<bool, zmq::Error> {
    if !send_first(dealer, header, !content.is_empty())? {
        return Ok(false);
    }
    let last = content.len().saturating_sub(1);
    for (i, frame) in content.iter().enumerate() {
        let more = if i < last { zmq::SNDMORE } else { 0 };
        dealer.send(&frame[..], zmq::DONTWAIT | more)?;
    }
    Ok(true)
}

/// Every peer's link, and how many have a backlog: the count is this type's invariant
/// (`backlogged` = links whose backlog is not empty), kept by every method that can
/// change a backlog, so a send looks no further while it is 0 (almost always).
#[derive(Default)]
pub(crate) struct Links {
    map: UuidMap<Link>,
    backlogged: usize,
}

/// What [`Links::flush`] did to one link.
pub(crate) struct Flushed {
    /// Some of the backlog went into the DEALER: the peer is reading.
    pub moved: bool,
    /// Still backlogged: the descriptor to wait on.
    pub left: Option<RawFd>,
    /// libzmq refused a message (the peer is to be removed).
    pub error: Option<zmq::Error>,
}

impl Links {
    /// Adds (or replaces) `peer`'s link.
    pub(crate) fn insert(&mut self, peer: Uuid, link: Link) {
        if let Some(old) = self.map.insert(peer, link) {
            self.backlogged -= usize::from(old.is_backlogged());
        }
    }

    /// Removes `peer`'s link; what waited in its backlog goes with it.
    pub(crate) fn remove(&mut self, peer: &Uuid) -> Option<Link> {
        let link = self.map.remove(peer)?;
        self.backlogged -= usize::from(link.is_backlogged());
        Some(link)
    }

    /// Files the link of `from` under `to` (a static link whose peer told its UUID); its
    /// backlog, and the count of backlogged links, are unchanged.
    pub(crate) fn rekey(&mut self, from: &Uuid, to: Uuid) {
        if let Some(link) = self.map.remove(from) {
            if let Some(old) = self.map.insert(to, link) {
                self.backlogged -= usize::from(old.is_backlogged());
            }
        }
    }

    /// Every link, out of this table (at shutdown).
    pub(crate) fn take_all(&mut self) -> UuidMap<Link> {
        self.backlogged = 0;
        std::mem::take(&mut self.map)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Link> {
        self.map.values()
    }

    /// Whether any link has a backlog.
    pub(crate) fn any_backlogged(&self) -> bool {
        self.backlogged > 0
    }

    pub(crate) fn is_backlogged(&self, peer: &Uuid) -> bool {
        self.map.get(peer).is_some_and(Link::is_backlogged)
    }

    /// Sends through `peer`'s link with `send`: None if it has none, else the result and
    /// whether the link has just become backlogged.
    pub(crate) fn send(
        &mut self,
        peer: &Uuid,
        send: impl FnOnce(&mut Link) -> Result<(), SendError>,
    ) -> Option<(Result<(), SendError>, bool)> {
        let link = self.map.get_mut(peer)?;
        let was = link.is_backlogged();
        let result = send(link);
        let became = !was && link.is_backlogged();
        self.backlogged += usize::from(became);
        Some((result, became))
    }

    /// Moves `peer`'s backlog on as far as its DEALER has room (None: no backlog).
    pub(crate) fn flush(&mut self, peer: &Uuid) -> Option<Flushed> {
        let link = self.map.get_mut(peer)?;
        if !link.is_backlogged() {
            return None;
        }
        let before = link.backlog_len();
        let result = link.flush();
        // Counted by what is left, whatever the result: a failed send may have emptied it.
        let still = link.is_backlogged();
        self.backlogged -= usize::from(!still);
        Some(Flushed {
            moved: link.backlog_len() < before,
            left: (still && result.is_ok()).then(|| link.fd()),
            error: result.err(),
        })
    }

    /// Messages waiting in all backlogs together.
    pub(crate) fn backlog_total(&self) -> usize {
        if self.backlogged == 0 {
            return 0;
        }
        self.map.values().map(Link::backlog_len).sum()
    }

    /// The backlogged peers; with `skip_waited`, not those an application thread waits
    /// on (it moves them itself).
    pub(crate) fn backlogged_peers(&self, skip_waited: bool) -> Vec<Uuid> {
        if self.backlogged == 0 {
            return Vec::new();
        }
        self.map
            .iter()
            .filter(|(_, l)| l.is_backlogged() && !(skip_waited && l.waiters > 0))
            .map(|(p, _)| *p)
            .collect()
    }

    /// The descriptors of the backlogged links (as [`Links::backlogged_peers`]).
    pub(crate) fn backlog_fds(&self, skip_waited: bool, out: &mut Vec<RawFd>) {
        out.clear();
        if self.backlogged == 0 {
            return;
        }
        out.extend(
            self.map
                .values()
                .filter(|l| l.is_backlogged() && !(skip_waited && l.waiters > 0))
                .map(Link::fd),
        );
    }

    /// An application thread starts or stops waiting for room on `peer`'s link. True
    /// when the last waiter left a backlog behind (a shout whose member left the group,
    /// say): the driver must take it over.
    pub(crate) fn set_waiting(&mut self, peer: &Uuid, waiting: bool) -> bool {
        let Some(link) = self.map.get_mut(peer) else {
            return false;
        };
        if waiting {
            link.waiters += 1;
            false
        } else {
            link.waiters = link.waiters.saturating_sub(1);
            link.waiters == 0 && link.is_backlogged()
        }
    }

    #[cfg(test)]
    fn count_is_right(&self) -> bool {
        self.backlogged == self.map.values().filter(|l| l.is_backlogged()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link whose DEALER has no connection: every send finds it full (EAGAIN), so
    /// everything goes to the backlog.
    fn unconnected(ctx: &zmq::Context, limit: usize) -> Link {
        let dealer = ctx.socket(zmq::DEALER).unwrap();
        dealer.set_sndtimeo(0).unwrap();
        dealer.set_linger(0).unwrap();
        Link::new(dealer, limit).unwrap()
    }

    fn one() -> Frames {
        vec![b"h".to_vec(), b"x".to_vec()]
    }

    #[test]
    fn the_backlog_count_follows_every_change() {
        let ctx = zmq::Context::new();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut links = Links::default();
        links.insert(a, unconnected(&ctx, 10));
        links.insert(b, unconnected(&ctx, 10));
        assert!(!links.any_backlogged());
        let (r, became) = links.send(&a, |l| l.send(one())).unwrap();
        assert!(r.is_ok() && became);
        let (_, became) = links.send(&a, |l| l.send(one())).unwrap();
        assert!(!became, "already backlogged");
        assert!(links.any_backlogged() && links.count_is_right());
        assert_eq!(links.backlog_total(), 2);
        assert_eq!(links.backlogged_peers(false), vec![a]);
        // Nothing can leave an unconnected DEALER: still backlogged, nothing moved.
        let f = links.flush(&a).unwrap();
        assert!(!f.moved && f.left.is_some() && f.error.is_none());
        assert!(links.flush(&b).is_none(), "no backlog");
        // Replacing a backlogged link, and removing one, keep the count.
        links.insert(a, unconnected(&ctx, 10));
        assert!(!links.any_backlogged() && links.count_is_right());
        links.send(&b, |l| l.send(one()));
        assert!(links.remove(&b).unwrap().is_backlogged());
        assert!(!links.any_backlogged() && links.count_is_right());
        links.send(&a, |l| l.send(one()));
        // A backlogged link re-keyed keeps its backlog and the count.
        let c = Uuid::from_u128(3);
        links.rekey(&a, c);
        assert!(links.is_backlogged(&c) && !links.is_backlogged(&a));
        assert!(links.any_backlogged() && links.count_is_right());
        links.rekey(&a, b);
        assert!(links.count_is_right());
        links.send(&c, |l| l.send(one()));
        assert_eq!(links.take_all().len(), 1);
        assert!(!links.any_backlogged());
    }

    #[test]
    fn a_full_backlog_is_an_overflow_and_waiters_hand_a_backlog_back() {
        let ctx = zmq::Context::new();
        let a = Uuid::from_u128(1);
        let mut links = Links::default();
        links.insert(a, unconnected(&ctx, 1));
        assert!(links.send(&a, |l| l.send(one())).unwrap().0.is_ok());
        let (r, _) = links.send(&a, |l| l.send(one())).unwrap();
        assert!(matches!(r, Err(SendError::Overflow)));
        assert!(!links.set_waiting(&a, true));
        assert!(
            links.backlogged_peers(true).is_empty(),
            "left to its waiter"
        );
        assert!(
            links.set_waiting(&a, false),
            "the last waiter left a backlog"
        );
        assert_eq!(links.backlogged_peers(true), vec![a]);
    }
}
