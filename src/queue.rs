//! The hand-over between application threads and the driver thread: a batched [`Queue`]
//! and a [`Bell`] that wakes a thread sleeping in `poll`. Nothing here knows ZRE.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Wakes a thread that sleeps in `poll` with [`Bell::fd`] in its set. A socket pair rather
/// than a condvar, so the sleeper can wait on sockets at the same time.
pub(crate) struct Bell {
    tx: UnixStream,
    rx: UnixStream,
    /// True while a byte is unread: ringing again would only cost a syscall.
    rung: AtomicBool,
}

impl Bell {
    pub(crate) fn new() -> std::io::Result<Bell> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Bell {
            tx,
            rx,
            rung: AtomicBool::new(false),
        })
    }

    pub(crate) fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            // A full socket buffer means a wake-up is already pending.
            let _ = (&self.tx).write(&[1]);
        }
    }

    /// Reads what rang; `readable`: the sleeper's poll saw the bell readable. The sleeper
    /// must look at what it waits for after this, not before: a ring that finds the flag
    /// still set writes nothing.
    pub(crate) fn clear(&self, readable: bool) {
        // Neither flag nor byte: nothing to read, and no syscall. A ring sets the flag
        // before it writes, so a byte that lands after a clear stored `false` makes the
        // next poll say readable, and that clear reads it (else every poll would return
        // at once on a byte nobody reads).
        if !readable && !self.rung.load(Ordering::Acquire) {
            return;
        }
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
        self.rung.store(false, Ordering::Release);
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

/// A queue between the application's threads and the driver that is handed over in
/// batches: the consumer takes everything waiting under one lock, and a side sleeps only
/// when it must (a producer on the condvar while the queue is full; a consumer while it
/// is empty, in `poll` beside other descriptors or on the condvar).
/// std's channels hand over one item per operation and wake a blocked peer for each, so
/// on a busy link the two threads take turns per message; this queue wakes a side once
/// per batch (BENCHMARKS.md, second round).
pub(crate) struct Queue<T> {
    state: Mutex<QueueState<T>>,
    /// Signalled when room is made or items arrive, if a thread waits.
    changed: Condvar,
    /// Producers wait while this many items are queued (`usize::MAX`: never).
    cap: usize,
    /// Rung for consumers that wait in `poll` ([`Queue::wait_polling`]) instead of on
    /// `changed`.
    bell: Option<Bell>,
    /// How many items wait, stored under the lock at every change: [`Queue::len`] reads
    /// it without the lock (the driver asks once per mailbox read). SeqCst: a consumer
    /// that took items and then reads a flag, and a producer that set the flag and then
    /// reads this, never both miss each other's write.
    len: AtomicUsize,
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
        Arc::new(Self::build(cap, None))
    }

    /// A queue whose consumer can also wait in `poll` beside other file descriptors.
    pub(crate) fn with_bell(cap: usize) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Self::build(cap, Some(Bell::new()?))))
    }

    fn build(cap: usize, bell: Option<Bell>) -> Self {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
                waiting: 0,
            }),
            changed: Condvar::new(),
            cap,
            bell,
            len: AtomicUsize::new(0),
        }
    }

    /// Waits on the condvar up to `timeout` (None: no limit) until items are queued or
    /// the queue closes; the caller looks afterwards. For consumers that do not poll
    /// other descriptors: several may wait at once (the bell wakes only one reliably).
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        let mut st = self.lock();
        if !st.items.is_empty() || st.closed {
            return;
        }
        st.waiting += 1;
        st = match timeout {
            Some(t) => {
                self.changed
                    .wait_timeout(st, t)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => self.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
        };
        st.waiting -= 1;
    }

    /// [`Queue::wake_waiters`], but only if a thread waits (no syscall otherwise).
    pub(crate) fn wake_if_waiting(&self) {
        if self.lock().waiting > 0 {
            self.wake_waiters();
        }
    }

    /// Wakes every waiter, on the condvar and in `poll`, whether or not anything changed.
    pub(crate) fn wake_waiters(&self) {
        self.changed.notify_all();
        if let Some(bell) = &self.bell {
            bell.ring();
        }
    }

    /// Waits up to `timeout` (None: no limit) until items are queued, the queue closes, or
    /// `also` (a file descriptor, if any) becomes readable; the caller looks at all three
    /// afterwards.
    /// Needs a queue made by [`Queue::with_bell`].
    /// Returns whether `also` was readable.
    pub(crate) fn wait_polling(&self, also: Option<RawFd>, timeout: Option<Duration>) -> bool {
        let Some(bell) = &self.bell else {
            return false;
        };
        {
            let mut st = self.lock();
            if !st.items.is_empty() || st.closed {
                return false;
            }
            st.waiting += 1;
        }
        // Round up: waking a millisecond early would spin until the deadline.
        let ms = timeout.map_or(-1, |t| {
            i64::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX as i64)
        });
        let mut items = [
            zmq::PollItem::from_fd(bell.fd(), zmq::POLLIN),
            zmq::PollItem::from_fd(also.unwrap_or(-1), zmq::POLLIN),
        ];
        let n = if also.is_some() { 2 } else { 1 };
        let _ = zmq::poll(&mut items[..n], ms);
        self.lock().waiting -= 1;
        bell.clear(items[0].is_readable());
        n == 2 && items[1].is_readable()
    }

    /// How many items wait now.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    fn note_len(&self, st: &QueueState<T>) {
        self.len.store(st.items.len(), Ordering::SeqCst);
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
        self.note_len(&st);
        if st.waiting > 0 {
            self.wake_waiters();
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
        self.note_len(&st);
        if st.waiting > 0 {
            self.wake_waiters();
        }
    }

    /// Moves every queued item to the end of `into`, without waiting (consumers wait in
    /// [`Queue::wait_polling`]); true once closed and empty.
    pub(crate) fn take_all(&self, into: &mut VecDeque<T>) -> bool {
        self.take_up_to(into, usize::MAX)
    }

    /// [`Queue::take_all`], but at most `max` items: what a consumer holds outside the
    /// queue stays bounded, and the producer sees the rest still queued.
    pub(crate) fn take_up_to(&self, into: &mut VecDeque<T>, max: usize) -> bool {
        let mut st = self.lock();
        if st.items.is_empty() {
            return st.closed;
        }
        if st.items.len() > max {
            into.extend(st.items.drain(..max));
        } else if into.is_empty() {
            // Hand over the buffer itself; `into`'s empty one is reused next time.
            std::mem::swap(&mut st.items, into);
        } else {
            into.append(&mut st.items);
        }
        self.note_len(&st);
        if st.waiting > 0 {
            // Producers blocked on a full queue: there is room now.
            self.wake_waiters();
        }
        false
    }

    /// No more items: waiting threads return, pushes fail.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake_waiters();
    }

    /// Closes and drops what is still queued: for requests whose senders wait for an
    /// answer (a dropped reply channel tells them there will be none).
    pub(crate) fn close_and_clear(&self) {
        let left = {
            let mut st = self.lock();
            st.closed = true;
            let left = std::mem::take(&mut st.items);
            self.note_len(&st);
            left
        };
        self.wake_waiters();
        drop(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_up_to_leaves_the_rest_queued_in_order() {
        let q: Arc<Queue<u32>> = Queue::new(usize::MAX);
        let mut items: VecDeque<u32> = (0..10).collect();
        q.push_all(&mut items);
        let mut got = VecDeque::new();
        assert!(!q.take_up_to(&mut got, 4));
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(q.len(), 6);
        assert!(!q.take_up_to(&mut got, 100));
        assert_eq!(got, (0..10).collect::<VecDeque<u32>>());
        q.close();
        assert!(q.take_up_to(&mut got, 4), "closed and empty");
    }

    #[test]
    fn closing_with_clear_drops_what_waits_so_reply_channels_end() {
        let q: Arc<Queue<std::sync::mpsc::Sender<u8>>> = Queue::new(4);
        let (tx, rx) = std::sync::mpsc::channel();
        q.push(tx).unwrap();
        q.close_and_clear();
        assert!(rx.recv().is_err(), "the queued sender was dropped");
        assert!(q.push(std::sync::mpsc::channel().0).is_err(), "closed");
    }

    #[test]
    fn a_bell_byte_written_after_a_clear_is_read_by_the_next_readable_clear() {
        let bell = Bell::new().unwrap();
        // The race: the flag is set, the clear runs before the byte is written.
        bell.rung.store(true, Ordering::Release);
        bell.clear(false);
        let _ = (&bell.tx).write(&[1]);
        let mut items = [zmq::PollItem::from_fd(bell.fd(), zmq::POLLIN)];
        assert_eq!(zmq::poll(&mut items, 0).unwrap(), 1, "the byte is there");
        bell.clear(items[0].is_readable());
        let mut items = [zmq::PollItem::from_fd(bell.fd(), zmq::POLLIN)];
        assert_eq!(zmq::poll(&mut items, 0).unwrap(), 0, "and was read");
    }
}
