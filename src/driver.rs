//! The driver: the sockets, the clock and the thread that feed the pure [`NodeState`].
//!
//! The state machine, the ROUTER mailbox and the per-peer DEALERs live in [`Core`], behind
//! one mutex. The driver thread owns the UDP beacon socket, the command doorbell and the
//! clock. Its loop: wait in `zmq::poll` (the mailbox's file descriptor, the beacon socket,
//! the doorbell) until input arrives or the next deadline; then, under the lock, feed the
//! input, carry out the state machine's transmits and hand its events to the application.
//!
//! Application threads lock [`Core`] too: to whisper, shout, join and leave, and, while
//! one waits for events, to read the mailbox itself (the driver then leaves the mailbox
//! out of its own wait). Either way a message crosses no thread hand-off that raw libzmq
//! would not have. Nothing here decides protocol behaviour.
//!
//! Memory is bounded end to end. Sending: a link holds [`SEND_HWM`] messages and whisper
//! and shout wait for room (`crate::link`). Receiving: the mailbox is read only while the
//! application has fewer than `event_limit` events waiting ([`Core::event_room`]); past
//! it, mail waits in libzmq ([`RECV_HWM`] per peer), then in TCP, and the sender waits.
//! Whoever takes events while mail waits rings the driver to read on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::{io_err, zmq_err, Error};
use crate::iface::Interface;
use crate::link::{Frames, Link, SendError, SEND_HWM};
use crate::proto::codec::set_sequence;
use crate::proto::event::{uuid_hex, Event};
use crate::proto::node::{Command, Config, NodeState, Transmit};
use crate::proto::UuidMap;
use crate::queue::{Bell, Queue};

/// What the application knows about a peer, kept current by the driver so queries
/// (`peers`, `peer_groups`, ...) answer without a round trip to the driver thread.
#[derive(Debug, Clone)]
pub(crate) struct PeerInfo {
    pub name: Arc<str>,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub groups: BTreeSet<String>,
    /// When the application was told it entered.
    pub since: std::time::SystemTime,
}

/// The peers the application has seen ENTER and not yet EXIT, and our own groups.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub peers: UuidMap<PeerInfo>,
    pub own_groups: BTreeSet<String>,
}

impl Directory {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Enter {
                peer,
                name,
                headers,
                endpoint,
            } => {
                self.peers.insert(
                    *peer,
                    PeerInfo {
                        name: name.clone(),
                        endpoint: endpoint.clone(),
                        headers: headers.clone(),
                        groups: BTreeSet::new(),
                        since: std::time::SystemTime::now(),
                    },
                );
            }
            Event::Exit { peer, .. } => {
                self.peers.remove(peer);
            }
            Event::Join { peer, group, .. } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.groups.insert(group.clone());
                }
            }
            Event::Leave { peer, group, .. } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.groups.remove(group);
                }
            }
            Event::Stop => self.peers.clear(),
            _ => {}
        }
    }
}

/// Requests from the application handle that go through the driver thread (commands
/// don't: see [`Core`]).
pub(crate) enum Request {
    /// Discovered by the application (a static peer): uuid and endpoint.
    Discovered(Uuid, String),
    /// Asks for the state machine's counters.
    Stats(std::sync::mpsc::Sender<crate::proto::node::Stats>),
    /// Stop, giving what is queued at most this long to leave (None: the stop linger).
    Stop(Option<Duration>),
    /// Testing only: panic, as a bug in the driver would.
    #[cfg(feature = "fault-injection")]
    InjectPanic,
}

/// The application's side of the command queue: bounded (so a burst of requests waits
/// rather than growing memory), plus the doorbell that wakes the driver.
pub(crate) struct Commands {
    queue: Arc<Queue<Request>>,
    bell: Arc<Bell>,
}

impl Commands {
    pub(crate) fn send(&self, request: Request) -> Result<(), Error> {
        self.queue.push(request).map_err(|_| Error::Stopped)?;
        self.bell.ring();
        Ok(())
    }

    /// Wakes the driver without a request: it looks at the mailbox again.
    pub(crate) fn ring(&self) {
        self.bell.ring();
    }
}

impl Drop for Commands {
    fn drop(&mut self) {
        // The driver reads this as a stop.
        self.queue.close();
        self.bell.ring();
    }
}

/// The driver's side of a queue: when the driver ends, the application's `recv` ends
/// and its commands fail.
struct DriverEnd<T>(Arc<Queue<T>>);

impl<T> Drop for DriverEnd<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The driver's side of the request queue: requests left when the driver ends are
/// dropped, so a `stats()` caller waiting for its reply gets `Stopped`, not a hang.
struct RequestsEnd(Arc<Queue<Request>>);

impl Drop for RequestsEnd {
    fn drop(&mut self) {
        self.0.close_and_clear();
    }
}

/// Everything the driver needs beyond the state machine's own configuration.
pub(crate) struct Setup {
    pub config: Config,
    pub iface: Interface,
    pub beacon_port: u16,
    pub mailbox_port: Option<u16>,
    pub advertised_endpoint: Option<String>,
    pub stop_linger: Duration,
    /// At most about this many events wait for the application (see [`Core::event_room`]).
    pub event_limit: usize,
}

/// A running driver as the handle sees it.
pub(crate) struct Running {
    pub thread: JoinHandle<()>,
    pub commands: Commands,
    pub core: Arc<Mutex<Core>>,
    pub events: Arc<Queue<Event>>,
    pub directory: Arc<Mutex<Directory>>,
    pub endpoint: String,
    pub stalled: Arc<AtomicBool>,
}

const COMMAND_QUEUE: usize = 16 * 1024;
/// Messages from each peer that libzmq holds in the mailbox before it stops reading that
/// peer's connection (libzmq's default).
const RECV_HWM: i32 = 1000;
/// Requests carried out per turn of the loop.
const BATCH_COMMANDS: usize = 4096;
/// Inputs handled per source before the loop looks at the others again, so no source can
/// starve the timers or the rest.
const BATCH: usize = 512;

/// How long an application thread may stay out of `Node::next_event` after it took an
/// event and still be the mailbox's reader: a loop that handles each event and comes
/// back keeps it; one that stops reading hands the mailbox back to the driver after this.
/// It also spaces the doorbell rings that make the driver look: at most one per grace
/// while events flow (10 ms rang so often that 100 nodes discovering each other took 15%
/// longer).
const APP_GRACE: Duration = Duration::from_millis(100);

/// How long after an application thread's wait times out the driver looks whether it
/// came back. A thread that polls with a timeout (`recv_timeout` every 100 ms, say)
/// usually does at once; looking after each timeout would wake the driver as often as
/// the thread, which doubled an idle node's CPU. So a thread that leaves on a timeout
/// may keep the mailbox unread up to this long: short beside the 5 s evasive timeout,
/// and the driver wakes for every peer's beacon (1 s) anyway.
const TIMEOUT_GRACE: Duration = Duration::from_millis(500);

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
    state: NodeState,
    /// None once the driver has shut down: commands then fail with `Stopped`.
    ctx: Option<zmq::Context>,
    /// The mailbox; None once shut down.
    router: Option<zmq::Socket>,
    /// The mailbox's `ZMQ_FD`: readable when it may have news, which only a receive (or
    /// `ZMQ_EVENTS`) under this lock can tell. Whoever reads the mailbox reads it until it
    /// is empty, or makes sure someone comes back, or a message could wait unseen.
    router_fd: RawFd,
    /// An application thread reads the mailbox when it looks for events, and the driver
    /// leaves it to that thread. Stays set between its calls, as long as they come
    /// within [`APP_GRACE`] of each other.
    app_watching: bool,
    /// That thread is inside `Node::next_event` now (it may be asleep in `poll`).
    app_in_poll: bool,
    /// When it last left `Node::next_event`.
    app_left_at: Instant,
    /// When it will leave at the latest (its timeout; None: it waits for an event).
    app_deadline: Option<Instant>,
    /// The driver's current wait includes the mailbox.
    driver_watching: bool,
    /// When the driver's current wait ends at the latest (None: only on input).
    driver_wake_at: Option<Instant>,
    /// Shutting down: nobody may start waiting on `router_fd` (it is about to close).
    closing: bool,
    /// The last read of the mailbox stopped at the batch limit: more is there, and the
    /// descriptor need not say so.
    mail_pending: bool,
    /// Each peer's DEALER and backlog.
    links: UuidMap<Link>,
    /// How many links have a backlog (almost always none: then no send looks further).
    backlogged: usize,
    /// Application threads waiting for room on some link.
    room_waiters: u32,
    /// See [`Core::event_room`].
    event_limit: usize,
    /// The mailbox holds mail left unread because the application has enough events
    /// waiting; shared with the handle, which rings the driver when it takes events.
    stalled: Arc<AtomicBool>,
    /// How often reading stopped so (`Stats::receive_stalls`).
    stalls: u64,
    /// An application thread waits in [`flush`] for the PING-OKs of the PINGs it sent.
    flushing: bool,
    /// A stop was asked for: the mailbox is read whatever waits for the application, or
    /// the peers' answers to our last PINGs could wait behind it until the linger ends.
    stopping: bool,
    /// The driver's doorbell: rung when a backlog appears that it must look after.
    driver_bell: Arc<Bell>,
    udp: UdpSocket,
    beacon_to: SocketAddrV4,
    events: Arc<Queue<Event>>,
    /// Events on their way to the application, handed over together.
    outgoing: VecDeque<Event>,
    directory: Arc<Mutex<Directory>>,
    /// The driver's latest clock read. Commands are handled with it: they read no timer,
    /// and a clock read per whisper was 3% of a sender's CPU.
    clock: Instant,
    /// Receive buffers reused for every mailbox message.
    identity: zmq::Message,
    frame: zmq::Message,
    part: zmq::Message,
    /// Why the driver ended, if it failed (a panic, a poll error): the application sees
    /// `Error::DriverFailed` once it has read the events before it.
    pub(crate) failure: Option<String>,
}

impl Core {
    /// Carries out a command on the caller's thread (after [`command`] saw room for it).
    fn command(&mut self, cmd: Command) -> Result<(), Error> {
        if self.ctx.is_none() {
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
        let drained = if woken || self.mail_pending || self.is_stalled() {
            self.read_mailbox()
        } else {
            true
        };
        self.flush();
        self.publish();
        if self.closing || self.router.is_none() {
            self.app_watching = false;
            return Watch::Closing;
        }
        if !drained {
            // Stopped at the batch limit: the rest is there, but the descriptor need not
            // say so again. Read on before sleeping.
            return Watch::Again;
        }
        self.app_watching = true;
        self.app_in_poll = true;
        self.app_deadline = deadline;
        Watch::Fd(self.router_fd)
    }

    /// The application thread left `Node::next_event`, with an event or not. True if the
    /// driver must be woken: the thread took an event (it may be busy with it for long)
    /// or left mail unread at the batch limit, and the driver's wait leaves the mailbox
    /// out for longer than twice the grace, so it would not notice in time.
    pub(crate) fn application_left(&mut self, with_event: bool) -> bool {
        let now = Instant::now();
        self.app_in_poll = false;
        self.app_left_at = now;
        (with_event || self.mail_pending)
            && self.app_watching
            && !self.driver_watching
            && self.driver_wake_at.is_none_or(|t| t > now + 2 * APP_GRACE)
    }

    /// Reads the mailbox until it is empty (true) or a batch is read (false), unless the
    /// application has enough events waiting: then the mail stays where it is (true, and
    /// `stalled` is set; whoever takes events rings the driver to read on).
    fn read_mailbox(&mut self) -> bool {
        // Out of `self` while it is read: handling a message sends through `self`.
        let Some(router) = self.router.take() else {
            return true;
        };
        // Set before the events are counted: a thread that takes events after the count
        // then sees it and rings, and the mailbox is read again.
        let was = self.stalled.swap(true, Ordering::AcqRel);
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
    fn event_room(&self) -> usize {
        if self.stopping {
            return BATCH;
        }
        let limit = if self.room_waiters > 0 {
            self.event_limit.saturating_add(2 * SEND_HWM as usize)
        } else {
            self.event_limit
        };
        limit.saturating_sub(self.outgoing.len() + self.events.len())
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
    fn read_from(&mut self, router: &zmq::Socket, max: usize) -> bool {
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
            self.state
                .handle_message(now, &self.identity, &self.frame, content);
            // Replies (PING-OK, HELLO) go out while the batch is read, not after it.
            self.flush_transmits_only();
        }
        false
    }

    /// Carries out the transmits, moves events to `outgoing` (updating the directory
    /// first) and writes the log.
    fn flush(&mut self) {
        self.flush_transmits_only();
        let mut dir = None;
        while let Some(ev) = self.state.poll_event() {
            // The directory changes before the event is visible, so an application that
            // sees ENTER finds the peer in `peers()`. Content events leave it alone, and
            // then its lock is not taken.
            if !matches!(ev, Event::Whisper { .. } | Event::Shout { .. }) {
                dir.get_or_insert_with(|| self.directory.lock().unwrap_or_else(|p| p.into_inner()))
                    .apply(&ev);
            }
            self.outgoing.push_back(ev);
        }
        drop(dir);
        while let Some(line) = self.state.poll_log() {
            log(&self.state, &line);
        }
    }

    /// Hands `outgoing` to the application (one lock, a wake-up only if it sleeps).
    fn publish(&mut self) {
        self.events.push_all(&mut self.outgoing);
    }

    fn flush_transmits_only(&mut self) {
        while let Some(t) = self.state.poll_transmit() {
            match t {
                Transmit::Connect { peer, endpoint } => {
                    if let Err(e) = self.connect(peer, &endpoint) {
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
                    for (peer, sequence) in members {
                        set_sequence(&mut header, sequence);
                        self.send_with(peer, |link| link.send_shared(&header, &content));
                    }
                }
                Transmit::Disconnect { peer } => {
                    // Dropping the DEALER closes it; linger 0 was set at connect. What
                    // waited in its backlog was for a peer that is gone.
                    if let Some(link) = self.links.remove(&peer) {
                        if link.is_backlogged() {
                            self.backlogged -= 1;
                        }
                    }
                }
                Transmit::Beacon(bytes) => {
                    if let Err(e) = self.udp.send_to(&bytes, self.beacon_to) {
                        log(
                            &self.state,
                            &format!("beacon to {} failed: {e}", self.beacon_to),
                        );
                    }
                }
            }
        }
    }

    fn send_to(&mut self, peer: Uuid, frames: Frames) {
        self.send_with(peer, |link| link.send(frames));
    }

    /// Sends through `peer`'s link, if it still has one, and keeps count of backlogs. A
    /// message the link cannot take removes the peer.
    fn send_with(&mut self, peer: Uuid, send: impl FnOnce(&mut Link) -> Result<(), SendError>) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let was_backlogged = link.is_backlogged();
        let result = send(link);
        if !was_backlogged && link.is_backlogged() {
            self.backlogged += 1;
            // The driver moves backlogs nobody waits on, but it plans its wait at the end
            // of its own turn: one that appeared on another thread must wake it.
            self.driver_bell.ring();
        }
        if let Err(e) = result {
            self.send_failed(&peer, &e.to_string());
        }
    }

    fn send_failed(&mut self, peer: &Uuid, why: &str) {
        log(
            &self.state,
            &format!("send to {} failed: {why}", uuid_hex(peer)),
        );
        self.state.handle_send_failed(Instant::now(), peer);
    }

    /// Moves one link's backlog on as far as its DEALER has room. Returns the descriptor
    /// to wait on if some is left.
    fn flush_link(&mut self, peer: &Uuid) -> Option<RawFd> {
        let link = self.links.get_mut(peer)?;
        if !link.is_backlogged() {
            return None;
        }
        let before = link.backlog_len();
        let result = link.flush();
        let fd = link.fd();
        if link.backlog_len() < before {
            // The peer's node is reading: a slow reader is not a dead one.
            self.state.handle_link_progress(Instant::now(), peer);
        }
        // Counted by what is left, whatever the result: a failed send may have emptied it.
        let still = link.is_backlogged();
        if !still {
            self.backlogged -= 1;
        }
        match result {
            Ok(_) if still => Some(fd),
            Ok(_) => None,
            Err(e) => {
                self.send_failed(peer, &e.to_string());
                None
            }
        }
    }

    /// Messages waiting in all backlogs together.
    fn backlog_total(&self) -> usize {
        if self.backlogged == 0 {
            return 0;
        }
        self.links.values().map(Link::backlog_len).sum()
    }

    /// Moves every backlog on as far as the DEALERs have room; with `skip_waited`, not
    /// those an application thread waits on (it does that itself, woken by the
    /// descriptor this would clear).
    fn flush_backlogs(&mut self, skip_waited: bool) {
        if self.backlogged == 0 {
            return;
        }
        let peers: Vec<Uuid> = self
            .links
            .iter()
            .filter(|(_, l)| l.is_backlogged() && !(skip_waited && l.waiters > 0))
            .map(|(p, _)| *p)
            .collect();
        for peer in peers {
            self.flush_link(&peer);
        }
    }

    /// The descriptors of backlogged links nobody else waits on, for the driver's wait.
    fn backlog_fds(&self, skip_waited: bool, out: &mut Vec<RawFd>) {
        out.clear();
        if self.backlogged == 0 {
            return;
        }
        out.extend(
            self.links
                .values()
                .filter(|l| l.is_backlogged() && !(skip_waited && l.waiters > 0))
                .map(Link::fd),
        );
    }

    /// Before an application whisper or shout: None if it may go now, or the link (peer
    /// and descriptor) it must wait for. It waits while its peer's backlog, or any
    /// member's, is not empty, so the application cannot run ahead of the link (see
    /// crate::link). Moves those backlogs on first.
    fn blocked_on(&mut self, cmd: &Command) -> Option<(Uuid, RawFd)> {
        if self.backlogged == 0 || self.ctx.is_none() {
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
                    .filter(|u| self.links.get(u).is_some_and(Link::is_backlogged))
                    .collect();
                members
                    .into_iter()
                    .find_map(|peer| self.flush_link(&peer).map(|fd| (peer, fd)))
            }
            Command::Join(_) | Command::Leave(_) => None,
        }
    }

    fn set_waiting(&mut self, peer: &Uuid, waiting: bool) {
        if waiting {
            self.room_waiters += 1;
            if self.is_stalled() {
                // The event limit is higher now (see `event_room`): read on.
                self.driver_bell.ring();
            }
        } else {
            self.room_waiters = self.room_waiters.saturating_sub(1);
        }
        if let Some(link) = self.links.get_mut(peer) {
            if waiting {
                link.waiters += 1;
            } else {
                link.waiters = link.waiters.saturating_sub(1);
                if link.waiters == 0 && link.is_backlogged() {
                    // Left with a backlog (a shout whose member left the group, say):
                    // the driver takes it over.
                    self.driver_bell.ring();
                }
            }
        }
    }

    fn connect(&mut self, peer: Uuid, endpoint: &str) -> Result<(), zmq::Error> {
        let Some(ctx) = &self.ctx else {
            return Err(zmq::Error::ETERM);
        };
        let dealer = ctx.socket(zmq::DEALER)?;
        let mut identity = [0u8; 17];
        identity[0] = 1;
        identity[1..].copy_from_slice(self.state.config().uuid.as_bytes());
        dealer.set_identity(&identity)?;
        // Room for SEND_HWM messages in libzmq (see crate::link), and never block there.
        dealer.set_sndhwm(SEND_HWM)?;
        dealer.set_sndtimeo(0)?;
        dealer.set_linger(0)?;
        dealer.connect(endpoint)?;
        // The reference's queue holds the expired timeout in ms x 100 messages before it
        // gives up on a peer; ours holds as many, in libzmq and the backlog together.
        let expired_ms = self.state.config().timers.expired.as_millis();
        let limit = usize::try_from(expired_ms * 100)
            .unwrap_or(usize::MAX)
            .saturating_sub(SEND_HWM as usize)
            .max(1);
        let link = Link::new(dealer, limit)?;
        if let Some(old) = self.links.insert(peer, link) {
            if old.is_backlogged() {
                self.backlogged -= 1;
            }
        }
        Ok(())
    }
}

/// Queues a verbose log line; it never writes here (often under the lock) and never
/// waits for stderr (see crate::log).
fn log(state: &NodeState, line: &str) {
    if state.config().verbose {
        let id = uuid_hex(&state.config().uuid);
        crate::log::line(format!("zre[{}]: {line}", &id[..8]));
    }
}

pub(crate) fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long an application thread waiting for room on a link sleeps at most before it
/// looks again: the descriptor it sleeps on only says "look", and another thread may have
/// looked first.
const ROOM_WAIT_MS: i64 = 10;

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
                left_ms = left_ms.min(left.as_micros().div_ceil(1000) as i64);
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
        // The answer comes through the mailbox: see `flush`.
        c.room_waiters += 1;
        if !c.app_in_poll {
            c.app_watching = false;
        }
        c.driver_bell.ring();
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
    let mut c = lock(core);
    c.room_waiters = c.room_waiters.saturating_sub(1);
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
/// after it), until `deadline` at the most: Ok(false) then. A flush already under way (a
/// call that timed out) is waited on, not started again.
pub(crate) fn flush(core: &Mutex<Core>, deadline: Option<Instant>) -> Result<bool, Error> {
    {
        let mut c = lock(core);
        if c.ctx.is_none() {
            return Err(Error::Stopped);
        }
        if !c.flushing {
            c.flushing = true;
            let now = c.clock;
            c.state.handle_flush_request(now);
            c.flush();
            c.publish();
        }
        // The answers come through the mailbox: the driver reads it at once, and past the
        // event limit as for a thread waiting for room (see `Core::event_room`).
        c.room_waiters += 1;
        if !c.app_in_poll {
            c.app_watching = false;
        }
        c.driver_bell.ring();
    }
    let result = loop {
        {
            let mut c = lock(core);
            if c.ctx.is_none() {
                break Err(Error::Stopped);
            }
            if c.state.is_flushed() {
                c.flushing = false;
                break Ok(true);
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            break Ok(false);
        }
        std::thread::sleep(left.map_or(FLUSH_LOOK, |l| l.min(FLUSH_LOOK)));
    };
    let mut c = lock(core);
    c.room_waiters = c.room_waiters.saturating_sub(1);
    result
}

/// Binds the sockets (so setup errors surface to the caller) and starts the thread.
pub(crate) fn start(setup: Setup) -> Result<Running, Error> {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).map_err(zmq_err("create mailbox"))?;
    // A reconnecting peer keeps its identity; handover lets the new connection replace
    // the old one, or its second HELLO would be lost.
    router
        .set_router_handover(true)
        .map_err(zmq_err("set handover"))?;
    router.set_linger(0).map_err(zmq_err("set linger"))?;
    // What the application has not taken yet waits here, then in TCP, so the sender's
    // link backs up (see `Core::event_room`).
    router.set_rcvhwm(RECV_HWM).map_err(zmq_err("set rcvhwm"))?;
    let port = setup
        .mailbox_port
        .map_or_else(|| "*".to_string(), |p| p.to_string());
    let bind = format!("tcp://{}:{}", setup.iface.ip, port);
    router
        .bind(&bind)
        .map_err(zmq_err(format!("bind mailbox {bind}")))?;
    let bound = router
        .get_last_endpoint()
        .map_err(zmq_err("read mailbox endpoint"))?
        .map_err(|_| Error::Config("mailbox endpoint is not UTF-8".into()))?;
    let mailbox_port: u16 = bound
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::Config(format!("cannot read the port of {bound}")))?;
    let router_fd = router
        .get_fd()
        .map_err(zmq_err("read mailbox descriptor"))?;

    let udp = beacon_socket(setup.beacon_port)?;
    let udp_send = udp.try_clone().map_err(io_err("beacon socket"))?;

    let mut config = setup.config;
    config.endpoint = setup.advertised_endpoint.unwrap_or_else(|| bound.clone());
    config.beacon_port = mailbox_port;
    let endpoint = config.endpoint.clone();

    let queue = Queue::new(COMMAND_QUEUE);
    let bell = Arc::new(Bell::new().map_err(io_err("create doorbell"))?);
    let events = Queue::with_bell(usize::MAX).map_err(io_err("create event queue"))?;
    let stalled = Arc::new(AtomicBool::new(false));
    let directory = Arc::new(Mutex::new(Directory::default()));
    let thread_name = format!("zre-{}", &uuid_hex(&config.uuid)[..8]);

    let core = Arc::new(Mutex::new(Core {
        state: NodeState::new(config, Instant::now()),
        ctx: Some(ctx),
        router: Some(router),
        router_fd,
        app_watching: false,
        app_in_poll: false,
        app_left_at: Instant::now(),
        app_deadline: None,
        driver_watching: true,
        driver_wake_at: None,
        closing: false,
        mail_pending: false,
        links: Default::default(),
        backlogged: 0,
        room_waiters: 0,
        event_limit: setup.event_limit.max(1),
        stalled: stalled.clone(),
        stalls: 0,
        stopping: false,
        flushing: false,
        driver_bell: bell.clone(),
        udp: udp_send,
        beacon_to: SocketAddrV4::new(setup.iface.broadcast, setup.beacon_port),
        events: events.clone(),
        outgoing: VecDeque::new(),
        directory: directory.clone(),
        clock: Instant::now(),
        identity: zmq::Message::new(),
        frame: zmq::Message::new(),
        part: zmq::Message::new(),
        failure: None,
    }));
    let driver = Driver {
        core: core.clone(),
        router_fd,
        udp,
        iface: setup.iface,
        requests: RequestsEnd(queue.clone()),
        batch: VecDeque::new(),
        bell: bell.clone(),
        _close_events: DriverEnd(events.clone()),
        stop_linger: setup.stop_linger,
        udp_buf: vec![0u8; 2048],
        backlog_fds: Vec::new(),
        retry_every: Duration::from_millis(ROOM_WAIT_MS as u64),
        backlog_seen: 0,
    };
    let shared = core.clone();
    let thread = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            // A panic (a bug) must not look like a clean stop: record it and say goodbye.
            // The event queue closed as the driver unwound; `Node::recv` waits until the
            // failure is recorded (or this thread ended) before it reports how it ended.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver.run()));
            if let Err(panic) = run {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let end = || fail(&shared, &format!("driver panicked: {why}"));
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(end));
            }
        })
        .map_err(io_err("spawn driver thread"))?;
    Ok(Running {
        thread,
        commands: Commands { queue, bell },
        core,
        events,
        directory,
        endpoint,
        stalled,
    })
}

fn beacon_socket(port: u16) -> Result<UdpSocket, Error> {
    use socket2::{Domain, Protocol, Socket, Type};
    let ctx = || format!("beacon socket on UDP port {port}");
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io_err(ctx()))?;
    // Several nodes on one host share the beacon port: each binds 0.0.0.0:port with both
    // options, and a broadcast reaches all of them.
    s.set_reuse_address(true).map_err(io_err(ctx()))?;
    s.set_reuse_port(true).map_err(io_err(ctx()))?;
    s.set_broadcast(true).map_err(io_err(ctx()))?;
    s.set_nonblocking(true).map_err(io_err(ctx()))?;
    let addr = SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    s.bind(&addr.into()).map_err(io_err(ctx()))?;
    Ok(s.into())
}

/// The driver thread's own sockets and buffers; the shared part is `core`.
struct Driver {
    core: Arc<Mutex<Core>>,
    router_fd: RawFd,
    udp: UdpSocket,
    iface: Interface,
    requests: RequestsEnd,
    /// Requests taken from the queue and not yet carried out.
    batch: VecDeque<Request>,
    bell: Arc<Bell>,
    /// Closes the event queue when the driver ends, however it ends (never read).
    _close_events: DriverEnd<Event>,
    stop_linger: Duration,
    udp_buf: Vec<u8>,
    /// Descriptors of backlogged links to wait on this turn (almost always none).
    backlog_fds: Vec<RawFd>,
    /// How long until the driver looks at those backlogs again anyway, and how many
    /// messages they held when it last looked.
    retry_every: Duration,
    backlog_seen: usize,
}

/// What the poll found ready.
#[derive(Default)]
struct Ready {
    mailbox: bool,
    beacon: bool,
    bell: bool,
}

impl Driver {
    fn run(mut self) {
        let core = self.core.clone();
        // Set when the application asked to stop: the latest moment to give up waiting
        // for peers to acknowledge what we sent.
        let mut stop_by: Option<Instant> = None;
        let mut ready = Ready::default();
        let mut due: Option<Instant> = None;
        loop {
            // One lock per turn: handle what the poll found, flush, plan the next wake-up.
            let (next, watch, mail_pending) = {
                let mut core = lock(&core);
                // The doorbell also rings when an application thread stops watching the
                // mailbox: it may have left news there.
                // Also rung by a thread that took events while mail waited for room.
                if ready.mailbox || ready.bell || core.mail_pending || core.is_stalled() {
                    core.read_mailbox();
                }
                if ready.beacon {
                    self.read_beacons(&mut core);
                }
                let pending = !self.batch.is_empty();
                if (ready.bell || pending) && stop_by.is_none() {
                    if let Some(linger) = self.read_commands(&mut core, ready.bell) {
                        let now = Instant::now();
                        core.state.handle_stop_request(now);
                        core.stopping = true;
                        core.read_mailbox();
                        stop_by = Some(crate::proto::node::later(now, linger));
                    }
                }
                let now = Instant::now();
                core.clock = now;
                if due.is_some_and(|t| t <= now) {
                    core.state.handle_timeout(now);
                }
                core.flush_backlogs(true);
                core.flush();
                if let Some(deadline) = stop_by {
                    if core.state.is_drained() || Instant::now() >= deadline {
                        core.publish();
                        drop(core);
                        self.shutdown(deadline);
                        return;
                    }
                }
                // Computed once per turn: it looks at every peer. Nothing handled before
                // the next turn makes it earlier than now (a new peer's first deadline is a
                // ping interval away; commands refresh no timer).
                due = core.state.poll_timeout();
                // While an application thread reads the mailbox as it waits for events,
                // the driver leaves it out: waking here too would only contend for the
                // lock. The driver looks again once that thread may have left (its
                // timeout plus TIMEOUT_GRACE; a thread that leaves with an event rings);
                // if it has stayed away longer than the grace, it is no longer reading,
                // and the driver takes the mailbox back.
                let mut look_again = None;
                if core.app_watching {
                    if core.app_in_poll {
                        look_again = core.app_deadline.and_then(|d| d.checked_add(TIMEOUT_GRACE));
                    } else if core.app_left_at + APP_GRACE > now {
                        look_again = Some(core.app_left_at + APP_GRACE);
                    } else {
                        core.app_watching = false;
                        core.read_mailbox();
                        core.flush();
                    }
                }
                if core.app_watching && core.app_in_poll && look_again.is_some_and(|t| t <= now) {
                    // The thread should have left its wait long ago (it is starved or
                    // stopped): watch the mailbox too rather than wake at once forever.
                    look_again = None;
                    core.driver_watching = true;
                } else {
                    // Once stopping, the driver reads the peers' answers to its PINGs
                    // itself, at once: the goodbye waits for nothing else.
                    core.driver_watching = !core.app_watching || stop_by.is_some();
                }
                let watch = core.driver_watching;
                if core.mail_pending && !watch {
                    // We stopped at the batch limit with the rest left to the waiting
                    // thread, whose descriptor will not say so: wake it to read on.
                    core.events.wake_waiters();
                }
                // Last thing under the lock: an application woken by these events and
                // sending at once then rarely finds the lock taken.
                core.publish();
                // Backlogs nobody else waits on are the driver's to move on: it wakes on
                // their descriptors, and looks again soon in case another thread took
                // the signal. While an application thread waits for room, it sends as
                // fast as the links drain (a shout fills many at once); waking on each
                // of their descriptors would only contend with it for the lock, so the
                // driver then just looks every ROOM_WAIT_MS.
                // The look-again backs off, up to a second, while nothing moves (a peer
                // that stopped reading but still beacons can take twice the expired
                // timeout to be given up on).
                core.backlog_fds(true, &mut self.backlog_fds);
                let total = core.backlog_total();
                if self.backlog_fds.is_empty() || total < self.backlog_seen {
                    self.retry_every = Duration::from_millis(ROOM_WAIT_MS as u64);
                } else {
                    self.retry_every = (self.retry_every * 2).min(Duration::from_secs(1));
                }
                self.backlog_seen = total;
                let retry = (!self.backlog_fds.is_empty()).then(|| now + self.retry_every);
                if core.room_waiters > 0 {
                    self.backlog_fds.clear();
                }
                let next = [due, stop_by, look_again, retry]
                    .into_iter()
                    .flatten()
                    .min();
                core.driver_wake_at = next;
                // The last answers may have been read above, after the check for them.
                let drained = stop_by.is_some() && core.state.is_drained();
                (next, watch, (core.mail_pending && watch) || drained)
            };
            let timeout_ms = match next {
                // Input left over from the last turn, or a stop that may go ahead: look
                // again at once.
                _ if mail_pending || (!self.batch.is_empty() && stop_by.is_none()) => 0,
                Some(t) => {
                    // Round up: waking a millisecond early would spin until the deadline.
                    let d = t.saturating_duration_since(Instant::now());
                    (d.as_micros().div_ceil(1000)) as i64
                }
                None => -1,
            };
            let events = |on: bool| {
                if on {
                    zmq::POLLIN
                } else {
                    zmq::PollEvents::empty()
                }
            };
            // Once stopping, commands are no longer read.
            let wanted = [
                (self.router_fd, events(watch)),
                (self.udp.as_raw_fd(), zmq::POLLIN),
                (self.bell.fd(), events(stop_by.is_none())),
            ];
            let item = |(fd, ev): (RawFd, zmq::PollEvents)| zmq::PollItem::from_fd(fd, ev);
            let (polled, readable) = if self.backlog_fds.is_empty() {
                let mut items = wanted.map(item);
                let polled = zmq::poll(&mut items, timeout_ms);
                (polled, [0, 1, 2].map(|i| items[i].is_readable()))
            } else {
                // Rare: a peer's queue is full. Its descriptor joins the wait.
                let backlogs = self.backlog_fds.iter().map(|fd| (*fd, zmq::POLLIN));
                let mut all: Vec<_> = wanted.into_iter().chain(backlogs).map(item).collect();
                let polled = zmq::poll(&mut all, timeout_ms);
                let readable = [0, 1, 2].map(|i| all[i].is_readable());
                (polled, readable)
            };
            if let Err(e) = polled {
                if e != zmq::Error::EINTR {
                    self.fatal(&format!("poll: {e}"));
                    return;
                }
            }
            ready = Ready {
                mailbox: readable[0],
                beacon: readable[1],
                bell: readable[2],
            };
        }
    }

    fn read_beacons(&mut self, core: &mut Core) {
        for _ in 0..BATCH {
            match self.udp.recv_from(&mut self.udp_buf) {
                Ok((n, from)) => {
                    let ip = match from {
                        SocketAddr::V4(a) => *a.ip(),
                        SocketAddr::V6(_) => continue,
                    };
                    // Beacons from outside our interface's network are not for us: acting
                    // on them would connect out of the network we were told to use.
                    if !self.iface.contains(ip) {
                        continue;
                    }
                    let now = Instant::now();
                    core.state.handle_beacon(now, ip.into(), &self.udp_buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log(&core.state, &format!("beacon receive failed: {e}"));
                    break;
                }
            }
        }
    }

    /// Returns the stop linger when the application asked to stop (or went away).
    fn read_commands(&mut self, core: &mut Core, ready_bell: bool) -> Option<Duration> {
        self.bell.clear(ready_bell);
        // Everything queued comes in one hand-over; at most BATCH_COMMANDS are carried out
        // before the loop looks at the mailbox and the timers again.
        let closed = self.requests.0.take_all(&mut self.batch);
        let now = Instant::now();
        for _ in 0..BATCH_COMMANDS {
            match self.batch.pop_front() {
                Some(Request::Discovered(uuid, endpoint)) => {
                    core.state.handle_discovered(now, uuid, &endpoint)
                }
                Some(Request::Stats(reply)) => {
                    let mut stats = core.state.stats();
                    stats.receive_stalls = core.stalls;
                    let _ = reply.send(stats);
                }
                Some(Request::Stop(linger)) => return Some(linger.unwrap_or(self.stop_linger)),
                #[cfg(feature = "fault-injection")]
                Some(Request::InjectPanic) => panic!("injected by Node::inject_driver_panic"),
                None => return closed.then_some(self.stop_linger),
            }
            // Keep the outgoing queue short while a burst of requests is read.
            core.flush_transmits_only();
        }
        None
    }

    /// Closes everything once peers acknowledged our last messages (or `deadline` passed),
    /// then sends the port-0 beacon.
    fn shutdown(self, deadline: Instant) {
        let (ctx, links, router, leaving, beacon_to) = {
            let mut core = self.close_mailbox();
            // What waits in backlogs goes into the DEALERs first, until the deadline. The
            // lock is not held while waiting: other threads' calls keep their timeouts.
            let mut fds = Vec::new();
            loop {
                core.flush_backlogs(false);
                core.backlog_fds(false, &mut fds);
                let left = deadline.saturating_duration_since(Instant::now());
                if fds.is_empty() || left.is_zero() {
                    break;
                }
                drop(core);
                let mut items: Vec<zmq::PollItem> = fds
                    .iter()
                    .map(|fd| zmq::PollItem::from_fd(*fd, zmq::POLLIN))
                    .collect();
                let wait = left.min(Duration::from_millis(ROOM_WAIT_MS as u64));
                let _ = zmq::poll(&mut items, wait.as_micros().div_ceil(1000) as i64);
                core = lock(&self.core);
            }
            let now = Instant::now();
            // Each DEALER may flush what it still holds until the stop deadline.
            let left = deadline.saturating_duration_since(now);
            let linger = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            for link in core.links.values() {
                link.set_linger(linger);
            }
            let leaving = core.state.handle_stop(now);
            core.flush_transmits_only();
            core.backlogged = 0;
            // From here on, commands fail with `Stopped`.
            (
                core.ctx.take(),
                std::mem::take(&mut core.links),
                core.router.take(),
                leaving,
                core.beacon_to,
            )
        };
        drop(router);
        drop(links);
        // Terminating the context waits until the DEALERs flushed or their linger ran out.
        drop(ctx);
        // Only now say goodbye: peers that see our port-0 beacon remove us at once, so it
        // must not overtake the messages above.
        let _ = self.udp.send_to(&leaving, beacon_to);
        let mut core = lock(&self.core);
        core.flush();
        core.publish();
    }

    /// Stops application threads from waiting on the mailbox's descriptor and waits
    /// until none does, so the descriptor is not closed (and its number reused) under a
    /// thread that polls it. Returns with the lock held.
    fn close_mailbox(&self) -> MutexGuard<'_, Core> {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            let mut core = lock(&self.core);
            core.closing = true;
            if !(core.app_watching && core.app_in_poll) || Instant::now() >= give_up {
                core.app_watching = false;
                return core;
            }
            // Wake it: a waiting application thread also polls the event queue's bell.
            core.events.wake_waiters();
            drop(core);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn fatal(&self, what: &str) {
        fail(&self.core, what);
    }
}

/// The driver failed (`why`): records it for the application, closes the sockets and
/// says goodbye with the port-0 beacon, so peers see EXIT at once rather than after the
/// expired timeout. Events queued before are handed over, but no STOP: the application
/// sees `Error::DriverFailed` where a clean stop ends with STOP and `Error::Stopped`.
fn fail(core: &Mutex<Core>, why: &str) {
    // First, as an application thread that found the event queue closed waits for it
    // (and may be the mailbox's reader, which the wait below waits for).
    lock(core).failure.get_or_insert_with(|| why.to_string());
    // As `Driver::close_mailbox`: no application thread may be polling the mailbox's
    // descriptor when it closes.
    let give_up = Instant::now() + Duration::from_secs(5);
    let mut core = loop {
        let mut core = lock(core);
        core.closing = true;
        if !(core.app_watching && core.app_in_poll) || Instant::now() >= give_up {
            core.app_watching = false;
            break core;
        }
        core.events.wake_waiters();
        drop(core);
        std::thread::sleep(Duration::from_millis(1));
    };
    log(&core.state, &format!("driver failed: {why}"));
    // The state machine may be what failed: then the goodbye is made here.
    let uuid = core.state.config().uuid;
    let leaving = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        core.state.handle_stop(Instant::now())
    }))
    .unwrap_or_else(|_| crate::proto::beacon::Beacon::new(uuid, 0).encode());
    core.router = None;
    core.links.clear();
    core.backlogged = 0;
    core.ctx = None;
    // What the state machine still wants sent goes first (a beacon among it must not
    // follow the goodbye); its messages go nowhere now.
    let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.flush()));
    let _ = core.udp.send_to(&leaving, core.beacon_to);
    if flushed.is_ok() {
        core.outgoing.retain(|e| !matches!(e, Event::Stop));
        core.publish();
    }
}
