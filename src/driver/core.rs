//! The shared core.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use uuid::Uuid;

use super::handoff::Handoff;
use super::*;
use crate::error::Error;
use crate::link::{Frames, Link, Links, SendError, SEND_HWM};
use crate::proto::event::{uuid_hex, Event};
use crate::proto::node::{for_each_member, Command, NodeState, Output, Transmit};
use crate::queue::{Bell, Queue};

/// What an application thread waiting for events may sleep on.
pub(crate) enum Watch {
    /// The mailbox's descriptor (and the event queue).
    Fd(RawFd),
    /// Nothing: the mailbox has more to read now.
    Again,
    /// Only the event queue: the mailbox is closing.
    Closing,
}

/// The state machine and everything it reads from or writes to that more than one thread
/// needs: the mailbox, the DEALERs, the beacon sender, the event queue and the directory.
/// The driver thread and application threads work on it one at a time, under its mutex.
///
/// Why application threads do the work themselves: handing every send to the driver
/// thread, and every received message back from it, cost two thread hand-offs each way
/// per round trip and put a third busy thread on each end of a link, on a machine with
/// two cores (BENCHMARKS.md). libzmq sockets may move between threads given a full memory
/// barrier, which the mutex is. Commands never make a deadline earlier (sending refreshes
/// no timer), so the driver's planned wake-up stays right without being told.
pub(crate) struct Core {
    pub(super) state: NodeState,
    /// None once the driver has shut down: commands then fail with `Stopped`.
    pub(super) ctx: Option<zmq::Context>,
    /// The mailbox; None once shut down.
    pub(super) router: Option<zmq::Socket>,
    /// The mailbox's `ZMQ_FD`: readable when it may have news, which only a receive (or
    /// `ZMQ_EVENTS`) under this lock can tell. Whoever reads the mailbox reads it until it
    /// is empty, or makes sure someone comes back, or a message could wait unseen.
    pub(super) router_fd: RawFd,
    /// Who reads the mailbox: the driver, or an application thread waiting for events.
    pub(super) handoff: Handoff,
    /// The last read of the mailbox stopped at the batch limit: more is there, and the
    /// descriptor need not say so.
    pub(super) mail_pending: bool,
    /// Each peer's DEALER and backlog.
    pub(super) links: Links,
    /// Application threads waiting for room on some link.
    pub(super) room_waiters: u32,
    /// See [`Core::event_room`].
    pub(super) event_limit: usize,
    /// The mailbox holds mail left unread because the application has enough events
    /// waiting; shared with the handle, which rings the driver when it takes events.
    pub(super) stalled: Arc<AtomicBool>,
    /// How often reading stopped so (`Stats::receive_stalls`).
    pub(super) stalls: u64,
    /// Application threads waiting for answers to their PINGs (a flush or a ping).
    pub(super) answer_waiters: u32,
    /// A stop was asked for: the mailbox is read whatever waits for the application, or
    /// the peers' answers to our last PINGs could wait behind it until the linger ends.
    pub(super) stopping: bool,
    /// The driver's doorbell: rung when a backlog appears that it must look after.
    pub(super) driver_bell: Arc<Bell>,
    /// None when the node does not beacon: beacons the state machine still makes (its
    /// port-0 goodbye) go nowhere.
    pub(super) udp: Option<UdpSocket>,
    pub(super) beacon_to: SocketAddr,
    /// IPv6 mode: the interface index libzmq gets as zone (see `Net::for_libzmq`); else 0.
    pub(super) zone_index: u32,
    pub(super) events: Arc<Queue<Event>>,
    /// Events on their way to the application, handed over together.
    pub(super) outgoing: VecDeque<Event>,
    pub(super) directory: Arc<Mutex<Directory>>,
    /// The driver's latest clock read. Commands are handled with it: they read no timer,
    /// so they need no fresh one, and a whisper stays free of a clock read (a measurable
    /// share of a sender's CPU: BENCHMARKS.md, third round).
    pub(super) clock: Instant,
    /// Receive buffers reused for every mailbox message.
    pub(super) identity: zmq::Message,
    pub(super) frame: zmq::Message,
    pub(super) part: zmq::Message,
    /// CURVE: our key pair, for each DEALER (None: plain).
    pub(super) curve: Option<([u8; 32], [u8; 32])>,
    /// CURVE: the ZAP handler, stopped before the context is terminated.
    pub(super) zap: Option<super::zap::Zap>,
    /// Why the driver ended, if it failed (a panic, a poll error): the application sees
    /// `Error::DriverFailed` once it has read the events before it.
    pub(crate) failure: Option<String>,
}

impl Core {
    /// Carries out a command on the caller's thread (after [`command`] saw room for it).
    pub(super) fn command(&mut self, cmd: Command) -> Result<(), Error> {
        // Once stopping, nothing new may go out: the stop's PINGs cover only what was
        // sent before them, and the goodbye could overtake a later message.
        if self.ctx.is_none() || self.stopping {
            return Err(Error::Stopped);
        }
        // Our own groups change under this lock, in the order the commands run, so two
        // threads joining and leaving one group leave `own_groups()` as the state is.
        let own = match &cmd {
            Command::Join(g) => Some((g.clone(), true)),
            Command::Leave(g) => Some((g.clone(), false)),
            _ => None,
        };
        let result = self.state.handle_command(self.clock, cmd);
        if let (Some((group, joined)), Ok(())) = (own, &result) {
            let mut dir = self.directory.lock().unwrap_or_else(|p| p.into_inner());
            if joined {
                dir.own_groups.insert(group);
            } else {
                dir.own_groups.remove(&group);
            }
        }
        self.flush();
        self.publish();
        result.map_err(Error::from)
    }

    /// For an application thread about to wait for events: turns whatever the mailbox
    /// holds into events (handed to the application) and says what the thread may wait
    /// on for more. The caller becomes the mailbox's reader (the driver leaves the mailbox
    /// to it) until it stays away from `Node::next_event` for longer than [`APP_GRACE`].
    ///
    /// `woken`: the caller's last wait saw the descriptor readable. Otherwise the mailbox
    /// is read only if a read stopped at the batch limit: every other read emptied it,
    /// and anything that arrived since makes the descriptor readable, so the wait will
    /// see it. (A receive that finds nothing costs libzmq two syscalls.)
    pub(crate) fn serve_application(&mut self, deadline: Option<Instant>, woken: bool) -> Watch {
        if self.stopping {
            // The stopping driver reads the peers' last answers itself: one read here
            // could take the descriptor's signal from under its wait. This thread waits
            // off the mailbox from now on; were it still counted as polling it, the
            // driver's close would wait for it (5 s) before the goodbye.
            self.publish();
            self.handoff.app_waits_off_mailbox();
            return Watch::Closing;
        }
        let drained = if woken || self.mail_pending || self.is_stalled() {
            self.read_mailbox()
        } else {
            true
        };
        self.flush();
        self.publish();
        if self.router.is_none() {
            self.handoff.force_close();
        }
        if self.handoff.is_closing() {
            self.handoff.app_waits(None);
            return Watch::Closing;
        }
        if !drained {
            // Stopped at the batch limit: the rest is there, but the descriptor need not
            // say so again. Read on before sleeping.
            return Watch::Again;
        }
        self.handoff.app_waits(deadline);
        Watch::Fd(self.router_fd)
    }

    /// The application thread left `Node::next_event`, with an event or not. True if the
    /// driver must be woken (see [`Handoff::app_left`]).
    pub(crate) fn application_left(&mut self, with_event: bool) -> bool {
        let pending = self.mail_pending;
        self.handoff.app_left(Instant::now(), with_event, pending)
    }

    /// Reads the mailbox until it is empty (true) or a batch is read (false), unless the
    /// application has enough events waiting: then the mail stays where it is (true, and
    /// `stalled` is set; whoever takes events rings the driver to read on).
    pub(super) fn read_mailbox(&mut self) -> bool {
        // Out of `self` while it is read: handling a message sends through `self`.
        let Some(router) = self.router.take() else {
            return true;
        };
        // Set before the events are counted: a thread that takes events after the count
        // then sees it and rings, and the mailbox is read again.
        let was = self.stalled.swap(true, Ordering::SeqCst);
        let room = self.event_room();
        let drained = if room > 0 {
            self.stalled.store(false, Ordering::Release);
            self.read_from(&router, room.min(BATCH))
        } else {
            if !was {
                self.stalls += 1;
            }
            // Asking for the events takes libzmq's pending commands, which clears the
            // descriptor: a wait on it does not wake at once for mail left here.
            let _ = router.get_events();
            true
        };
        self.router = Some(router);
        self.mail_pending = !drained;
        drained
    }

    /// How many more messages the mailbox may be read for: fewer than `event_limit`
    /// events wait for the application. Memory stays bounded end to end: unread mail
    /// stays in libzmq's queue (the ROUTER's receive limit), then in TCP, and the
    /// sender's whisper and shout wait for room.
    ///
    /// While one of our application's threads waits for room to send, the limit is
    /// higher by twice a link's queue ([`SEND_HWM`]): two applications that whisper to
    /// each other and read only between sends would otherwise each wait for the other to
    /// read, for ever. A waiting sender is let go once libzmq has taken half its queue,
    /// so taking that much from each waiting peer lets its send through, and it then
    /// reads.
    pub(super) fn event_room(&self) -> usize {
        if self.stopping {
            return BATCH;
        }
        let limit = if self.room_waiters > 0 || self.answer_waiters > 0 {
            self.event_limit.saturating_add(2 * SEND_HWM as usize)
        } else {
            self.event_limit
        };
        limit.saturating_sub(self.outgoing.len() + self.events.len())
    }

    /// An application thread starts (or stops) waiting for answers to the PINGs it sent:
    /// they come through the mailbox, so the driver reads it at once, and past the event
    /// limit as for a thread waiting for room (see [`Core::event_room`]).
    pub(super) fn await_answers(&mut self, waiting: bool) {
        if waiting {
            self.answer_waiters += 1;
            self.handoff.release_idle();
            self.driver_bell.ring();
        } else {
            self.answer_waiters = self.answer_waiters.saturating_sub(1);
        }
    }

    /// The node's ZeroMQ context, until it shuts down.
    pub(crate) fn zmq_context(&self) -> Option<zmq::Context> {
        self.ctx.clone()
    }

    /// True while mail waits unread for room in the event queue.
    pub(crate) fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }

    /// Reads at most `max` messages (one event each at most, but a HELLO's few).
    pub(super) fn read_from(&mut self, router: &zmq::Socket, max: usize) -> bool {
        // Asking first costs libzmq one look at its command pipe; a receive that finds
        // nothing costs two.
        if !router.get_events().is_ok_and(|e| e.contains(zmq::POLLIN)) {
            return true;
        }
        // One clock read per batch: the batch takes well under a millisecond.
        let now = Instant::now();
        for _ in 0..max {
            // The routing id and the ZRE frame are read into reused messages; only the
            // content, which goes to the application, becomes owned bytes.
            match router.recv(&mut self.identity, zmq::DONTWAIT) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN) => return true,
                Err(e) => {
                    log(&self.state, &format!("mailbox receive failed: {e}"));
                    return true;
                }
            }
            if !self.identity.get_more() {
                // An identity with nothing after it: nothing to decode.
                self.state
                    .handle_message(now, &self.identity, &[], Vec::new());
                continue;
            }
            // A multipart message arrives whole: the other parts are there already.
            if let Err(e) = router.recv(&mut self.frame, 0) {
                log(&self.state, &format!("mailbox receive failed: {e}"));
                return true;
            }
            let mut content = Vec::new();
            let mut more = self.frame.get_more();
            while more {
                match router.recv(&mut self.part, 0) {
                    Ok(()) => {
                        content.push(self.part.to_vec());
                        more = self.part.get_more();
                    }
                    Err(e) => {
                        log(&self.state, &format!("mailbox receive failed: {e}"));
                        break;
                    }
                }
            }
            // CURVE: the key this message's connection authenticated with.
            let sender = match self.curve {
                Some(_) => super::zap::sender_key(&mut self.frame),
                None => None,
            };
            self.state.handle_message_from(
                now,
                &self.identity,
                &self.frame,
                content,
                sender.as_ref(),
            );
            // Replies (PING-OK, HELLO) go out while the batch is read, not after it.
            self.flush();
        }
        false
    }

    /// Carries out the state machine's outputs in order: transmits go out, events go to
    /// `outgoing` (the directory updated first), log lines to the log.
    pub(super) fn flush(&mut self) {
        self.flush_holding(None);
    }

    /// [`Core::flush`], but beacons are kept in `held` instead of sent (at shutdown, the
    /// port-0 beacon must wait until the links are flushed and closed).
    pub(super) fn flush_holding(&mut self, mut held: Option<&mut Vec<Vec<u8>>>) {
        let first = self.outgoing.len();
        let mut membership = false;
        while let Some(out) = self.state.poll_output() {
            match out {
                Output::Event(ev) => {
                    membership |= !matches!(ev, Event::Whisper { .. } | Event::Shout { .. });
                    self.outgoing.push_back(ev);
                }
                Output::Transmit(Transmit::Beacon(bytes)) if held.is_some() => {
                    if let Some(h) = held.as_mut() {
                        h.push(bytes);
                    }
                }
                Output::Transmit(t) => self.execute(t),
                Output::Log(line) => log(&self.state, &line),
            }
        }
        // The directory changes before the events are visible (`publish`), so an
        // application that sees ENTER finds the peer in `peers()`. Content events leave
        // it alone, and then its lock is not taken.
        if membership {
            let mut dir = self.directory.lock().unwrap_or_else(|p| p.into_inner());
            for ev in self.outgoing.range(first..) {
                dir.apply(ev);
            }
        }
    }

    /// Hands `outgoing` to the application (one lock, a wake-up only if it sleeps).
    pub(super) fn publish(&mut self) {
        self.events.push_all(&mut self.outgoing);
    }

    fn execute(&mut self, t: Transmit) {
        match t {
            Transmit::Connect {
                peer,
                endpoint,
                curve_key,
            } => {
                if let Err(e) = self.connect(peer, &endpoint, curve_key) {
                    log(&self.state, &format!("connect to {endpoint} failed: {e}"));
                    self.state.handle_send_failed(Instant::now(), &peer);
                }
            }
            Transmit::Send { peer, frames } => self.send_to(peer, frames),
            Transmit::SendGroup {
                mut header,
                members,
                content,
            } => {
                for_each_member(&mut header, &members, |peer, header| {
                    self.send_with(peer, |link| link.send_shared(header, &content));
                });
            }
            Transmit::Rekey { from, to } => self.links.rekey(&from, to),
            Transmit::Disconnect { peer } => {
                // Dropping the DEALER closes it; linger 0 was set at connect. What waited
                // in its backlog was for a peer that is gone.
                self.links.remove(&peer);
            }
            Transmit::Beacon(bytes) => {
                let Some(udp) = &self.udp else {
                    return;
                };
                if let Err(e) = udp.send_to(&bytes, self.beacon_to) {
                    log(
                        &self.state,
                        &format!("beacon to {} failed: {e}", self.beacon_to),
                    );
                }
            }
        }
    }

    pub(super) fn send_to(&mut self, peer: Uuid, frames: Frames) {
        self.send_with(peer, |link| link.send(frames));
    }

    /// Sends through `peer`'s link, if it still has one, and keeps count of backlogs. A
    /// message the link cannot take removes the peer.
    pub(super) fn send_with(
        &mut self,
        peer: Uuid,
        send: impl FnOnce(&mut Link) -> Result<(), SendError>,
    ) {
        let Some((result, became_backlogged)) = self.links.send(&peer, send) else {
            return;
        };
        if became_backlogged {
            // The driver moves backlogs nobody waits on, but it plans its wait at the end
            // of its own turn: one that appeared on another thread must wake it.
            self.driver_bell.ring();
        }
        if let Err(e) = result {
            self.send_failed(&peer, &e.to_string());
        }
    }

    pub(super) fn send_failed(&mut self, peer: &Uuid, why: &str) {
        log(
            &self.state,
            &format!("send to {} failed: {why}", uuid_hex(peer)),
        );
        self.state.handle_send_failed(Instant::now(), peer);
    }

    /// Moves one link's backlog on as far as its DEALER has room. Returns the descriptor
    /// to wait on if some is left.
    pub(super) fn flush_link(&mut self, peer: &Uuid) -> Option<RawFd> {
        let flushed = self.links.flush(peer)?;
        if flushed.moved {
            // The peer's node is reading: a slow reader is not a dead one.
            self.state.handle_link_progress(Instant::now(), peer);
        }
        if let Some(e) = flushed.error {
            self.send_failed(peer, &e.to_string());
        }
        flushed.left
    }

    /// Messages waiting in all backlogs together.
    pub(super) fn backlog_total(&self) -> usize {
        self.links.backlog_total()
    }

    /// Moves every backlog on as far as the DEALERs have room; with `skip_waited`, not
    /// those an application thread waits on (it does that itself, woken by the
    /// descriptor this would clear).
    pub(super) fn flush_backlogs(&mut self, skip_waited: bool) {
        for peer in self.links.backlogged_peers(skip_waited) {
            self.flush_link(&peer);
        }
    }

    /// The descriptors of backlogged links nobody else waits on, for the driver's wait.
    pub(super) fn backlog_fds(&self, skip_waited: bool, out: &mut Vec<RawFd>) {
        self.links.backlog_fds(skip_waited, out);
    }

    /// Before an application whisper or shout: None if it may go now, or the link (peer
    /// and descriptor) it must wait for. It waits while its peer's backlog, or any
    /// member's, is not empty, so the application cannot run ahead of the link (see
    /// crate::link). Moves those backlogs on first.
    pub(super) fn blocked_on(&mut self, cmd: &Command) -> Option<(Uuid, RawFd)> {
        if !self.links.any_backlogged() || self.ctx.is_none() {
            return None;
        }
        match cmd {
            Command::Whisper { peer, .. } => self.flush_link(peer).map(|fd| (*peer, fd)),
            Command::Shout { group, .. } => {
                let members: Vec<Uuid> = self
                    .state
                    .peers()
                    .filter(|p| p.ready && p.groups.contains(group))
                    .map(|p| p.uuid)
                    .filter(|u| self.links.is_backlogged(u))
                    .collect();
                members
                    .into_iter()
                    .find_map(|peer| self.flush_link(&peer).map(|fd| (peer, fd)))
            }
            Command::Join(_) | Command::Leave(_) | Command::Contest(_) => None,
        }
    }

    pub(super) fn set_waiting(&mut self, peer: &Uuid, waiting: bool) {
        if waiting {
            self.room_waiters += 1;
            if self.is_stalled() {
                // The event limit is higher now (see `event_room`): read on.
                self.driver_bell.ring();
            }
        } else {
            self.room_waiters = self.room_waiters.saturating_sub(1);
        }
        if self.links.set_waiting(peer, waiting) {
            // Left with a backlog (a shout whose member left the group, say): the driver
            // takes it over.
            self.driver_bell.ring();
        }
    }

    pub(super) fn connect(
        &mut self,
        peer: Uuid,
        endpoint: &str,
        curve_key: Option<[u8; 32]>,
    ) -> Result<(), zmq::Error> {
        let Some(ctx) = &self.ctx else {
            return Err(zmq::Error::ETERM);
        };
        let dealer = ctx.socket(zmq::DEALER)?;
        // CURVE: a client with our key pair and the peer's key as the server's (the
        // state machine gives a key for every peer in CURVE mode; none is a bug, and a
        // plain connection would only hang in its handshake).
        match (self.curve, curve_key) {
            (Some((public, secret)), Some(server)) => {
                dealer.set_curve_publickey(&public)?;
                dealer.set_curve_secretkey(&secret)?;
                dealer.set_curve_serverkey(&server)?;
            }
            (None, None) => {}
            _ => return Err(zmq::Error::EINVAL),
        }
        let mut identity = [0u8; 17];
        identity[0] = 1;
        identity[1..].copy_from_slice(self.state.config().uuid.as_bytes());
        dealer.set_identity(&identity)?;
        // Room for SEND_HWM messages in libzmq (see crate::link), and never block there.
        dealer.set_sndhwm(SEND_HWM)?;
        dealer.set_sndtimeo(0)?;
        dealer.set_linger(0)?;
        if self.zone_index != 0 {
            dealer.set_ipv6(true)?;
            let endpoint = crate::proto::endpoint::with_zone_index(endpoint, self.zone_index);
            dealer.connect(&endpoint)?;
        } else {
            dealer.connect(endpoint)?;
        }
        // The reference's queue holds the expired timeout in ms x 100 messages before it
        // gives up on a peer; ours holds as many, in libzmq and the backlog together.
        let expired_ms = self.state.config().timers.expired.as_millis();
        let limit = usize::try_from(expired_ms * 100)
            .unwrap_or(usize::MAX)
            .saturating_sub(SEND_HWM as usize)
            .max(1);
        let link = Link::new(dealer, limit)?;
        self.links.insert(peer, link);
        Ok(())
    }
}
