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
//! Why 10,000: with Zyre's queue (the expired timeout in ms x 100, 3 million messages)
//! and no waiting, a 1 KiB whisper loop ran far ahead of the link, and clearing fresh
//! pages was 18% of the sender's CPU; limited at 1,000 (libzmq's default) it moved more
//! than twice as many. But a waiting sender is woken each time libzmq has taken half the
//! limit off the queue, at about 50 µs a wake-up on this machine kind, and a shout waits
//! for each member in turn: shout to 10 went 0.64 -> 0.77 of raw from 1,000 to 10,000,
//! with 1 KiB whispers unchanged within noise (BENCHMARKS.md, fourth round).

use std::collections::VecDeque;
use std::os::fd::RawFd;

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
