//! The verbose log (`Builder::verbose`): protocol decisions as lines on stderr, written by
//! a thread of their own.
//!
//! Whoever logs (the driver, or an application thread, often under the node's lock) only
//! puts the line in a bounded queue; the writer thread writes it. So a slow or stuck
//! stderr never stalls a node: when the queue is full the line is dropped and counted
//! ([`dropped`], `Node::log_lines_dropped`). A failed write (a closed pipe, a full disk)
//! is ignored: logging never panics. One writer serves every node in the process, and
//! starts with the first line.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Lines that may wait for the writer: a burst of logging at start (a hundred peers
/// entering) fits; a stderr that takes nothing for long loses the rest.
const CAPACITY: usize = 4096;

/// A bounded queue of lines and the thread that writes them.
pub(crate) struct Log {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when lines are queued (the writer waits for them) and when the writer
    /// has written all it took (`flush` waits for that).
    changed: Condvar,
    dropped: AtomicU64,
    capacity: usize,
}

struct Pending {
    lines: VecDeque<String>,
    /// The writer holds lines it took and has not written yet.
    writing: bool,
    /// No more lines come (the `Log` was dropped) or no writer runs: lines are dropped.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer thread: takes every waiting line at once and writes them outside the
    /// lock, ignoring errors, until the `Log` is dropped and nothing is left.
    fn write_all(&self, out: &mut dyn Write) {
        let mut batch = VecDeque::new();
        loop {
            {
                let mut p = self.lock();
                p.writing = false;
                self.changed.notify_all();
                while p.lines.is_empty() {
                    if p.closed {
                        return;
                    }
                    p = self.changed.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                std::mem::swap(&mut batch, &mut p.lines);
                p.writing = true;
            }
            for line in batch.drain(..) {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
    }
}

impl Log {
    /// A log whose writer thread writes to `out`, with room for `capacity` lines.
    pub(crate) fn new(capacity: usize, mut out: impl Write + Send + 'static) -> Log {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                lines: VecDeque::new(),
                writing: false,
                closed: false,
            }),
            changed: Condvar::new(),
            dropped: AtomicU64::new(0),
            capacity,
        });
        let writer = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("zre-log".into())
            .spawn(move || writer.write_all(&mut out));
        if spawned.is_err() {
            // Nobody would write: every line is dropped (and counted).
            shared.lock().closed = true;
        }
        Log { shared }
    }

    /// Queues a line; drops it (and counts it) if the queue is full. Never waits for the
    /// writer.
    pub(crate) fn push(&self, line: String) {
        let mut p = self.shared.lock();
        if p.closed || p.lines.len() >= self.shared.capacity {
            drop(p);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        p.lines.push_back(line);
        if p.lines.len() == 1 {
            self.shared.changed.notify_all();
        }
    }

    /// Lines dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits up to `within` until every queued line was written. True if they were.
    pub(crate) fn flush(&self, within: Duration) -> bool {
        let end = Instant::now().checked_add(within);
        let mut p = self.shared.lock();
        while !p.lines.is_empty() || p.writing {
            if p.closed && p.lines.is_empty() {
                break;
            }
            let left = end.map_or(Duration::MAX, |e| {
                e.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return false;
            }
            p = match self.shared.changed.wait_timeout(p, left) {
                Ok((p, _)) => p,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // The writer writes what is left, then ends.
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

static STDERR: OnceLock<Log> = OnceLock::new();

/// Queues one line for stderr (the process's one writer starts with the first line).
pub(crate) fn line(text: String) {
    STDERR
        .get_or_init(|| Log::new(CAPACITY, std::io::stderr()))
        .push(text);
}

/// Lines dropped because stderr did not keep up, in the whole process.
pub(crate) fn dropped() -> u64 {
    STDERR.get().map_or(0, Log::dropped)
}

/// Waits up to `within` until the lines queued for stderr are written (nothing to wait
/// for if nothing was logged).
pub(crate) fn flush(within: Duration) {
    if let Some(log) = STDERR.get() {
        log.flush(within);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that takes nothing until told to, as a stderr nobody reads.
    struct Stuck(Mutex<mpsc::Receiver<()>>, Arc<Mutex<Vec<u8>>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.lock().unwrap().recv();
            self.1.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A writer that always fails, as a closed pipe or /dev/full.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_stuck_writer_costs_lines_not_time() {
        let (go, wait) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let log = Log::new(8, Stuck(Mutex::new(wait), written.clone()));
        let start = Instant::now();
        for i in 0..1000 {
            log.push(format!("line {i}"));
        }
        assert!(start.elapsed() < Duration::from_secs(1), "push waited");
        // The writer took at most one batch (<= 8 lines) before it got stuck; 8 more wait.
        let dropped = log.dropped();
        assert!((1000 - 16..=1000 - 8).contains(&dropped), "{dropped}");
        assert!(
            !log.flush(Duration::from_millis(50)),
            "stuck: nothing flushed"
        );
        drop(go);
        assert!(log.flush(Duration::from_secs(5)));
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("line 0\n"), "{text}");
        assert_eq!(text.lines().count() as u64, 1000 - dropped);
    }

    #[test]
    fn a_failing_writer_is_ignored() {
        let log = Log::new(8, Broken);
        for i in 0..5 {
            log.push(format!("line {i}"));
        }
        assert!(log.flush(Duration::from_secs(5)));
        assert_eq!(log.dropped(), 0);
    }
}
