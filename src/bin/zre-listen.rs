//! zre-listen: join groups and print every event (see `man zre-listen`).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use zre::cli::args::Checked as _;
use zre::cli::{self, args::ListenArgs, output::Output};
use zre::{uuid_hex, Event};

fn main() -> ExitCode {
    let args = ListenArgs::parse_checked();
    cli::run_status("zre-listen", || listen(&args))
}

/// Whether `--type` and `--from` select the event (both, when both are given).
fn selected(args: &ListenArgs, event: &Event) -> bool {
    let kind = event.kind();
    let type_ok = args.types.is_empty() || args.types.iter().any(|t| t.name() == kind);
    let from_ok = args.from.is_empty()
        || event.peer().is_some_and(|p| {
            let hex = uuid_hex(&p);
            args.from
                .iter()
                .any(|f| f == event.name() || f.replace('-', "").to_uppercase() == hex)
        });
    type_ok && from_ok
}

/// Ok(0): done (`--count` reached, Ctrl-C, or `--timeout` without `--count`);
/// Ok(1): `--timeout` ended the run before `--count` events were printed.
fn listen(args: &ListenArgs) -> anyhow::Result<u8> {
    let stop = cli::stop_flag()?;
    cli::stop_when_stdout_closes(&stop);
    let mut out = Output::stdout(args.output.format, args.output.color);
    let node = cli::start_node(&args.node)?;
    let deadline = args.timeout.map(|d| Instant::now() + d);
    let mut timed_out = false;
    let mut printed = 0u64;
    let done = |printed: u64| args.count.is_some_and(|n| printed >= n);
    while !done(printed) {
        if stop.load(Ordering::SeqCst) {
            node.stop();
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            node.stop();
        }
        // After stop the queue still holds what arrived before, STOP last; then Stopped.
        let event = match node.recv_timeout(cli::TICK) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(zre::Error::Stopped) => break,
            Err(e) => return Err(e.into()),
        };
        if selected(args, &event) {
            out.emit(&event)?;
            printed += 1;
        }
    }
    node.stop();
    let missed = args.count.is_some() && !done(printed) && timed_out;
    Ok(if missed {
        cli::EXIT_FAILURE
    } else {
        cli::EXIT_OK
    })
}
