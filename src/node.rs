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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::driver::{self, Commands, Core, Directory, Net, Request, Setup, Watch};
use crate::error::Error;
use crate::iface;
use crate::proto::codec::check_string;
use crate::proto::event::{Content, Event};
use crate::proto::node::{Command, Config, Timers};
use crate::queue::Queue;

/// What the node knows about a peer that has entered: a snapshot, taken by
/// [`Node::peer_info`] and [`Node::peer_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Its UUID.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// Its mailbox endpoint.
    pub endpoint: String,
    /// Its headers.
    pub headers: BTreeMap<String, String>,
    /// The groups it is in.
    pub groups: BTreeSet<String>,
    /// When it entered (when the node handed the application its ENTER).
    pub since: std::time::SystemTime,
    /// The round trip of the last ZRE PING it answered (ours, or one sent by
    /// [`Node::ping`]); None until one was.
    pub rtt: Option<Duration>,
}

/// Events an application thread takes from the driver's queue at once. The event limit
/// counts what is in the queue, so this bounds what waits outside it.
const TAKE_BATCH: usize = 1024;

/// The default UDP beacon port, as in Zyre.
pub const DEFAULT_PORT: u16 = 5670;

/// Where the node's UUID comes from.
#[derive(Debug, Clone)]
enum Identity {
    Random,
    Uuid(Uuid),
    File(std::path::PathBuf),
}

/// Configures a node; [`Builder::start`] starts it.
#[derive(Debug, Clone)]
pub struct Builder {
    identity: Identity,
    beacon: bool,
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
    event_limit: usize,
    static_peers: Vec<String>,
    curve: Option<crate::curve::Cert>,
    allow: Option<std::path::PathBuf>,
    gossip_bind: Vec<String>,
    gossip_connect: Vec<String>,
    ipv6: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            identity: Identity::Random,
            beacon: true,
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
            event_limit: 10_000,
            static_peers: Vec::new(),
            curve: None,
            allow: None,
            gossip_bind: Vec::new(),
            gossip_connect: Vec::new(),
            ipv6: false,
        }
    }
}

impl Builder {
    /// The node's name (default: the first 6 hex digits of its UUID, as Zyre does).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Use this UUID instead of a random one. Replaces an earlier
    /// [`Builder::identity_file`].
    ///
    /// A node that restarts with the UUID it had is, to its peers, the same peer back
    /// again, yet with nothing of its past: they report it leaving (EXIT) and entering
    /// (ENTER) anew, as Zyre does, and what it had joined must be joined again. After a
    /// clean stop its peers saw EXIT at once (its port-0 beacon); after a crash, a peer
    /// still holding it sees EXIT the moment the new process says HELLO, then ENTER once
    /// it has answered a PING. A peer never holds two copies of one UUID.
    pub fn uuid(mut self, uuid: Uuid) -> Self {
        self.identity = Identity::Uuid(uuid);
        self
    }

    /// Keep the node's UUID in this file, so that it survives restarts (see
    /// [`Builder::uuid`] for what peers see then). [`Builder::start`] reads it; when it
    /// does not exist it is created with a random UUID: the 32 upper-case hex digits and
    /// a newline, mode 0644, written beside it and moved into place whole (of two nodes
    /// that create it at once, both use the UUID that landed). It may also be written by
    /// hand, with the digits in either case and the hyphens of `8-4-4-4-12` or not.
    /// A file that holds anything else is [`Error::Config`], naming the file; one that
    /// cannot be read or written is [`Error::Io`]. Replaces an earlier [`Builder::uuid`].
    pub fn identity_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.identity = Identity::File(path.into());
        self
    }

    /// Adds a header sent to every peer in HELLO.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.headers.retain(|(k, _)| *k != key);
        self.headers.push((key, value.into()));
        self
    }

    /// Discover peers by UDP beacon (default on). Off, the node opens no UDP socket at
    /// all: it neither sends nor hears beacons, and meets only the peers given to
    /// [`Node::require_peer`] and those that connect to it (from their own
    /// `require_peer`, for example). Without the port-0 goodbye beacon, its peers see it
    /// leave when it stops only after their expired timeout (30 s by default). The
    /// beacon port ([`Builder::port`]) is then unused.
    pub fn beacon(mut self, on: bool) -> Self {
        self.beacon = on;
        self
    }

    /// A static peer (repeatable): the node connects to this mailbox endpoint
    /// (`tcp://HOST:PORT`, as the peer announces it) and says HELLO; the peer's HELLO back
    /// tells its UUID, and it ENTERs once it answers our PING. Tried again with backoff
    /// while nobody answers, and again after the peer leaves. A bad endpoint makes
    /// [`Builder::start`] fail. See also [`Node::connect_peer`].
    pub fn peer(mut self, endpoint: impl Into<String>) -> Self {
        self.static_peers.push(endpoint.into());
        self
    }

    /// Be a zgossip hub on this endpoint (`tcp://IP:PORT`, repeatable): other nodes
    /// (ours, or Zyre's `zyre_gossip_connect`) connect here to learn of each other. The
    /// hub holds one tuple per node, UUID to mailbox endpoint, passes each new one to every
    /// connected node, and drops a node's tuple when its connection goes or its TTL (the
    /// expired timeout, refreshed every third) runs out. Works beside beacons or without
    /// them ([`Builder::beacon`]). See README, "Beyond one subnet".
    pub fn gossip_bind(mut self, endpoint: impl Into<String>) -> Self {
        self.gossip_bind.push(endpoint.into());
        self
    }

    /// Connect to the zgossip hub at this endpoint (repeatable; ours or CZMQ's, as Zyre's
    /// `zyre_gossip_bind` runs): publish our UUID and mailbox endpoint there, and connect
    /// to every peer it tells of, as to a beaconed one. The endpoint published is the
    /// advertised one if set ([`Builder::advertised_endpoint`]).
    pub fn gossip_connect(mut self, endpoint: impl Into<String>) -> Self {
        self.gossip_connect.push(endpoint.into());
        self
    }

    /// The UDP beacon port (default 5670).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How often to beacon (default 1 s). [`Builder::start`] checks every timer:
    /// `interval` at least 10 ms, `evasive` at least 100 ms, `evasive < silent <
    /// expired`, none longer than a day (see [`Timers::check`]).
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

    /// The interface, by name or IP address (an IPv6 one with [`Builder::ipv6`]) (default:
    /// `ZRE_INTERFACE`, `ZSYS_INTERFACE`, then the first up, broadcast-capable (IPv6:
    /// multicast-capable), non-loopback interface).
    pub fn interface(mut self, name_or_ip: impl Into<String>) -> Self {
        self.interface = Some(name_or_ip.into());
        self
    }

    /// Run over IPv6, as Zyre does with `ZSYS_IPV6=1` (default: IPv4). Beacons go to
    /// ff02::1 on the interface (hop limit 1) and only IPv6 beacons are heard; the mailbox
    /// binds the interface's first IPv6 address as the system lists it, global or
    /// link-local, as CZMQ chooses (or the one given to [`Builder::interface`]). Endpoints
    /// are written as Zyre writes them (`tcp://fe80::1%eth0:49152`); our HELLO carries
    /// ours without the zone, and a peer's link-local endpoint gets our interface as zone.
    /// The environment variable `ZSYS_IPV6` is read by the `zre-*` commands, not here.
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// Bind the mailbox on this TCP port instead of an ephemeral one (0: ephemeral). A
    /// port in use fails [`Builder::start`] with [`Error::Zmq`] naming the endpoint.
    pub fn mailbox_port(mut self, port: u16) -> Self {
        self.mailbox_port = Some(port);
        self
    }

    /// Tell peers to connect here instead of the bound endpoint (behind NAT or in a
    /// container, with [`Builder::mailbox_port`] forwarded to it). Sent in our HELLO and
    /// published by gossip, so peers beyond the subnet (gossip, static peers) connect
    /// here. Peers that hear our beacon connect to its source address instead (on the
    /// subnet the advertised address is often not reachable): one that got our HELLO
    /// before our beacon moves its link there as soon as it hears the beacon, so the
    /// endpoint a peer uses does not depend on which node started first.
    pub fn advertised_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.advertised_endpoint = Some(endpoint.into());
        self
    }

    /// Log protocol decisions on stderr. Lines are written by a thread of their own; when
    /// stderr does not keep up they are dropped ([`Node::log_lines_dropped`]), and a write
    /// that fails (a closed pipe) is ignored.
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

    /// At most about this many events wait for the application to read them (default
    /// 10,000). Past it the node stops reading its mailbox until the application takes
    /// events: unread messages stay in ZeroMQ's queue (1,000 per peer) and in TCP, and the
    /// senders' `whisper` and `shout` wait, so memory stays bounded however slowly the
    /// application reads. While one of this node's threads waits to send, the limit is
    /// four times as high, so two nodes that whisper to each other and read between sends
    /// never wait for each other for ever. Peers see a node that stops reading for longer
    /// than twice their expired timeout (60 s) leave. `Stats::receive_stalls` counts the
    /// stops.
    pub fn event_limit(mut self, n: usize) -> Self {
        self.event_limit = n.max(1);
        self
    }

    /// CURVE, as Zyre's `zyre_set_zcert`: encrypt and authenticate every link with this
    /// certificate's key pair (read one with [`crate::curve::Cert::load_secret`]). Our
    /// beacons become v3 and carry our public key, our HELLO says it in `X-PUBLICKEY`, the
    /// mailbox is a CURVE server and each link a CURVE client with the peer's key. Only
    /// CURVE nodes are met: plain nodes and ours ignore each other. Without
    /// [`Builder::allow`], any key is accepted, as in Zyre: links are encrypted, but
    /// anyone on the network who makes a key pair can join.
    ///
    /// [`Builder::start`] fails with [`Error::Config`] when the certificate has no secret
    /// key or its public key is not the secret key's (the node tries a handshake with
    /// itself), on a build whose libzmq has no CURVE ([`crate::curve::available`]; the error
    /// says how to build one), with static peers ([`Builder::peer`]), which have no key
    /// to connect with, and with gossip (not yet done with CURVE).
    pub fn curve(mut self, cert: crate::curve::Cert) -> Self {
        self.curve = Some(cert);
        self
    }

    /// With [`Builder::curve`]: accept only these peers' keys, from a directory of public
    /// certificates (as zauth reads one; other files there are skipped) or a file of Z85
    /// keys, one a line. Others are refused at the handshake (our ZAP handler) and their
    /// beacons ignored before any connection. The files are looked at every second and
    /// re-read when they change: a key added is accepted from then on; a key removed
    /// is refused, and a peer holding it is removed (EXIT). A path that does not read
    /// fails [`Builder::start`] ([`Error::Config`], naming it); a later change that does
    /// not read leaves the list as it was.
    pub fn allow(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.allow = Some(path.into());
        self
    }

    /// Starts the node: reads or creates its identity file if it has one, binds its
    /// mailbox and (unless [`Builder::beacon`] is off) its beacon socket, and begins
    /// discovery.
    pub fn start(self) -> Result<Node, Error> {
        let uuid = match &self.identity {
            Identity::Random => Uuid::new_v4(),
            Identity::Uuid(uuid) => *uuid,
            Identity::File(path) => crate::identity::load_or_create(path)?,
        };
        let name = self
            .name
            .unwrap_or_else(|| crate::uuid_hex(&uuid)[..6].to_string());
        check_string("name", &name)?;
        for (k, _) in &self.headers {
            check_string("header key", k)?;
        }
        self.timers.check().map_err(Error::Config)?;
        for endpoint in self
            .static_peers
            .iter()
            .chain(&self.gossip_bind)
            .chain(&self.gossip_connect)
            .chain(&self.advertised_endpoint)
        {
            crate::proto::node::check_endpoint(endpoint)?;
        }
        let gossips = !(self.gossip_bind.is_empty() && self.gossip_connect.is_empty());
        let curve = check_curve(self.curve, self.allow, &self.static_peers, gossips)?;
        let net = if self.ipv6 {
            Net::V6(iface::choose_v6(self.interface.as_deref())?)
        } else {
            Net::V4(iface::choose(self.interface.as_deref())?)
        };
        let mut config = Config::new(uuid, name.clone(), String::new(), 0);
        config.headers = self.headers;
        config.timers = self.timers;
        config.max_pending = self.max_pending;
        config.static_peers = self.static_peers;
        config.verbose = self.verbose;
        let running = driver::start(Setup {
            config,
            net,
            beacon_port: self.beacon.then_some(self.port),
            mailbox_port: self.mailbox_port,
            advertised_endpoint: self.advertised_endpoint,
            stop_linger: self.stop_linger,
            event_limit: self.event_limit,
            curve,
            gossip_bind: self.gossip_bind,
            gossip_connect: self.gossip_connect,
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
            stalled: running.stalled,
            thread: Mutex::new(Some(running.thread)),
        })
    }
}

/// What [`Builder::curve`] and [`Builder::allow`] need before the node starts.
fn check_curve(
    cert: Option<crate::curve::Cert>,
    allow: Option<std::path::PathBuf>,
    static_peers: &[String],
    gossips: bool,
) -> Result<Option<(crate::curve::Cert, Option<std::path::PathBuf>)>, Error> {
    let Some(cert) = cert else {
        return match allow {
            Some(_) => Err(Error::Config(
                "an allow-list needs CURVE (Builder::curve, --curve)".into(),
            )),
            None => Ok(None),
        };
    };
    if !crate::curve::available() {
        return Err(Error::Config(crate::curve::NOT_AVAILABLE.into()));
    }
    if cert.secret.is_none() {
        return Err(Error::Config(
            "CURVE needs a secret certificate (FILE_secret), not a public one".into(),
        ));
    }
    if !static_peers.is_empty() {
        return Err(Error::Config(
            "static peers (--peer) cannot be used with CURVE: their keys are not known".into(),
        ));
    }
    if gossips {
        return Err(Error::Config(
            "gossip cannot be used with CURVE yet (Zyre's `endpoint|key` tuples and a CURVE \
             hub are not implemented)"
                .into(),
        ));
    }
    Ok(Some((cert, allow)))
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
    /// Set while the mailbox waits for the application to take events (see
    /// [`Builder::event_limit`]): taking some rings the driver to read on.
    stalled: Arc<AtomicBool>,
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

    /// The ZeroMQ context the node's own sockets live on, for sockets of the
    /// application's beside them (inproc ones included), as Zyre's users do with CZMQ.
    /// `Err(Stopped)` once the node has stopped.
    ///
    /// A stopping node lets its links flush (up to the stop linger) while the context
    /// terminates; with a clone held here the context outlives the node, so libzmq goes
    /// on flushing them in the background instead. Close your sockets on it before you
    /// drop the last clone: terminating a context waits for its sockets.
    ///
    /// With CURVE ([`Builder::curve`]) the node's ZAP handler is bound on this context: it
    /// refuses every authentication request but the mailbox's, so a server socket of
    /// yours here that uses a security mechanism is refused too. Use a context of your
    /// own for those.
    pub fn zmq_context(&self) -> Result<zmq::Context, Error> {
        let ctx = driver::lock(&self.core).zmq_context();
        ctx.ok_or_else(|| self.or_failure(Error::Stopped))
    }

    fn dir(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn command(&self, cmd: Command) -> Result<(), Error> {
        self.command_until(cmd, None)
    }

    /// A command whose wait for room on a backed-up link ends at `deadline`.
    fn command_until(&self, cmd: Command, deadline: Option<Instant>) -> Result<(), Error> {
        driver::command(&self.core, cmd, deadline).map_err(|e| self.or_failure(e))
    }

    /// A deadline `timeout` from now; one too far to compute is none.
    fn deadline(timeout: Duration) -> Option<Instant> {
        Instant::now().checked_add(timeout)
    }

    /// `Stopped` becomes `DriverFailed` when the driver ended by failing.
    fn or_failure(&self, e: Error) -> Error {
        match e {
            Error::Stopped => match &driver::lock(&self.core).failure {
                Some(why) => Error::DriverFailed(why.clone()),
                None => Error::Stopped,
            },
            e => e,
        }
    }

    /// The event queue is closed: the driver has ended. If it ended on its own (this
    /// handle did not stop it), it failed: a panic closes the queue as it unwinds, and the
    /// failure is recorded a moment later, before its thread ends. So wait for one or the
    /// other (not for the thread's end alone: it waits for us to leave the mailbox).
    fn ended(&self) -> Error {
        loop {
            // Looked at before the failure: a thread that has finished recorded it.
            let finished = self
                .thread
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_none_or(JoinHandle::is_finished);
            match self.or_failure(Error::Stopped) {
                e @ Error::DriverFailed(_) => return e,
                e if finished => return e,
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// Testing only (feature `fault-injection`): makes the driver thread panic, as a bug
    /// would.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn inject_driver_panic(&self) {
        let _ = self.commands.send(Request::InjectPanic);
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

    /// Contests the leadership of `group` (Zyre's draft `zyre_set_contest_in_group`),
    /// from now on and while we are in it: join it too (before or after). Each election
    /// ends with an [`Event::Leader`] naming the winner, the member with the lowest UUID
    /// among those that contest, and is held again whenever a member comes, and when the
    /// leader leaves the group, exits or says GOODBYE. Every node in the group takes part
    /// (ours and Zyre's; contesting or not): see README, "Leader election".
    pub fn contest(&self, group: &str) -> Result<(), Error> {
        check_string("group", group)?;
        self.command(Command::Contest(group.to_string()))
    }

    /// Sends multipart content to one peer. Fails if the peer is not (or no longer) known.
    ///
    /// Waits while the link to the peer is backed up (10,000 messages on their way, and
    /// the peer not reading them fast enough), as a ZeroMQ socket's send does; it returns
    /// once the message is queued, or fails if the peer leaves or the node stops
    /// meanwhile. Nothing is dropped. Other threads, other peers and the protocol's own
    /// messages do not wait for it.
    ///
    /// How long it may wait: as long as the peer keeps reading, however slowly (a link
    /// that moves keeps the peer alive). If the peer stops reading altogether, until it
    /// expires: at most twice the expired timeout (60 s by default) after its last
    /// message. [`Node::whisper_timeout`] sets a limit; [`Node::stop`] on another thread
    /// ends the wait with [`Error::Stopped`].
    ///
    /// Content needs at least one frame ([`Error::NoContent`]).
    pub fn whisper(&self, peer: Uuid, content: Content) -> Result<(), Error> {
        if content.is_empty() {
            return Err(Error::NoContent);
        }
        self.command(Command::Whisper { peer, content })
    }

    /// [`Node::whisper`], waiting at most `timeout` for room on a backed-up link; then
    /// [`Error::Timeout`], with nothing sent. `Duration::ZERO` never waits.
    pub fn whisper_timeout(
        &self,
        peer: Uuid,
        content: Content,
        timeout: Duration,
    ) -> Result<(), Error> {
        if content.is_empty() {
            return Err(Error::NoContent);
        }
        self.command_until(Command::Whisper { peer, content }, Self::deadline(timeout))
    }

    /// Sends one text frame to one peer.
    pub fn whisper_str(&self, peer: Uuid, text: &str) -> Result<(), Error> {
        self.whisper(peer, vec![text.as_bytes().to_vec()])
    }

    /// Sends multipart content to every peer in `group` (none there: nothing is sent).
    ///
    /// Like [`Node::whisper`], waits while the link to any member is backed up: a group
    /// goes at the pace of its slowest reader, and no member misses a shout. How long it
    /// may wait is as for [`Node::whisper`], for each member in turn.
    ///
    /// Content needs at least one frame ([`Error::NoContent`]).
    pub fn shout(&self, group: &str, content: Content) -> Result<(), Error> {
        if content.is_empty() {
            return Err(Error::NoContent);
        }
        check_string("group", group)?;
        self.command(Command::Shout {
            group: group.to_string(),
            content,
        })
    }

    /// [`Node::shout`], waiting at most `timeout` for room on the members' links; then
    /// [`Error::Timeout`], with nothing sent to anyone.
    pub fn shout_timeout(
        &self,
        group: &str,
        content: Content,
        timeout: Duration,
    ) -> Result<(), Error> {
        if content.is_empty() {
            return Err(Error::NoContent);
        }
        check_string("group", group)?;
        let cmd = Command::Shout {
            group: group.to_string(),
            content,
        };
        self.command_until(cmd, Self::deadline(timeout))
    }

    /// Sends one text frame to every peer in `group`.
    pub fn shout_str(&self, group: &str, text: &str) -> Result<(), Error> {
        self.shout(group, vec![text.as_bytes().to_vec()])
    }

    /// Waits until every peer has taken what we sent it so far, or `timeout` passes:
    /// `Ok(true)` once each ready peer's node has read our messages (it answered a PING
    /// sent after them; a peer that leaves meanwhile counts as done), `Ok(false)` on
    /// timeout. A flush that timed out is still under way: calling again waits on for the
    /// same answers. Zyre has no such call; it lets a command that sends and exits know
    /// its messages were delivered before it says goodbye. While it waits, the node reads
    /// on past its event limit, as for a send that waits.
    pub fn flush(&self, timeout: Duration) -> Result<bool, Error> {
        driver::flush(&self.core, Self::deadline(timeout)).map_err(|e| self.or_failure(e))
    }

    /// Connects to a peer known by other means than beacons (a static peer).
    pub fn require_peer(&self, uuid: Uuid, endpoint: &str) -> Result<(), Error> {
        self.commands
            .send(Request::Discovered(uuid, endpoint.to_string()))
            .map_err(|e| self.or_failure(e))
    }

    /// Adds a static peer by endpoint alone (see [`Builder::peer`]): the node connects
    /// to `endpoint` (`tcp://HOST:PORT`) and learns the UUID from the peer's HELLO.
    pub fn connect_peer(&self, endpoint: &str) -> Result<(), Error> {
        crate::proto::node::check_endpoint(endpoint)?;
        self.commands
            .send(Request::StaticPeer(endpoint.to_string()))
            .map_err(|e| self.or_failure(e))
    }

    /// The peers that have entered and not exited.
    pub fn peers(&self) -> Vec<Uuid> {
        let mut v: Vec<Uuid> = self.dir().peers.keys().copied().collect();
        v.sort();
        v
    }

    /// A snapshot of one peer that has entered and not exited.
    pub fn peer_info(&self, peer: Uuid) -> Option<PeerInfo> {
        self.peer_infos(|u| *u == peer).pop()
    }

    /// A snapshot of every peer that has entered and not exited, by UUID.
    pub fn peer_list(&self) -> Vec<PeerInfo> {
        self.peer_infos(|_| true)
    }

    fn peer_infos(&self, want: impl Fn(&Uuid) -> bool) -> Vec<PeerInfo> {
        let mut list: Vec<PeerInfo> = self
            .dir()
            .peers
            .iter()
            .filter(|(u, _)| want(u))
            .map(|(_, p)| p.clone())
            .collect();
        list.sort_by_key(|p| p.uuid);
        let uuids: Vec<Uuid> = list.iter().map(|p| p.uuid).collect();
        for (p, rtt) in list.iter_mut().zip(driver::rtts(&self.core, &uuids)) {
            p.rtt = rtt;
        }
        list
    }

    /// Measures the round trip to `peer`: sends it a ZRE PING and waits for its PING-OK,
    /// at most `timeout` ([`Error::Timeout`]). What is queued on the link ahead of either
    /// counts too, as for any message. Zyre has no such call; its zpinger sample measures
    /// with whispers instead.
    pub fn ping(&self, peer: Uuid, timeout: Duration) -> Result<Duration, Error> {
        driver::ping(&self.core, peer, Self::deadline(timeout)).map_err(|e| self.or_failure(e))
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
        self.dir().peers.get(&peer).map(|p| p.name.clone())
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
        self.commands
            .send(Request::Stats(tx))
            .map_err(|e| self.or_failure(e))?;
        rx.recv().map_err(|_| self.or_failure(Error::Stopped))
    }

    /// Verbose log lines (see [`Builder::verbose`]) dropped because stderr did not keep
    /// up (a slow or stuck reader): logging drops lines rather than stall the node. The
    /// count is for the whole process, whose nodes share one log writer.
    pub fn log_lines_dropped(&self) -> u64 {
        crate::log::dropped()
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
    /// (STOP last) was read. If the node's driver failed (a bug), `Err(DriverFailed)`
    /// once the events before the failure were read, and no STOP; peers were told we
    /// left, as in a stop.
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
        let closed = self.events.take_up_to(&mut inbox, TAKE_BATCH);
        // SeqCst, with the queue's length and the driver's swap: see `Queue::len`.
        if !inbox.is_empty() && self.stalled.load(Ordering::SeqCst) {
            // There is room for events again: the driver reads the mail left waiting.
            self.commands.ring();
        }
        match inbox.pop_front() {
            Some(e) => Ok(Some(e)),
            None if closed => Err(self.ended()),
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
        self.stop_request(None);
    }

    /// [`Node::stop`], giving what is queued at most `linger` to leave instead of the
    /// builder's stop linger: `Duration::ZERO` says goodbye at once and drops what a
    /// backed-up link still holds.
    pub fn stop_timeout(&self, linger: Duration) {
        self.stop_request(Some(linger));
    }

    fn stop_request(&self, linger: Option<Duration>) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = self.commands.send(Request::Stop(linger));
            let _ = t.join();
            // The verbose log's last lines (a stuck stderr does not hold us long).
            crate::log::flush(Duration::from_millis(500));
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

    #[test]
    fn timers_out_of_range_are_config_errors() {
        // Before: 1 ns beaconed 233,284 times a second, Duration::MAX (a natural "never")
        // panicked the driver thread, and evasive >= expired made peers flap.
        let ms = Duration::from_millis;
        let b = || Node::builder().interface("lo").port(47803);
        let cases = [
            (
                b().interval(Duration::from_nanos(1)),
                "interval (1ns) must be at least 10ms",
            ),
            (b().interval(Duration::MAX), "interval"),
            (b().expired_timeout(Duration::MAX), "expired"),
            (
                b().evasive_timeout(ms(1)).expired_timeout(ms(2)),
                "at least 100ms",
            ),
            (
                b().evasive_timeout(ms(10_000)).expired_timeout(ms(5_000)),
                "evasive (10s) must be shorter than expired (5s)",
            ),
            (b().silent_timeout(ms(4_000)), "silent (4s) must be longer"),
            (
                b().silent_timeout(ms(30_000)),
                "must be shorter than expired",
            ),
        ];
        for (builder, want) in cases {
            match builder.start() {
                Err(Error::Config(e)) => assert!(e.contains(want), "{e} lacks {want}"),
                other => panic!("{want}: {other:?}"),
            }
        }
    }
}
