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

/// Sends PINGs (`ask`, under the lock, with a fresh clock read: they are timed for
/// `Peer::rtt`) and waits until `answered` says what came of them, or `deadline` passes
/// (`Ok(None)`). While it waits the driver reads the mailbox at once and past the event
/// limit (see `Core::await_answers`).
fn ask_and_wait<T, A>(
    core: &Mutex<Core>,
    deadline: Option<Instant>,
    ask: impl FnOnce(&mut Core, Instant) -> Result<A, Error>,
    answered: impl Fn(&Core, &A) -> Option<Result<T, Error>>,
) -> Result<Option<T>, Error> {
    let asked = {
        let mut c = lock(core);
        if c.ctx.is_none() {
            return Err(Error::Stopped);
        }
        let asked = ask(&mut c, Instant::now())?;
        c.flush();
        c.publish();
        c.await_answers(true);
        asked
    };
    let result = loop {
        {
            let c = lock(core);
            if c.ctx.is_none() {
                break Err(Error::Stopped);
            }
            if let Some(done) = answered(&c, &asked) {
                break done.map(Some);
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            break Ok(None);
        }
        std::thread::sleep(left.map_or(ANSWER_LOOK, |l| l.min(ANSWER_LOOK)));
    };
    lock(core).await_answers(false);
    result
}

/// How often a thread waiting for answers looks whether they came.
const ANSWER_LOOK: Duration = Duration::from_millis(2);

/// Sends `peer` a PING and waits for its PING-OK, until `deadline` at the most
/// ([`Error::Timeout`]): the round trip as the node measured it.
pub(crate) fn ping(
    core: &Mutex<Core>,
    peer: Uuid,
    deadline: Option<Instant>,
) -> Result<Duration, Error> {
    let rtt = ask_and_wait(
        core,
        deadline,
        |c, now| Ok(c.state.handle_ping_request(now, &peer)?),
        |c, ticket| match c.state.peer(&peer) {
            Some(p) if p.pongs() >= *ticket => Some(p.rtt.ok_or(Error::Stopped)),
            Some(p) if p.ready => None,
            _ => Some(Err(Error::UnknownPeer(peer))),
        },
    )?;
    rtt.ok_or(Error::Timeout)
}

/// The last round trip measured to each of `peers` (any PING: ours or the keep-alive).
pub(crate) fn rtts(core: &Mutex<Core>, peers: &[Uuid]) -> Vec<Option<Duration>> {
    let c = lock(core);
    peers
        .iter()
        .map(|u| c.state.peer(u).and_then(|p| p.rtt))
        .collect()
}

/// Waits until every ready peer has taken what we sent it so far (it answered a PING sent
/// after it), until `deadline` at the most: Ok(false) then. Each call sends its own PINGs.
pub(crate) fn flush(core: &Mutex<Core>, deadline: Option<Instant>) -> Result<bool, Error> {
    let done = ask_and_wait(
        core,
        deadline,
        |c, now| Ok(c.state.handle_flush_request(now)),
        |c, ticket| c.state.is_flushed(ticket).then_some(Ok(())),
    )?;
    Ok(done.is_some())
}
