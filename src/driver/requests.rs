//! Requests that go through the driver thread.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::error::Error;
use crate::queue::{Bell, Queue};

/// Requests from the application handle that go through the driver thread (commands
/// don't: see [`Core`]).
pub(crate) enum Request {
    /// Discovered by the application (a static peer): uuid and endpoint.
    Discovered(Uuid, String),
    /// A static peer by endpoint alone (checked by the caller).
    StaticPeer(String),
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
    pub(super) queue: Arc<Queue<Request>>,
    pub(super) bell: Arc<Bell>,
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
pub(super) struct DriverEnd<T>(pub(super) Arc<Queue<T>>);

impl<T> Drop for DriverEnd<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The driver's side of the request queue: requests left when the driver ends are
/// dropped, so a `stats()` caller waiting for its reply gets `Stopped`, not a hang.
pub(super) struct RequestsEnd(pub(super) Arc<Queue<Request>>);

impl Drop for RequestsEnd {
    fn drop(&mut self) {
        self.0.close_and_clear();
    }
}
