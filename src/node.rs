//! The public handle: [`Builder`] to configure and start a node, [`Node`] to use it,
//! [`Events`] to hear from it.
//!
//! ```no_run
//! let node = zre::Node::builder().name("demo").interface("lo").port(45670).start()?;
//! node.join("GLOBAL")?;
//! for event in node.events() {
//!     println!("{event:?}");
//! }
//! # Ok::<(), zre::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::driver::{self, Commands, Core, Directory, Request, Setup, Watch};
use crate::error::Error;
use crate::iface;
use crate::proto::codec::check_string;
use crate::proto::event::{Content, Event};
use crate::proto::node::{Command, Config, Timers};
use crate::queue::Queue;

/// The default UDP beacon port, as in Zyre.
pub const DEFAULT_PORT: u16 = 5670;

/// Configures a node; [`Builder::start`] starts it.
#[derive(Debug, Clone)]
pub struct Builder {
    uuid: Option<Uuid>,
    name: Option<String>,
    headers: Vec<(String, String)>,
    port: u16,
    timers: Timers,
    interface: Option<String>,
    mailbox_port: Option<u16>,
    advertised_endpoint: Option<String>,
    verbose: bool,
    max_pending: usize,
    stop_linger: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            uuid: None,
            name: None,
            headers: Vec::new(),
            port: DEFAULT_PORT,
            timers: Timers::default(),
            interface: None,
            mailbox_port: None,
            advertised_endpoint: None,
            verbose: false,
            max_pending: 32,
            stop_linger: Duration::from_secs(1),
        }
    }
}

impl Builder {
    /// The node's name (default: the first 6 hex digits of its UUID, as Zyre does).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Use this UUID instead of a random one.
    pub fn uuid(mut self, uuid: Uuid) -> Self {
        self.uuid = Some(uuid);
        self
    }

    /// Adds a header sent to every peer in HELLO.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.headers.retain(|(k, _)| *k != key);
        self.headers.push((key, value.into()));
        self
    }

    /// The UDP beacon port (default 5670).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How often to beacon (default 1 s).
    pub fn interval(mut self, d: Duration) -> Self {
        self.timers.interval = d;
        self
    }

    /// A peer quiet this long is reported EVASIVE (default 5 s).
    pub fn evasive_timeout(mut self, d: Duration) -> Self {
        self.timers.evasive = d;
        self
    }

    /// A peer quiet this long is reported SILENT (default: evasive + 20%).
    pub fn silent_timeout(mut self, d: Duration) -> Self {
        self.timers.silent = Some(d);
        self
    }

    /// A peer quiet this long is removed with EXIT (default 30 s).
    pub fn expired_timeout(mut self, d: Duration) -> Self {
        self.timers.expired = d;
        self
    }

    /// The interface, by name or IPv4 address (default: `ZRE_INTERFACE`, `ZSYS_INTERFACE`,
    /// then the first up, broadcast-capable, non-loopback interface).
    pub fn interface(mut self, name_or_ip: impl Into<String>) -> Self {
        self.interface = Some(name_or_ip.into());
        self
    }

    /// Bind the mailbox on this TCP port instead of an ephemeral one.
    pub fn mailbox_port(mut self, port: u16) -> Self {
        self.mailbox_port = Some(port);
        self
    }

    /// Tell peers to connect here instead of the bound endpoint (behind NAT, for example).
    pub fn advertised_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.advertised_endpoint = Some(endpoint.into());
        self
    }

    /// Log protocol decisions on stderr.
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// At most this many unproven peers may be held, each with a DEALER (default 32).
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// How long `stop` waits for queued messages to leave (default 1 s).
    pub fn stop_linger(mut self, d: Duration) -> Self {
        self.stop_linger = d;
        self
    }

    /// Starts the node: binds its mailbox and beacon socket and begins discovery.
    pub fn start(self) -> Result<Node, Error> {
        let uuid = self.uuid.unwrap_or_else(Uuid::new_v4);
        let name = self
            .name
            .unwrap_or_else(|| crate::uuid_hex(&uuid)[..6].to_string());
        check_string("name", &name)?;
        for (k, _) in &self.headers {
            check_string("header key", k)?;
        }
        let t = &self.timers;
        if t.interval.is_zero() || t.evasive.is_zero() || t.expired.is_zero() {
            return Err(Error::Config("timers must be greater than zero".into()));
        }
        let iface = iface::choose(self.interface.as_deref())?;
        let mut config = Config::new(uuid, name.clone(), String::new(), 0);
        config.headers = self.headers;
        config.timers = self.timers;
        config.max_pending = self.max_pending;
        config.verbose = self.verbose;
        let running = driver::start(Setup {
            config,
            iface,
            beacon_port: self.port,
            mailbox_port: self.mailbox_port,
            advertised_endpoint: self.advertised_endpoint,
            stop_linger: self.stop_linger,
        })?;
        Ok(Node {
            uuid,
            name,
            endpoint: running.endpoint,
            commands: running.commands,
            core: running.core,
            events: running.events,
            inbox: Mutex::new(VecDeque::new()),
            reader: Mutex::new(()),
            directory: running.directory,
            thread: Mutex::new(Some(running.thread)),
        })
    }
}

/// A running ZRE node. Cheap to share between threads (`&Node` is `Sync`); dropping it
/// stops the node cleanly.
pub struct Node {
    uuid: Uuid,
    name: String,
    endpoint: String,
    /// Requests that go through the driver thread (stop, static peers, stats).
    commands: Commands,
    /// Whisper, shout, join and leave are carried out on the caller's thread under this
    /// lock (see `driver::Core` for why).
    core: Arc<Mutex<Core>>,
    events: Arc<Queue<Event>>,
    /// Events taken from the driver's queue in one batch and not yet returned.
    inbox: Mutex<VecDeque<Event>>,
    /// Held by the thread that reads the mailbox while it waits for events.
    reader: Mutex<()>,
    directory: Arc<Mutex<Directory>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("uuid", &crate::uuid_hex(&self.uuid))
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Node {
    /// A builder with Zyre's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Our UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// Our name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Our mailbox endpoint as announced to peers.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn dir(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn command(&self, cmd: Command) -> Result<(), Error> {
        driver::command(&self.core, cmd)
    }

    /// Joins a group (nothing happens if already joined).
    pub fn join(&self, group: &str) -> Result<(), Error> {
        check_string("group", group)?;
        self.command(Command::Join(group.to_string()))
    }

    /// Leaves a group (nothing happens if not joined).
    pub fn leave(&self, group: &str) -> Result<(), Error> {
        check_string("group", group)?;
        self.command(Command::Leave(group.to_string()))
    }

    /// Sends multipart content to one peer. Fails if the peer is not (or no longer) known.
    ///
    /// Waits while the link to the peer is backed up (10,000 messages on their way, and
    /// the peer not reading them fast enough), as a ZeroMQ socket's send does; it returns
    /// once the message is queued, or fails if the peer leaves or the node stops
    /// meanwhile. Nothing is dropped. Other threads, other peers and the protocol's own
    /// messages do not wait for it.
    pub fn whisper(&self, peer: Uuid, content: Content) -> Result<(), Error> {
        self.command(Command::Whisper { peer, content })
    }

    /// Sends one text frame to one peer.
    pub fn whisper_str(&self, peer: Uuid, text: &str) -> Result<(), Error> {
        self.whisper(peer, vec![text.as_bytes().to_vec()])
    }

    /// Sends multipart content to every peer in `group` (none there: nothing is sent).
    ///
    /// Like [`Node::whisper`], waits while the link to any member is backed up: a group
    /// goes at the pace of its slowest reader, and no member misses a shout.
    pub fn shout(&self, group: &str, content: Content) -> Result<(), Error> {
        check_string("group", group)?;
        self.command(Command::Shout {
            group: group.to_string(),
            content,
        })
    }

    /// Sends one text frame to every peer in `group`.
    pub fn shout_str(&self, group: &str, text: &str) -> Result<(), Error> {
        self.shout(group, vec![text.as_bytes().to_vec()])
    }

    /// Connects to a peer known by other means than beacons (a static peer).
    pub fn require_peer(&self, uuid: Uuid, endpoint: &str) -> Result<(), Error> {
        self.commands
            .send(Request::Discovered(uuid, endpoint.to_string()))
    }

    /// The peers that have entered and not exited.
    pub fn peers(&self) -> Vec<Uuid> {
        let mut v: Vec<Uuid> = self.dir().peers.keys().copied().collect();
        v.sort();
        v
    }

    /// The peers in `group`.
    pub fn peers_by_group(&self, group: &str) -> Vec<Uuid> {
        let mut v: Vec<Uuid> = self
            .dir()
            .peers
            .iter()
            .filter(|(_, p)| p.groups.contains(group))
            .map(|(u, _)| *u)
            .collect();
        v.sort();
        v
    }

    /// The groups we are in.
    pub fn own_groups(&self) -> BTreeSet<String> {
        self.dir().own_groups.clone()
    }

    /// The groups a peer is in.
    pub fn peer_groups(&self, peer: Uuid) -> Option<BTreeSet<String>> {
        self.dir().peers.get(&peer).map(|p| p.groups.clone())
    }

    /// A peer's mailbox endpoint.
    pub fn peer_address(&self, peer: Uuid) -> Option<String> {
        self.dir().peers.get(&peer).map(|p| p.endpoint.clone())
    }

    /// A peer's name.
    pub fn peer_name(&self, peer: Uuid) -> Option<String> {
        self.dir().peers.get(&peer).map(|p| p.name.to_string())
    }

    /// One of a peer's headers.
    pub fn peer_header_value(&self, peer: Uuid, key: &str) -> Option<String> {
        self.dir()
            .peers
            .get(&peer)
            .and_then(|p| p.headers.get(key).cloned())
    }

    /// All of a peer's headers.
    pub fn peer_headers(&self, peer: Uuid) -> Option<BTreeMap<String, String>> {
        self.dir().peers.get(&peer).map(|p| p.headers.clone())
    }

    /// Counters of what the node received and dropped (a round trip to the driver);
    /// `Err(Stopped)` once the node has stopped.
    pub fn stats(&self) -> Result<crate::proto::node::Stats, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commands.send(Request::Stats(tx))?;
        rx.recv().map_err(|_| Error::Stopped)
    }

    /// The events, as a blocking iterator that ends after STOP.
    pub fn events(&self) -> Events<'_> {
        Events { node: self }
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` on timeout.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Event>, Error> {
        self.next_event(Some(timeout))
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<Option<Event>, Error> {
        self.next_event(Some(Duration::ZERO))
    }

    /// The next event, blocking; `Err(Stopped)` once the node stopped and every event
    /// (STOP last) was read.
    pub fn recv(&self) -> Result<Event, Error> {
        self.next_event(None)?.ok_or(Error::Stopped)
    }

    /// The next event already here (inbox, then the event queue), without waiting:
    /// `Err(Stopped)` once the node has stopped and everything was read.
    fn take_event(&self) -> Result<Option<Event>, Error> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = inbox.pop_front() {
            return Ok(Some(e));
        }
        let closed = self.events.take_all(&mut inbox);
        match inbox.pop_front() {
            Some(e) => Ok(Some(e)),
            None if closed => Err(Error::Stopped),
            None => Ok(None),
        }
    }

    /// Events come in batches: from the inbox, then from the event queue, then from the
    /// mailbox, which a waiting thread reads itself (the driver then leaves the mailbox
    /// to it: no hand-off between threads per message). One thread at a time is that
    /// reader; others wait on the queue, and no thread holds the inbox while it waits,
    /// so `try_recv` on one thread never waits for `recv` on another.
    fn next_event(&self, timeout: Option<Duration>) -> Result<Option<Event>, Error> {
        if let Some(e) = self.take_event()? {
            return Ok(Some(e));
        }
        if timeout == Some(Duration::ZERO) {
            // A poll for events (`try_recv`, often once per send in a busy loop) stays
            // cheap: it takes what the queue has and leaves the mailbox to its reader.
            return Ok(None);
        }
        // A timeout too long to add is no timeout.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let reader = match self.reader.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if reader.is_some() {
                let result = self.read_and_wait(deadline);
                drop(reader);
                // Another thread may be waiting on the queue: it becomes the reader.
                self.events.wake_if_waiting();
                return result;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(None);
            }
            self.events.wait(left);
            if let Some(e) = self.take_event()? {
                return Ok(Some(e));
            }
        }
    }

    /// [`Node::next_event`] for the thread that reads the mailbox.
    fn read_and_wait(&self, deadline: Option<Instant>) -> Result<Option<Event>, Error> {
        let mut woken = false;
        let result = loop {
            let watch = driver::lock(&self.core).serve_application(deadline, woken);
            woken = false;
            match self.take_event() {
                Ok(None) => {}
                other => break other,
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                break Ok(None);
            }
            match watch {
                Watch::Again => woken = true,
                Watch::Fd(fd) => woken = self.events.wait_polling(Some(fd), left),
                Watch::Closing => {
                    self.events.wait_polling(None, left);
                }
            }
        };
        let with_event = matches!(result, Ok(Some(_)));
        if driver::lock(&self.core).application_left(with_event) {
            // We may be busy with this event for a while and the driver's wait leaves the
            // mailbox to us for longer than that grace: wake it to look.
            self.commands.ring();
        }
        result
    }

    /// Stops the node: what was queued is flushed (within the stop linger), peers are told
    /// by a port-0 beacon, and STOP is the last event. Idempotent.
    pub fn stop(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = self.commands.send(Request::Stop);
            let _ = t.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Blocking iterator over a node's events; ends after STOP.
#[derive(Debug)]
pub struct Events<'a> {
    node: &'a Node,
}

impl Iterator for Events<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.node.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Node>();
    }

    #[test]
    fn bad_settings_are_errors_before_anything_starts() {
        let long = "x".repeat(256);
        assert!(matches!(
            Node::builder().name(long.clone()).interface("lo").start(),
            Err(Error::Encode(_))
        ));
        assert!(matches!(
            Node::builder().header(long, "v").interface("lo").start(),
            Err(Error::Encode(_))
        ));
        assert!(matches!(
            Node::builder()
                .interval(Duration::ZERO)
                .interface("lo")
                .start(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Node::builder().interface("no-such-if0").start(),
            Err(Error::Interface(_))
        ));
    }
}
