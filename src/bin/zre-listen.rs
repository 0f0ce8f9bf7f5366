//! zre-listen: join groups and print every event (see `man zre-listen`).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use zre::cli::args::Checked as _;
use zre::cli::{self, args::ListenArgs, output::Output};

fn main() -> ExitCode {
    let args = ListenArgs::parse_checked();
    cli::run("zre-listen", || listen(&args))
}

fn listen(args: &ListenArgs) -> anyhow::Result<()> {
    let stop = cli::stop_flag()?;
    let mut out = Output::stdout(args.output.format);
    let node = cli::start_node(&args.node)?;
    let deadline = args.timeout.map(|d| Instant::now() + d);
    let mut printed = 0u64;
    let done = |printed: u64| args.count.is_some_and(|n| printed >= n);
    while !done(printed) {
        if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            node.stop();
        }
        // After stop the queue still holds what arrived before, STOP last; then Stopped.
        let event = match node.recv_timeout(cli::TICK) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(zre::Error::Stopped) => break,
            Err(e) => return Err(e.into()),
        };
        out.emit(&event)?;
        printed += 1;
    }
    node.stop();
    Ok(())
}
