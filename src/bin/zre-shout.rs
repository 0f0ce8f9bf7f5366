//! zre-shout: shout a message, or each line of stdin, to a group (see `man zre-shout`).

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use anyhow::{anyhow, bail};
use zre::cli::args::Checked as _;
use zre::cli::output::escape;
use zre::cli::{self, args::ShoutArgs, input, Interrupted};
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
    let interrupted = |what: String| {
        // Nothing more will leave a backed-up link: say goodbye at once.
        node.stop_timeout(std::time::Duration::ZERO);
        Err(Interrupted(what).into())
    };
    if !args.message.is_empty() {
        let group = args
            .group
            .as_deref()
            .ok_or_else(|| anyhow!("no GROUP given"))?;
        if !waiter.ready(&node, group)? {
            return interrupted(format!(
                "while waiting for group {}: the message was not sent",
                escape(group)
            ));
        }
        if !send(group, vec![args.message.join(" ").into_bytes()])? {
            return interrupted(format!(
                "while a link in {} was backed up: the message was not sent",
                escape(group)
            ));
        }
        return cli::finish_sending(&node, &stop, 1);
    }
    let lines = input::spawn_stdin(args.send.input());
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
        // -g GROUP wins over the line's own "group", which wins over GROUP.
        let group = if args.group_flag {
            args.group.as_deref()
        } else {
            message.group.as_deref().or(args.group.as_deref())
        };
        let group = match group {
            Some(g) => g,
            None => bail!("a line names no \"group\" and no GROUP was given"),
        };
        if !waiter.ready(&node, group)? {
            return interrupted(format!(
                "while waiting for group {}: {sent} messages were sent; the next one and the \
                 rest of the input were not",
                escape(group)
            ));
        }
        if !send(group, message.content)? {
            return interrupted(format!(
                "while a link in {} was backed up: {sent} messages were queued; the next one \
                 and the rest of the input were not sent",
                escape(group)
            ));
        }
        sent += 1;
    }
    cli::finish_sending(&node, &stop, sent)
}
