//! Waits on application threads.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::*;
use crate::error::Error;
use crate::proto::node::Command;

/// Carries out an application command on the caller's thread. A whisper or shout first
/// waits, without the lock, while its link is backed up: until `deadline` at the latest
/// (None: no limit), and then fails with [`Error::Timeout`] having sent nothing.
pub(crate) fn command(
    core: &Mutex<Core>,
    cmd: Command,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let mut waiting: Option<Uuid> = None;
    loop {
        let mut guard = lock(core);
        let mut blocked = guard.blocked_on(&cmd);
        let mut left_ms = ROOM_WAIT_MS;
        if let (Some(deadline), Some(_)) = (deadline, blocked) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                blocked = None;
            } else {
                // The minimum first: a timeout of years does not fit an i64 of ms.
                left_ms = left.as_micros().div_ceil(1000).min(left_ms as u128) as i64;
            }
            if blocked.is_none() {
                if let Some(peer) = waiting.take() {
                    guard.set_waiting(&peer, false);
                }
                return Err(Error::Timeout);
            }
        }
        if blocked.map(|(p, _)| p) != waiting {
            if let Some(peer) = waiting.take() {
                guard.set_waiting(&peer, false);
            }
            if let Some((peer, _)) = blocked {
                guard.set_waiting(&peer, true);
                waiting = Some(peer);
            }
        }
        let Some((_, fd)) = blocked else {
            return guard.command(cmd);
        };
        drop(guard);
        let mut items = [zmq::PollItem::from_fd(fd, zmq::POLLIN)];
        // An error (EINTR, or a descriptor closed under us as the peer left) only means
        // looking again sooner.
        let _ = zmq::poll(&mut items, left_ms);
    }
}

/// Sends `peer` a PING and waits for its PING-OK, until `deadline` at the most
/// ([`Error::Timeout`]): the round trip as the node measured it.
pub(crate) fn ping(
    core: &Mutex<Core>,
    peer: Uuid,
    deadline: Option<Instant>,
) -> Result<Duration, Error> {
    let ticket = {
        let mut c = lock(core);
        if c.ctx.is_none() {
            return Err(Error::Stopped);
        }
        let now = Instant::now();
        let ticket = c.state.handle_ping_request(now, &peer)?;
        c.flush();
        c.publish();
        c.await_answers(true);
        ticket
    };
    let result = loop {
        {
            let c = lock(core);
            if c.ctx.is_none() {
                break Err(Error::Stopped);
            }
            match c.state.peer(&peer) {
                Some(p) if p.pongs() >= ticket => break p.rtt.ok_or(Error::Stopped),
                Some(p) if p.ready => {}
                _ => break Err(Error::UnknownPeer(peer)),
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            break Err(Error::Timeout);
        }
        std::thread::sleep(left.map_or(FLUSH_LOOK, |l| l.min(FLUSH_LOOK)));
    };
    lock(core).await_answers(false);
    result
}

/// The last round trip measured to each of `peers` (any PING: ours or the keep-alive).
pub(crate) fn rtts(core: &Mutex<Core>, peers: &[Uuid]) -> Vec<Option<Duration>> {
    let c = lock(core);
    peers
        .iter()
        .map(|u| c.state.peer(u).and_then(|p| p.rtt))
        .collect()
}

/// How often a thread waiting in [`flush`] looks whether the answers came.
const FLUSH_LOOK: Duration = Duration::from_millis(2);

/// Waits until every ready peer has taken what we sent it so far (it answered a PING sent
/// after it), until `deadline` at the most: Ok(false) then. Each call sends its own PINGs.
pub(crate) fn flush(core: &Mutex<Core>, deadline: Option<Instant>) -> Result<bool, Error> {
    let ticket = {
        let mut c = lock(core);
        if c.ctx.is_none() {
            return Err(Error::Stopped);
        }
        // A fresh clock read: the PINGs are timed for `Peer::rtt`.
        let ticket = c.state.handle_flush_request(Instant::now());
        c.flush();
        c.publish();
        c.await_answers(true);
        ticket
    };
    let result = loop {
        {
            let c = lock(core);
            if c.ctx.is_none() {
                break Err(Error::Stopped);
            }
            if c.state.is_flushed(&ticket) {
                break Ok(true);
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            break Ok(false);
        }
        std::thread::sleep(left.map_or(FLUSH_LOOK, |l| l.min(FLUSH_LOOK)));
    };
    lock(core).await_answers(false);
    result
}
