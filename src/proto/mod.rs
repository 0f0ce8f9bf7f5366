//! The pure protocol: codec, beacon, peer state and the node state machine.
//!
//! Nothing in here opens a socket, starts a thread, reads the clock or draws a random
//! number: time comes in as `now`, network input as bytes, and decisions go out through
//! `poll_*` queues. That is what makes every timer and failure path a fast unit test.

pub mod beacon;
pub mod codec;
pub mod event;
pub mod node;
pub mod peer;
