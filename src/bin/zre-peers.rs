//! zre-peers: list the peers present now, and exit (see `man zre-peers`).

use std::process::ExitCode;
use std::time::Instant;

use zre::cli::args::Checked as _;
use zre::cli::args::Format;
use zre::cli::args_tools::PeersArgs;
use zre::cli::output::{peer_human, peer_json, Output};
use zre::cli::{self};

fn main() -> ExitCode {
    let args = PeersArgs::parse_checked();
    cli::run("zre-peers", || list(&args))
}

fn list(args: &PeersArgs) -> anyhow::Result<()> {
    let stop = cli::stop_flag()?;
    let mut out = Output::stdout(args.output.format, args.output.color);
    // -g selects what is listed; zre-peers itself joins nothing.
    let mut node_args = args.node.clone();
    let groups = std::mem::take(&mut node_args.groups);
    let node = cli::start_node(&node_args)?;
    // Discovery: every peer's beacon, then its HELLO. The node's directory takes a peer
    // in as the application reads its ENTER, so the events are read (and dropped).
    // Ctrl-C ends the wait early: what was found so far is listed.
    cli::wait_until(&node, &stop, Instant::now() + args.wait(), |_| false)?;
    let mut peers = node.peer_list();
    peers.retain(|p| groups.is_empty() || groups.iter().any(|g| p.groups.contains(g)));
    // A round trip to each, all at once (a peer that does not answer within --wait keeps
    // the last one the node measured, or none).
    std::thread::scope(|s| {
        let node = &node;
        let pings: Vec<_> = peers
            .iter()
            .map(|p| p.uuid)
            .map(|u| s.spawn(move || node.ping(u, args.wait()).ok()))
            .collect();
        let rtts: Vec<_> = pings.into_iter().map(|t| t.join().ok().flatten()).collect();
        for (p, rtt) in peers.iter_mut().zip(rtts) {
            p.rtt = rtt.or(p.rtt);
        }
    });
    node.stop();
    peers.sort_by(|a, b| (&a.name, a.uuid).cmp(&(&b.name, b.uuid)));
    for p in &peers {
        out.line(&match out.format() {
            Format::Json => peer_json(p),
            Format::Human => peer_human(p),
        })?;
    }
    Ok(())
}
