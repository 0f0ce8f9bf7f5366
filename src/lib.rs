//! # zre: a ZRE (ZeroMQ Realtime Exchange) node in Rust
//!
//! Wire-compatible with Zyre 2.x and pyre: nodes discover each other by UDP beacon,
//! talk over ZeroMQ, whisper to one peer and shout to groups, and notice when a peer goes.
//!
//! Crate map:
//! - [`proto`]: the pure protocol (codec, beacon, endpoints, peer, leader election, node
//!   state machine); no I/O.
//! - `driver` (private): the sockets, the clock and the driver thread; application
//!   threads send, and read the mailbox while they wait, under the same lock. Its
//!   `handoff` (who reads the mailbox) and `retry` (when backlogs are looked at again)
//!   are pure types; `app` holds the waits of application threads (room on a link,
//!   flush, ping), `core` what runs under the lock (including the bounded receive
//!   path), `thread` socket setup, the loop and shutdown, `net` the beacon sockets (IPv4
//!   broadcast, IPv6 multicast).
//! - `link` (private): one peer's DEALER and back-pressure (whisper and shout wait while
//!   it is backed up; protocol messages queue behind them and never wait); `Links` owns
//!   the count of backlogged links.
//! - `queue` (private): batched hand-over between threads, and the doorbell.
//! - `log` (private): the verbose log, written to stderr by its own thread; lines that
//!   do not fit its queue are dropped and counted, never waited for.
//! - `identity` (private): UUIDs as people write them, and the identity file that keeps
//!   one across restarts.
//! - [`curve`]: CURVE keys, CZMQ certificate files (zcert), Z85 and the allow-list (pure
//!   but for file I/O); the driver applies them to its sockets.
//! - [`iface`]: choosing the network interface (name, IP, environment, first usable).
//! - [`node`]: the public [`Node`] handle, its [`Builder`] and the [`Events`] iterator.
//! - [`error`]: the typed [`Error`].
//! - `cli` (feature `cli`, on by default): what the `zre-*` binaries share (flags, NDJSON
//!   and human output; the NDJSON format's one definition is `cli::schema`). `zre = { version = "..", default-features = false }` builds the
//!   node alone, without the commands' crates.
//!
//! The protocol never panics on network input; a malformed frame is counted and dropped.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod curve;
mod driver;
pub mod error;
mod identity;
pub mod iface;
mod link;
mod log;
pub mod node;
pub mod proto;
mod queue;

pub use error::Error;
pub use node::{Builder, Events, Node, PeerInfo};
pub use proto::event::{uuid_hex, Content, Event};
pub use proto::node::Stats;
pub use uuid::Uuid;
/// The ZeroMQ binding the node runs on: open sockets beside the node on its context
/// ([`Node::zmq_context`]), inproc ones included.
pub use zmq;
