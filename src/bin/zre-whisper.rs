//! zre-whisper: whisper a message, or each line of stdin, to one peer (see `man zre-whisper`).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use zre::cli::args::Checked as _;
use zre::cli::output::escape;
use zre::cli::{self, args::WhisperArgs, input, Interrupted};
use zre::{uuid_hex, Node, Uuid};

fn main() -> ExitCode {
    let args = WhisperArgs::parse_checked();
    cli::run("zre-whisper", || whisper(&args))
}

/// The peers that `want` names: by UUID (any case, hyphens allowed) or by name.
fn matches(node: &Node, want: &str) -> Vec<Uuid> {
    let hex = want.replace('-', "").to_uppercase();
    node.peers()
        .into_iter()
        .filter(|p| uuid_hex(p) == hex || node.peer_name(*p).as_deref() == Some(want))
        .collect()
}

/// Finds the one peer `want` names, waiting up to `--wait`; None if interrupted.
fn resolve(node: &Node, args: &WhisperArgs, stop: &AtomicBool) -> anyhow::Result<Option<Uuid>> {
    let want = args.peer.as_str();
    let deadline = Instant::now() + args.send.wait;
    if !cli::wait_until(node, stop, deadline, |n| !matches(n, want).is_empty())? {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let wait = humantime::format_duration(args.send.wait);
        bail!("no peer {want} after {wait}");
    }
    let mut found = matches(node, want);
    if found
        .iter()
        .all(|p| uuid_hex(p) != want.replace('-', "").to_uppercase())
    {
        // A name: give other peers of that name two beacons to show up, so that an
        // ambiguous name is noticed rather than resolved by luck.
        let settle = Instant::now() + args.node.interval * 2 + Duration::from_millis(300);
        cli::wait_until(node, stop, settle, |_| false)?;
        found = matches(node, want);
    }
    match found.as_slice() {
        [] => bail!("peer {} left", escape(want)),
        [one] => Ok(Some(*one)),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|p| {
                    let at = node.peer_address(*p).unwrap_or_default();
                    format!("{} at {at}", uuid_hex(p))
                })
                .collect();
            bail!(
                "the name {want} is ambiguous; give one of its UUIDs: {}",
                list.join(", ")
            )
        }
    }
}

/// A failed send: "unknown peer" means the peer left meanwhile; say who.
fn sending(e: anyhow::Error, name: &str, peer: Uuid) -> anyhow::Error {
    match e.downcast_ref::<zre::Error>() {
        Some(zre::Error::UnknownPeer(_)) => {
            anyhow!("peer {} ({}) left", escape(name), uuid_hex(&peer))
        }
        _ => e,
    }
}

fn whisper(args: &WhisperArgs) -> anyhow::Result<()> {
    let stop = cli::stop_flag()?;
    let node = cli::start_node(&args.node)?;
    let interrupted = |what: String| {
        // Nothing more will leave a backed-up link: say goodbye at once.
        node.stop_timeout(std::time::Duration::ZERO);
        Err(Interrupted(what).into())
    };
    let Some(peer) = resolve(&node, args, &stop)? else {
        if !args.message.is_empty() {
            return interrupted(format!(
                "while waiting for peer {}: the message was not sent",
                escape(&args.peer)
            ));
        }
        node.stop_timeout(cli::INTERRUPTED_LINGER);
        return Ok(());
    };
    let name = node.peer_name(peer).unwrap_or_default();
    let send = |content: Vec<Vec<u8>>| {
        cli::send_or_stop(&stop, |t| node.whisper_timeout(peer, content.clone(), t))
            .map_err(|e| sending(e, &name, peer))
    };
    if !args.message.is_empty() {
        if !send(vec![args.message.join(" ").into_bytes()])? {
            return interrupted(format!(
                "while the link to {} was backed up: the message was not sent",
                escape(&name)
            ));
        }
        return cli::finish_sending(&node, &stop, 1);
    }
    let lines = input::spawn_stdin(args.send.input());
    let mut sent = 0u64;
    while !stop.load(Ordering::SeqCst) {
        match lines.recv_timeout(cli::TICK) {
            Ok(m) => {
                if !send(m?.content)? {
                    return interrupted(format!(
                        "while the link to {} was backed up: {sent} messages were queued; the \
                         next one and the rest of the input were not sent",
                        escape(&name)
                    ));
                }
                sent += 1;
            }
            Err(RecvTimeoutError::Timeout) => while node.try_recv()?.is_some() {},
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    cli::finish_sending(&node, &stop, sent)
}
