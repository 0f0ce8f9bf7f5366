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
//! Where things live: [`core`] the shared state and what runs under its lock (reading
//! the mailbox, carrying out transmits, back-pressure bookkeeping); [`handoff`] who reads
//! the mailbox, the driver or a waiting application thread (a pure type, with its
//! diagram); [`app`] the waits of application threads (room on a link, a flush, a
//! ping); [`thread`] socket setup, the driver loop and shutdown; [`requests`] what goes
//! through the driver thread; [`directory`] the application's peer cache; [`retry`] when
//! the driver looks at backlogs again; [`zap`] CURVE's ZAP handler (its own thread) and
//! the allow-list's reloading. Each link's DEALER and backlog, and the count of
//! backlogged links, are `crate::link`'s.
//!
//! Memory is bounded end to end. Sending: a link holds [`SEND_HWM`] messages and whisper
//! and shout wait for room (`crate::link`). Receiving: the mailbox is read only while the
//! application has fewer than `event_limit` events waiting ([`Core::event_room`]); past
//! it, mail waits in libzmq ([`RECV_HWM`] per peer), then in TCP, and the sender waits.
//! Whoever takes events while mail waits rings the driver to read on.

mod app;
mod core;
mod directory;
mod gossip;
mod handoff;
mod net;
mod requests;
mod retry;
mod thread;
mod zap;

pub(crate) use self::app::{command, flush, ping, rtts};
pub(crate) use self::core::{Core, Watch};
pub(crate) use self::directory::Directory;
pub(crate) use self::net::Net;
pub(crate) use self::requests::{Commands, Request};
use self::requests::{DriverEnd, RequestsEnd};
pub(crate) use self::thread::start;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::proto::event::{uuid_hex, Event};
use crate::proto::node::{Config, NodeState};
use crate::queue::Queue;

/// Everything the driver needs beyond the state machine's own configuration.
pub(crate) struct Setup {
    pub config: Config,
    /// The interface, IPv4 or IPv6.
    pub net: Net,
    /// None: no beacon, and no UDP socket.
    pub beacon_port: Option<u16>,
    pub mailbox_port: Option<u16>,
    pub advertised_endpoint: Option<String>,
    pub stop_linger: Duration,
    /// At most about this many events wait for the application (see [`Core::event_room`]).
    pub event_limit: usize,
    /// CURVE: our certificate (with its secret key) and the allow-list's path.
    pub curve: Option<(crate::curve::Cert, Option<std::path::PathBuf>)>,
    /// zgossip endpoints to bind (as a hub) and hubs to connect to.
    pub gossip_bind: Vec<String>,
    pub gossip_connect: Vec<String>,
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

/// Requests that may wait for the driver thread (then `Commands::send` waits).
const COMMAND_QUEUE: usize = 16 * 1024;
/// Messages from each peer that libzmq holds in the mailbox before it stops reading that
/// peer's connection (libzmq's default). It counts messages, not bytes: 1 MB of 1 KiB
/// whispers, and for small ones less than TCP's own buffer holds.
const RECV_HWM: i32 = 1000;
/// Requests carried out per turn of the loop.
const BATCH_COMMANDS: usize = 4096;
/// Inputs handled per source before the loop looks at the others again, so no source can
/// starve the timers or the rest.
const BATCH: usize = 512;

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
pub(super) const ROOM_WAIT_MS: i64 = 10;
