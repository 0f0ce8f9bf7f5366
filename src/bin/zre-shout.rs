//! zre-shout: shout a message, or each line of stdin, to a group (see `man zre-shout`).

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use anyhow::{anyhow, bail};
use zre::cli::args::Checked as _;
use zre::cli::{self, args::ShoutArgs, input};
use zre::Node;

fn main() -> ExitCode {
    let args = ShoutArgs::parse_checked();
    cli::run("zre-shout", || shout(&args))
}

/// Remembers the groups whose members were there, so that each is waited for once.
struct Waiter<'a> {
    args: &'a ShoutArgs,
    stop: &'a AtomicBool,
    ready: HashSet<String>,
}

impl Waiter<'_> {
    /// Ok(false): interrupted while waiting.
    fn ready(&mut self, node: &Node, group: &str) -> anyhow::Result<bool> {
        if self.ready.contains(group) {
            return Ok(true);
        }
        let want = self.args.peers;
        let deadline = Instant::now() + self.args.send.wait;
        let ok = cli::wait_until(node, self.stop, deadline, |n| {
            n.peers_by_group(group).len() >= want
        })?;
        if !ok {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let have = node.peers_by_group(group).len();
            let wait = humantime::format_duration(self.args.send.wait);
            if have == 0 {
                bail!("nobody in group {group} after {wait}");
            }
            bail!("only {have} of {want} peers in group {group} after {wait}");
        }
        self.ready.insert(group.to_string());
        Ok(true)
    }
}

fn shout(args: &ShoutArgs) -> anyhow::Result<()> {
    let stop = cli::stop_flag()?;
    let node = cli::start_node(&args.node)?;
    let mut waiter = Waiter {
        args,
        stop: &stop,
        ready: HashSet::new(),
    };
    let send = |group: &str, content: Vec<Vec<u8>>| {
        cli::send_or_stop(&stop, |t| node.shout_timeout(group, content.clone(), t))
    };
    if !args.message.is_empty() {
        let group = args
            .group
            .as_deref()
            .ok_or_else(|| anyhow!("no GROUP given"))?;
        if !waiter.ready(&node, group)? {
            node.stop_timeout(cli::INTERRUPTED_LINGER);
            return Ok(());
        }
        if !send(group, vec![args.message.join(" ").into_bytes()])? {
            node.stop_timeout(cli::INTERRUPTED_LINGER);
            bail!("interrupted while a link in {group} was backed up: the message was not sent");
        }
        return cli::finish_sending(&node, &stop, 1);
    }
    let lines = input::spawn_stdin(args.send.json);
    let mut sent = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let message = match lines.recv_timeout(cli::TICK) {
            Ok(m) => m?,
            Err(RecvTimeoutError::Timeout) => {
                // Nobody reads our events: keep the queue short.
                while node.try_recv()?.is_some() {}
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let group = match message.group.as_deref().or(args.group.as_deref()) {
            Some(g) => g,
            None => bail!("a line names no \"group\" and no GROUP was given"),
        };
        if !waiter.ready(&node, group)? {
            break;
        }
        if !send(group, message.content)? {
            node.stop_timeout(cli::INTERRUPTED_LINGER);
            bail!(
                "interrupted while a link in {group} was backed up: {sent} messages were \
                 queued; the next one and the rest of the input were not sent"
            );
        }
        sent += 1;
    }
    cli::finish_sending(&node, &stop, sent)
}
