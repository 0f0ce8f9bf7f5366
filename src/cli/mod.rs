//! What the `zre-*` binaries share: flags, output formats, exit codes, signal handling,
//! and the man pages and completions generated from the flags. Never used by the node.
//!
//! # The NDJSON format
//!
//! With `--format json` (the default) every event is one JSON object on one line, flushed
//! at once. The first field is `type`; the fields, and which events carry them, are
//! defined once in [`schema`] (README's table and the man pages are made from it).
//!
//! ```text
//! {"type":"enter","time":"2026-01-31T12:00:00.123Z","peer":"5E1C0D...","name":"a","endpoint":"tcp://127.0.0.1:49152","headers":{}}
//! {"type":"shout","time":"2026-01-31T12:00:01.456Z","peer":"5E1C0D...","name":"a","group":"CHAT","frames":[{"text":"hi"}],"text":"hi"}
//! ```
//!
//! zre-shout and zre-whisper `--json` read the same objects back (`frames`, else `text`;
//! zre-shout also takes `group`), so binary and multi-frame content round-trips exactly;
//! objects whose `type` is not `shout` or `whisper` are skipped, so zre-listen's output
//! can be piped in as it is.
//! zre-ping adds `rtt`, `lost` and `summary` objects, zre-peers prints `peer` objects
//! (see their man pages).
//!
//! # Exit status
//!
//! | code | meaning                                                                 |
//! |------|-------------------------------------------------------------------------|
//! | 0    | done; also Ctrl-C, SIGTERM, and a closed output pipe (noticed within a tenth of a second even when nothing is printed); zre-listen: `--count` reached |
//! | 1    | runtime failure: one line `zre-xxx: error: ...` on stderr (also when the node fails: its driver thread died; an `--identity` file that holds no UUID, naming it; a `--mailbox-port` in use); zre-listen: `--timeout` ended the run before `--count` was reached; zre-ping: no ping was answered (no peer, or total loss), as ping(8) |
//! | 2    | usage error, in one line `zre-xxx: error: ...`: bad arguments (also from `ZRE_PORT`, `ZRE_INTERFACE`, `ZSYS_INTERFACE`, `ZSYS_IPV6`, `ZRE_UUID`), `--uuid` with `--identity`, timers that do not fit together, an unknown interface |
//! | 130, 143, 129 | zre-shout, zre-whisper: interrupted (SIGINT, SIGTERM, SIGHUP: 128 + the signal, as a shell reports a process it killed) before everything was delivered; the line on stderr says what was not |

pub mod args;
pub mod args_tools;
pub mod docs;
pub mod input;
pub mod output;
pub mod schema;

use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::node::Node;
use args::NodeArgs;

/// Exit status for success, Ctrl-C, SIGTERM and a closed pipe.
pub const EXIT_OK: u8 = 0;
/// Exit status for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage error (clap's own, and timers that do not fit together).
pub const EXIT_USAGE: u8 = 2;
/// Exit status of a sender interrupted by Ctrl-C before everything was delivered: 128 +
/// SIGINT, as a shell reports a process that Ctrl-C killed. SIGTERM gives 143 and SIGHUP
/// 129 ([`exit_interrupted`]).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The signals that set the [`stop_flag`]: Ctrl-C, `kill`, a closed terminal.
pub const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// The last of [`STOP_SIGNALS`] that arrived, 0 before any.
static LAST_SIGNAL: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();

/// The exit status of a sender interrupted before everything was delivered: 128 + the
/// signal that stopped it, as a shell reports a process that signal killed (SIGINT 130,
/// SIGTERM 143, SIGHUP 129); [`EXIT_INTERRUPTED`] when no signal was seen.
pub fn exit_interrupted() -> u8 {
    let sig = LAST_SIGNAL.get().map_or(0, |s| s.load(Ordering::SeqCst));
    match u8::try_from(sig) {
        Ok(sig @ 1..=127) => 128 + sig,
        _ => EXIT_INTERRUPTED,
    }
}

/// How long the main loops wait for an event before looking at the stop flag.
pub const TICK: Duration = Duration::from_millis(100);

/// How long a sender waits for room on a backed-up link, or for its peers to take what
/// it sent, before it looks at the stop flag again: a Ctrl-C must end it within 100 ms,
/// slice and [`INTERRUPTED_LINGER`] included.
pub const SEND_SLICE: Duration = Duration::from_millis(25);

/// A usage error found after clap parsed the flags (a bad interface, a duplicate header):
/// [`run`] prints it in one line and exits [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A sender was interrupted before everything it had was delivered: [`run`] prints what
/// was not sent and exits [`EXIT_INTERRUPTED`].
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// Runs a command's body: an error prints one line `NAME: error: ...` on stderr and exits
/// 1 ([`UsageError`]: 2, [`Interrupted`]: 128 + the signal, [`exit_interrupted`]), except
/// a broken pipe, which exits 0 without a word.
pub fn run(name: &str, body: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    run_status(name, || body().map(|()| EXIT_OK))
}

/// Like [`run`], for a body that chooses its exit status when it succeeds (zre-listen:
/// 1 when `--timeout` came before `--count`, without a word, as grep finding nothing).
pub fn run_status(name: &str, body: impl FnOnce() -> anyhow::Result<u8>) -> ExitCode {
    match body() {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            use io::Write as _;
            let _ = writeln!(io::stderr(), "{name}: error: {e:#}");
            ExitCode::from(if e.downcast_ref::<UsageError>().is_some() {
                EXIT_USAGE
            } else if e.downcast_ref::<Interrupted>().is_some() {
                exit_interrupted()
            } else {
                EXIT_FAILURE
            })
        }
    }
}

/// True when the error comes from writing to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A flag that Ctrl-C, SIGTERM and SIGHUP set ([`STOP_SIGNALS`]); the main loops poll it
/// every [`TICK`]. Which signal came last is kept for [`exit_interrupted`].
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let last = LAST_SIGNAL.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for sig in STOP_SIGNALS {
        // The handlers only store into atomics (async-signal-safe); the value first, so
        // that a loop that sees the flag finds the signal.
        signal_hook::flag::register_usize(sig, last.clone(), sig as usize)
            .and_then(|_| signal_hook::flag::register(sig, flag.clone()))
            .context("cannot install the signal handler")?;
    }
    Ok(flag)
}

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// True once [`stop_when_stdout_closes`] saw stdout closed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

/// Sets `stop` as soon as stdout is closed for good (the reader of a pipe has gone, as
/// after `| head -1`; a terminal hung up), even while nothing is printed: a quiet network
/// would otherwise keep the command running until its next line meets the broken pipe.
/// As GNU `tail -f` does, a thread waits in poll(2) for POLLERR or POLLHUP on stdout
/// (zmq::poll is poll(2) for a plain descriptor); a file or a terminal never wakes it.
pub fn stop_when_stdout_closes(stop: &Arc<AtomicBool>) {
    use std::os::fd::AsRawFd as _;
    let fd = io::stdout().as_raw_fd();
    // A closed descriptor (`>&-`) is not a reader that left: writing reports it.
    if std::fs::metadata(format!("/proc/self/fd/{fd}")).is_err()
        && std::path::Path::new("/proc/self/fd").exists()
    {
        return;
    }
    let stop = stop.clone();
    let watch = move || {
        let mut items = [zmq::PollItem::from_fd(fd, zmq::PollEvents::empty())];
        loop {
            match zmq::poll(&mut items, -1) {
                Ok(_) if items[0].is_error() => {
                    STDOUT_CLOSED.store(true, Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(_) => return,
            }
        }
    };
    // Without the thread the command still ends, at its next write.
    let _ = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(watch);
}

/// Starts a node from the shared flags, contests its `--contest` groups and joins them
/// and its `--group`s.
pub fn start_node(args: &NodeArgs) -> anyhow::Result<Node> {
    let node = match args.builder().start() {
        Ok(node) => node,
        // No such interface: a usage error, naming where the name came from.
        Err(crate::Error::Interface(e)) => {
            return Err(UsageError(format!("{}{e}", args::interface_source(args))).into())
        }
        Err(e) => return Err(anyhow::Error::new(e).context("cannot start the node")),
    };
    for g in &args.contest {
        node.contest(g)
            .with_context(|| format!("cannot contest {g}"))?;
    }
    let mut joined = std::collections::BTreeSet::new();
    for g in args.groups.iter().chain(&args.contest) {
        if joined.insert(g) {
            node.join(g).with_context(|| format!("cannot join {g}"))?;
        }
    }
    // Testing only: ZRE_INJECT_DRIVER_PANIC=D makes the driver panic D after start.
    #[cfg(feature = "fault-injection")]
    if let Some(d) = std::env::var_os("ZRE_INJECT_DRIVER_PANIC") {
        let d = d.to_str().and_then(|d| args::parse_duration(d).ok());
        std::thread::sleep(d.unwrap_or_default());
        node.inject_driver_panic();
    }
    Ok(node)
}

/// Sends with `send` (a `whisper_timeout` or `shout_timeout` call given a timeout),
/// looking at the stop flag every [`SEND_SLICE`] while the link is backed up. Ok(false): the
/// stop flag was set first, and nothing of this message was sent.
pub fn send_or_stop(
    stop: &AtomicBool,
    mut send: impl FnMut(Duration) -> Result<(), crate::Error>,
) -> anyhow::Result<bool> {
    loop {
        match send(SEND_SLICE) {
            Ok(()) => return Ok(true),
            Err(crate::Error::Timeout) if stop.load(Ordering::SeqCst) => return Ok(false),
            Err(crate::Error::Timeout) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits until every peer has taken what was sent ([`Node::flush`]), looking at the stop
/// flag every [`SEND_SLICE`]. Ok(false): the stop flag was set first.
pub fn flush_or_stop(node: &Node, stop: &AtomicBool) -> anyhow::Result<bool> {
    loop {
        // Events nobody prints still take room: past the event limit the answers would
        // wait behind them.
        while node.try_recv()?.is_some() {}
        if node.flush(SEND_SLICE)? {
            return Ok(true);
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
    }
}

/// How a sending command ends once its input is done: it waits until every peer has
/// taken what was sent, then says goodbye. Interrupted (before or while it waits), it
/// gives the peers [`INTERRUPTED_LINGER`] to answer, then stops; if some did not, it
/// fails, saying that what was sent may not all have been delivered.
pub fn finish_sending(node: &Node, stop: &AtomicBool, sent: u64) -> anyhow::Result<()> {
    let delivered = if stop.load(Ordering::SeqCst) {
        node.flush(INTERRUPTED_LINGER)?
    } else {
        flush_or_stop(node, stop)? || node.flush(INTERRUPTED_LINGER)?
    };
    if delivered || sent == 0 {
        node.stop_timeout(INTERRUPTED_LINGER);
        return Ok(());
    }
    // What the peers have not taken by now will not leave in time: go at once.
    node.stop_timeout(Duration::ZERO);
    Err(Interrupted(format!(
        "{sent} messages were sent, and not all of them were delivered"
    ))
    .into())
}

/// How long a stop on Ctrl-C or SIGTERM gives queued messages to leave: a user who
/// interrupts wants the command gone within a blink, and a backed-up link will not drain.
pub const INTERRUPTED_LINGER: Duration = Duration::from_millis(25);

/// Waits until `ready` holds, the deadline passes, or the stop flag is set, reading (and
/// dropping) the node's events meanwhile. Returns whether `ready` held.
pub fn wait_until(
    node: &Node,
    stop: &AtomicBool,
    deadline: Instant,
    mut ready: impl FnMut(&Node) -> bool,
) -> anyhow::Result<bool> {
    loop {
        if ready(node) {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        node.recv_timeout(TICK.min(deadline - now))?;
    }
}
