//! The command lines of the tools that list rather than listen (zre-peers), beside
//! [`super::args`], whose shared flags ([`NodeArgs`], [`OutputArgs`]) they flatten.

use std::time::Duration;

use clap::Parser;

use super::args::{parse_duration, Checked, NodeArgs, OutputArgs};

/// `zre-peers`: list the peers present now, and exit.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-peers",
    version,
    mut_arg("groups", |a| a
        .help("List only the members of GROUP (repeatable: of any of them); joins nothing")
        .help_heading("Peers options")),
    mut_arg("contest", |a| a.hide(true)),
    about = "List the ZRE peers present now, one JSON object per line, and exit",
    long_about = "Listen for --wait (by default one and a half beacon intervals, long enough \
for every peer's beacon to arrive and its HELLO to follow), then print one object per peer \
present, sorted by name, and exit. -g GROUP lists only the members of GROUP; zre-peers itself \
joins no group. As fd and rg --files, it exits 0 also when it lists nothing."
)]
pub struct PeersArgs {
    /// How long to listen before listing (default: 1.5 x --interval)
    #[arg(help_heading = "Peers options", long, short = 'w', value_name = "D", value_parser = parse_duration)]
    pub wait: Option<Duration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub node: NodeArgs,
}

impl PeersArgs {
    /// How long to listen: `--wait`, else one and a half beacon intervals.
    pub fn wait(&self) -> Duration {
        self.wait
            .unwrap_or(self.node.interval.saturating_mul(3) / 2)
    }
}

impl Checked for PeersArgs {
    const JOINS: bool = false;
    fn node_args(&self) -> &NodeArgs {
        &self.node
    }
}

/// `zre-keygen`: make a CURVE key pair as certificate files.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-keygen",
    version,
    about = "Make a CURVE key pair: FILE (public certificate) and FILE_secret (mode 0600)",
    long_about = "Write a new CURVE key pair in CZMQ's certificate format (zcert, as Zyre C, \
zauth and zcertstore read it): the public certificate to FILE and the secret one to \
FILE_secret, created with mode 0600. Nothing is overwritten: if either file exists, \
nothing is written and the exit status is 1. The public key is printed on stdout (40 Z85 \
characters), ready for a file of keys (--allow FILE). Give FILE (or FILE_secret) to \
--curve, and FILE to the peers, who put it in their --allow directory. Needs a build with \
CURVE (README, \"Security\")."
)]
pub struct KeygenArgs {
    /// The name written into the certificates' metadata
    #[arg(long, short = 'n', value_name = "NAME")]
    pub name: Option<String>,
    /// Where to write the public certificate (the secret one goes to FILE_secret)
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: std::path::PathBuf,
}
