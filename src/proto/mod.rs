//! The pure protocol: codec, beacon, endpoints, peer state, elections and the node state
//! machine.
//!
//! Nothing in here opens a socket, starts a thread, reads the clock or draws a random
//! number (beyond hash-map seeds): time comes in as `now`, network input as bytes, and decisions go out through
//! `poll_*` queues. That is what makes every timer and failure path a fast unit test.

pub mod beacon;
pub mod codec;
pub mod election;
pub mod endpoint;
pub mod event;
pub mod gossip;
pub mod node;
pub mod peer;

/// Maps keyed by peer UUID, looked up several times per message, so the hash is on the
/// per-message path: foldhash rather than std's SipHash (BENCHMARKS.md, third round).
/// It is still seeded per process, so a peer choosing its UUID cannot aim at a bucket.
pub(crate) type UuidMap<V> = std::collections::HashMap<uuid::Uuid, V, foldhash::fast::RandomState>;
