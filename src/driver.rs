//! The driver: the sockets, the clock and the thread that feed the pure [`NodeState`].
//!
//! The driver thread owns the ROUTER mailbox, the UDP beacon socket, the command doorbell
//! and the clock. Its loop: wait in `zmq::poll` (mailbox, beacon socket, doorbell) until
//! input arrives or the next deadline; then, under the [`Core`] lock, feed the input, carry
//! out the state machine's transmits and hand its events to the application. The state
//! machine and the per-peer DEALERs live in [`Core`], which application threads also lock
//! to whisper, shout, join and leave without a hand-off. Nothing here decides protocol
//! behaviour.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::{io_err, zmq_err, Error};
use crate::iface::Interface;
use crate::proto::codec::SEQUENCE_BYTES;
use crate::proto::event::{uuid_hex, Event};
use crate::proto::node::{Command, Config, NodeState, Transmit};
use crate::proto::UuidMap;

/// What the application knows about a peer, kept current by the driver so queries
/// (`peers`, `peer_groups`, ...) answer without a round trip to the driver thread.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerInfo {
    pub name: Arc<str>,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub groups: BTreeSet<String>,
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
    Stop,
}

/// A queue between the application's threads and the driver that is handed over in
/// batches: the consumer takes everything waiting under one lock, and a side sleeps only
/// when it must (a producer while the queue is full, the consumer while it is empty).
/// std's channels hand over one item per operation and wake a blocked peer for each, so
/// on a busy link the two threads took turns per message (a futex wake and a context
/// switch each); see BENCHMARKS.md.
pub(crate) struct Queue<T> {
    state: Mutex<QueueState<T>>,
    /// Signalled when items arrive or room is made, if someone waits.
    changed: Condvar,
    /// Producers wait while this many items are queued (`usize::MAX`: never).
    cap: usize,
}

struct QueueState<T> {
    items: VecDeque<T>,
    /// No more items will come (the producer or the consumer went away).
    closed: bool,
    /// Threads waiting on `changed`: only then is a notification worth a syscall.
    waiting: usize,
}

impl<T> Queue<T> {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
                waiting: 0,
            }),
            changed: Condvar::new(),
            cap,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one item, waiting while the queue is full; `Err` once closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let mut st = self.lock();
        while st.items.len() >= self.cap && !st.closed {
            st.waiting += 1;
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting -= 1;
        }
        if st.closed {
            return Err(item);
        }
        st.items.push_back(item);
        if st.waiting > 0 {
            self.changed.notify_all();
        }
        Ok(())
    }

    /// Appends every item, ignoring the cap (events: the driver never waits).
    pub(crate) fn push_all(&self, items: &mut VecDeque<T>) {
        if items.is_empty() {
            return;
        }
        let mut st = self.lock();
        if st.items.is_empty() {
            std::mem::swap(&mut st.items, items);
        } else {
            st.items.append(items);
        }
        if st.waiting > 0 {
            self.changed.notify_all();
        }
    }

    /// Moves every queued item to the end of `into`; true once closed and empty.
    pub(crate) fn take_all(&self, into: &mut VecDeque<T>) -> bool {
        self.wait_take(into, Some(Duration::ZERO))
    }

    /// Waits up to `timeout` (`None`: as long as it takes) until items are queued, then
    /// moves them all to the end of `into`; true once closed and empty.
    pub(crate) fn wait_take(&self, into: &mut VecDeque<T>, timeout: Option<Duration>) -> bool {
        let mut st = self.lock();
        if st.items.is_empty() && !st.closed && timeout == Some(Duration::ZERO) {
            // A poll that finds nothing: no clock read, no wait.
            return false;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        while st.items.is_empty() && !st.closed {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            st.waiting += 1;
            st = if deadline.is_some() {
                self.changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            } else {
                self.changed.wait(st).unwrap_or_else(|p| p.into_inner())
            };
            st.waiting -= 1;
        }
        let closed = st.closed && st.items.is_empty();
        if into.is_empty() {
            // Hand over the buffer itself; `into`'s empty one is reused next time.
            std::mem::swap(&mut st.items, into);
        } else {
            into.append(&mut st.items);
        }
        if st.waiting > 0 {
            // Producers blocked on a full queue: there is room now.
            self.changed.notify_all();
        }
        closed
    }

    /// No more items: waiting threads return, pushes fail.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// The application's side of the command queue: bounded (so a fast sender is slowed down
/// rather than growing memory), plus a doorbell that wakes the driver.
pub(crate) struct Commands {
    queue: Arc<Queue<Request>>,
    bell: UnixStream,
    /// True while a doorbell byte is unread: ringing again would only cost a syscall.
    rung: Arc<AtomicBool>,
}

impl Commands {
    pub(crate) fn send(&self, request: Request) -> Result<(), Error> {
        self.queue.push(request).map_err(|_| Error::Stopped)?;
        self.ring();
        Ok(())
    }

    fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            // A full socket buffer means a wake-up is already pending.
            let _ = (&self.bell).write(&[1]);
        }
    }
}

impl Drop for Commands {
    fn drop(&mut self) {
        // The driver reads this as a stop.
        self.queue.close();
        self.ring();
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

/// Everything the driver needs beyond the state machine's own configuration.
pub(crate) struct Setup {
    pub config: Config,
    pub iface: Interface,
    pub beacon_port: u16,
    pub mailbox_port: Option<u16>,
    pub advertised_endpoint: Option<String>,
    pub stop_linger: Duration,
}

/// A running driver as the handle sees it.
pub(crate) struct Running {
    pub thread: JoinHandle<()>,
    pub commands: Commands,
    pub core: Arc<Mutex<Core>>,
    pub events: Arc<Queue<Event>>,
    pub directory: Arc<Mutex<Directory>>,
    pub endpoint: String,
}

const COMMAND_QUEUE: usize = 16 * 1024;
/// Commands carried out per turn of the loop.
const BATCH_COMMANDS: usize = 4096;
/// Inputs handled per source before the loop looks at the others again, so no source can
/// starve the timers or the rest.
const BATCH: usize = 512;

/// The state machine and everything its outputs go to: the DEALERs, the beacon sender,
/// the event queue and the directory. Both the driver thread and application threads
/// (for whisper, shout, join and leave) work on it, one at a time under its mutex.
///
/// Why application threads send themselves: handing every send to the driver thread cost
/// two thread hand-offs per round trip and put a third busy thread on the sending side,
/// which on two cores was the largest gap to raw libzmq (BENCHMARKS.md). libzmq sockets
/// may move between threads given a full memory barrier, which the mutex is; the ROUTER
/// stays with the driver thread, which polls it without holding the lock. Those commands
/// never make a deadline earlier (sending refreshes no timer), so the driver's planned
/// wake-up stays right without being told.
pub(crate) struct Core {
    state: NodeState,
    /// None once the driver has shut down: commands then fail with `Stopped`.
    ctx: Option<zmq::Context>,
    dealers: UuidMap<zmq::Socket>,
    udp: UdpSocket,
    beacon_to: SocketAddrV4,
    events: Arc<Queue<Event>>,
    /// Events on their way to the application, handed over together.
    outgoing: VecDeque<Event>,
    directory: Arc<Mutex<Directory>>,
    /// The driver's latest clock read. Commands are handled with it: they read no timer,
    /// and a clock read per whisper was 3% of a sender's CPU.
    clock: Instant,
}

impl Core {
    /// Carries out a command on the caller's thread.
    pub(crate) fn command(&mut self, cmd: Command) -> Result<(), Error> {
        if self.ctx.is_none() {
            return Err(Error::Stopped);
        }
        let result = self.state.handle_command(self.clock, cmd);
        self.flush();
        self.publish();
        result.map_err(Error::from)
    }

    /// Carries out the transmits, moves events to `outgoing` (updating the directory
    /// first) and writes the log.
    fn flush(&mut self) {
        self.flush_transmits();
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
            self.log(&line);
        }
    }

    /// Hands `outgoing` to the application (one lock, a wake-up only if it sleeps).
    fn publish(&mut self) {
        self.events.push_all(&mut self.outgoing);
    }

    fn flush_transmits(&mut self) {
        while let Some(t) = self.state.poll_transmit() {
            match t {
                Transmit::Connect { peer, endpoint } => {
                    if let Err(e) = self.connect(peer, &endpoint) {
                        self.log(&format!("connect to {endpoint} failed: {e}"));
                        self.state.handle_send_failed(Instant::now(), &peer);
                    }
                }
                Transmit::Send { peer, frames } => {
                    let Some(dealer) = self.dealers.get(&peer) else {
                        continue;
                    };
                    if let Err(e) = send_frames(dealer, frames) {
                        self.log(&format!("send to {} failed: {e}", uuid_hex(&peer)));
                        self.state.handle_send_failed(Instant::now(), &peer);
                    }
                }
                Transmit::SendGroup {
                    mut header,
                    members,
                    content,
                } => {
                    for (peer, sequence) in members {
                        let Some(dealer) = self.dealers.get(&peer) else {
                            continue;
                        };
                        header[SEQUENCE_BYTES].copy_from_slice(&sequence.to_be_bytes());
                        if let Err(e) = send_shared(dealer, &header, &content) {
                            self.log(&format!("send to {} failed: {e}", uuid_hex(&peer)));
                            self.state.handle_send_failed(Instant::now(), &peer);
                        }
                    }
                }
                Transmit::Disconnect { peer } => {
                    // Dropping the DEALER closes it; linger 0 was set at connect.
                    self.dealers.remove(&peer);
                }
                Transmit::Beacon(bytes) => {
                    if let Err(e) = self.udp.send_to(&bytes, self.beacon_to) {
                        self.log(&format!("beacon to {} failed: {e}", self.beacon_to));
                    }
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
        // The reference's queue: expired timeout in ms x 100 messages, and never block.
        let expired_ms = self.state.config().timers.expired.as_millis();
        dealer.set_sndhwm(i32::try_from(expired_ms * 100).unwrap_or(i32::MAX))?;
        dealer.set_sndtimeo(0)?;
        dealer.set_linger(0)?;
        dealer.connect(endpoint)?;
        self.dealers.insert(peer, dealer);
        Ok(())
    }

    fn log(&self, line: &str) {
        log(&self.state, line);
    }
}

fn log(state: &NodeState, line: &str) {
    if state.config().verbose {
        let id = uuid_hex(&state.config().uuid);
        eprintln!("zre[{}]: {line}", &id[..8]);
    }
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
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
    router.set_rcvhwm(0).map_err(zmq_err("set rcvhwm"))?;
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

    let udp = beacon_socket(setup.beacon_port)?;
    let udp_send = udp.try_clone().map_err(io_err("beacon socket"))?;

    let mut config = setup.config;
    config.endpoint = setup.advertised_endpoint.unwrap_or_else(|| bound.clone());
    config.beacon_port = mailbox_port;
    let endpoint = config.endpoint.clone();

    let queue = Queue::new(COMMAND_QUEUE);
    let (bell, bell_rx) = UnixStream::pair().map_err(io_err("create doorbell"))?;
    bell.set_nonblocking(true).map_err(io_err("doorbell"))?;
    bell_rx.set_nonblocking(true).map_err(io_err("doorbell"))?;
    let rung = Arc::new(AtomicBool::new(false));
    let events = Queue::new(usize::MAX);
    let directory = Arc::new(Mutex::new(Directory::default()));
    let thread_name = format!("zre-{}", &uuid_hex(&config.uuid)[..8]);

    let core = Arc::new(Mutex::new(Core {
        state: NodeState::new(config, Instant::now()),
        ctx: Some(ctx),
        dealers: Default::default(),
        udp: udp_send,
        beacon_to: SocketAddrV4::new(setup.iface.broadcast, setup.beacon_port),
        events: events.clone(),
        outgoing: VecDeque::new(),
        directory: directory.clone(),
        clock: Instant::now(),
    }));
    let driver = Driver {
        core: core.clone(),
        router,
        udp,
        iface: setup.iface,
        requests: DriverEnd(queue.clone()),
        batch: VecDeque::new(),
        bell: bell_rx,
        rung: rung.clone(),
        _close_events: DriverEnd(events.clone()),
        stop_linger: setup.stop_linger,
        udp_buf: vec![0u8; 2048],
        identity: zmq::Message::new(),
        frame: zmq::Message::new(),
        part: zmq::Message::new(),
    };
    let thread = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || driver.run())
        .map_err(io_err("spawn driver thread"))?;
    Ok(Running {
        thread,
        commands: Commands { queue, bell, rung },
        core,
        events,
        directory,
        endpoint,
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
    /// Only this thread touches the mailbox, so it is polled without the core's lock.
    router: zmq::Socket,
    udp: UdpSocket,
    iface: Interface,
    requests: DriverEnd<Request>,
    /// Requests taken from the queue and not yet carried out.
    batch: VecDeque<Request>,
    bell: UnixStream,
    rung: Arc<AtomicBool>,
    /// Closes the event queue when the driver ends, however it ends (never read).
    _close_events: DriverEnd<Event>,
    stop_linger: Duration,
    udp_buf: Vec<u8>,
    /// Receive buffers reused for every mailbox message.
    identity: zmq::Message,
    frame: zmq::Message,
    part: zmq::Message,
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
            let next = {
                let mut core = lock(&core);
                if ready.mailbox {
                    self.read_mailbox(&mut core);
                }
                if ready.beacon {
                    self.read_beacons(&mut core);
                }
                let pending = !self.batch.is_empty();
                if (ready.bell || pending) && stop_by.is_none() && self.read_commands(&mut core) {
                    let now = Instant::now();
                    core.state.handle_stop_request(now);
                    stop_by = Some(now + self.stop_linger);
                }
                let now = Instant::now();
                core.clock = now;
                if due.is_some_and(|t| t <= now) {
                    core.state.handle_timeout(now);
                }
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
                // Last thing under the lock: an application woken by these events and
                // sending at once then rarely finds the lock taken.
                core.publish();
                match (due, stop_by) {
                    (Some(t), Some(d)) => Some(t.min(d)),
                    (t, d) => t.or(d),
                }
            };
            let timeout_ms = match next {
                // Requests left over from the last batch: look again at once.
                _ if !self.batch.is_empty() && stop_by.is_none() => 0,
                Some(t) => {
                    // Round up: waking a millisecond early would spin until the deadline.
                    let d = t.saturating_duration_since(Instant::now());
                    (d.as_micros().div_ceil(1000)) as i64
                }
                None => -1,
            };
            // Once stopping, commands are no longer read.
            let bell_events = if stop_by.is_some() {
                zmq::PollEvents::empty()
            } else {
                zmq::POLLIN
            };
            let mut items = [
                self.router.as_poll_item(zmq::POLLIN),
                zmq::PollItem::from_fd(self.udp.as_raw_fd(), zmq::POLLIN),
                zmq::PollItem::from_fd(self.bell.as_raw_fd(), bell_events),
            ];
            if let Err(e) = zmq::poll(&mut items, timeout_ms) {
                if e != zmq::Error::EINTR {
                    self.fatal(&format!("poll: {e}"));
                    return;
                }
            }
            ready = Ready {
                mailbox: items[0].is_readable(),
                beacon: items[1].is_readable(),
                bell: items[2].is_readable(),
            };
        }
    }

    fn read_mailbox(&mut self, core: &mut Core) {
        // One clock read per batch: the batch takes well under a millisecond.
        let now = Instant::now();
        for _ in 0..BATCH {
            // The routing id and the ZRE frame are read into reused messages; only the
            // content, which goes to the application, becomes owned bytes.
            match self.router.recv(&mut self.identity, zmq::DONTWAIT) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => {
                    core.log(&format!("mailbox receive failed: {e}"));
                    break;
                }
            }
            if !self.identity.get_more() {
                // An identity with nothing after it: nothing to decode.
                core.state
                    .handle_message(now, &self.identity, &[], Vec::new());
                continue;
            }
            // A multipart message arrives whole: the other parts are there already.
            if let Err(e) = self.router.recv(&mut self.frame, 0) {
                core.log(&format!("mailbox receive failed: {e}"));
                break;
            }
            let mut content = Vec::new();
            let mut more = self.frame.get_more();
            while more {
                match self.router.recv(&mut self.part, 0) {
                    Ok(()) => {
                        content.push(self.part.to_vec());
                        more = self.part.get_more();
                    }
                    Err(e) => {
                        core.log(&format!("mailbox receive failed: {e}"));
                        break;
                    }
                }
            }
            core.state
                .handle_message(now, &self.identity, &self.frame, content);
            // Replies (PING-OK, HELLO) go out while the batch is read, not after it.
            core.flush_transmits();
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
                    core.log(&format!("beacon receive failed: {e}"));
                    break;
                }
            }
        }
    }

    /// Returns true when the application asked to stop (or went away).
    fn read_commands(&mut self, core: &mut Core) -> bool {
        let mut buf = [0u8; 64];
        while matches!((&self.bell).read(&mut buf), Ok(n) if n > 0) {}
        self.rung.store(false, Ordering::Release);
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
                    let _ = reply.send(core.state.stats());
                }
                Some(Request::Stop) => return true,
                None => return closed,
            }
            // Keep the outgoing queue short while a burst of commands is read.
            core.flush_transmits();
        }
        false
    }

    /// Closes everything once peers acknowledged our last messages (or `deadline` passed),
    /// then sends the port-0 beacon.
    fn shutdown(self, deadline: Instant) {
        let core = self.core.clone();
        let mut core = lock(&core);
        let now = Instant::now();
        // Each DEALER may flush what it still holds until the stop deadline.
        let left = deadline.saturating_duration_since(now);
        let linger = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        for dealer in core.dealers.values() {
            let _ = dealer.set_linger(linger);
        }
        let leaving = core.state.handle_stop(now);
        core.flush_transmits();
        // From here on, commands fail with `Stopped`.
        let ctx = core.ctx.take();
        let dealers = std::mem::take(&mut core.dealers);
        drop(core);
        let Driver { router, udp, .. } = self;
        drop(router);
        drop(dealers);
        // Terminating the context waits until the DEALERs flushed or their linger ran out.
        drop(ctx);
        // Only now say goodbye: peers that see our port-0 beacon remove us at once, so it
        // must not overtake the messages above.
        let beacon_to = {
            let mut core = lock(&self.core);
            core.flush();
            core.publish();
            core.beacon_to
        };
        let _ = udp.send_to(&leaving, beacon_to);
    }

    fn fatal(&mut self, what: &str) {
        let mut core = lock(&self.core);
        core.log(&format!("driver stopping: {what}"));
        core.state.handle_stop(Instant::now());
        core.ctx = None;
        core.dealers.clear();
        core.flush();
        core.publish();
    }
}

fn send_frames(dealer: &zmq::Socket, frames: Vec<Vec<u8>>) -> Result<(), zmq::Error> {
    let last = frames.len() - 1;
    for (i, frame) in frames.into_iter().enumerate() {
        let more = if i < last { zmq::SNDMORE } else { 0 };
        // Small frames are copied into the message itself; large ones are handed over
        // without a copy.
        if frame.len() <= 64 {
            dealer.send(&frame[..], zmq::DONTWAIT | more)?;
        } else {
            dealer.send(frame, zmq::DONTWAIT | more)?;
        }
    }
    Ok(())
}

/// A shout's frames for one member: the header, then the content all members share (each
/// frame is copied into this member's message; small ones live inside the message, no
/// allocation).
fn send_shared(dealer: &zmq::Socket, header: &[u8], content: &[Vec<u8>]) -> Result<(), zmq::Error> {
    let more = if content.is_empty() { 0 } else { zmq::SNDMORE };
    dealer.send(header, zmq::DONTWAIT | more)?;
    let last = content.len().saturating_sub(1);
    for (i, frame) in content.iter().enumerate() {
        let more = if i < last { zmq::SNDMORE } else { 0 };
        dealer.send(&frame[..], zmq::DONTWAIT | more)?;
    }
    Ok(())
}
