//! The command lines: the flags every command shares ([`NodeArgs`], [`OutputArgs`]) and one
//! clap struct per command, kept here so that `zre-gen-docs` renders man pages and
//! completions from the very definitions the binaries parse.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::node::Builder;
use crate::proto::node::Timers;

/// Flags shared by every command: who we are and how we find peers.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Our node name (default: the first 6 hex digits of our UUID)
    #[arg(help_heading = "Node options", long, short = 'n', value_name = "NAME")]
    pub name: Option<String>,

    /// Join GROUP (repeatable)
    #[arg(
        help_heading = "Node options",
        long = "group",
        short = 'g',
        value_name = "GROUP"
    )]
    pub groups: Vec<String>,

    /// Send this header to every peer (repeatable)
    #[arg(help_heading = "Node options", long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Network interface, by name or IPv4 address (default: the first non-loopback one)
    #[arg(
        help_heading = "Node options",
        long,
        short = 'i',
        env = "ZRE_INTERFACE",
        hide_env_values = true,
        value_name = "NAME|IP"
    )]
    pub interface: Option<String>,

    /// UDP beacon port; nodes must share it to find each other
    #[arg(
        help_heading = "Node options",
        long,
        short = 'p',
        env = "ZRE_PORT",
        hide_env_values = true,
        default_value_t = crate::node::DEFAULT_PORT,
        value_name = "PORT"
    )]
    pub port: u16,

    /// How often to send a beacon (10ms to 1d)
    #[arg(help_heading = "Node options", long, value_name = "D", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// A peer quiet this long is reported evasive (100ms to 1d, less than --expired)
    #[arg(help_heading = "Node options", long, value_name = "D", default_value = "5s", value_parser = parse_timer)]
    pub evasive: Duration,

    /// A peer quiet this long is removed (exit); at most 1d
    #[arg(help_heading = "Node options", long, value_name = "D", default_value = "30s", value_parser = parse_timer)]
    pub expired: Duration,

    /// Log protocol decisions on stderr
    #[arg(help_heading = "Node options", long, short = 'v')]
    pub verbose: bool,
}

impl NodeArgs {
    /// The timers these flags set, as the builder will check them.
    pub fn timers(&self) -> Timers {
        Timers {
            interval: self.interval,
            evasive: self.evasive,
            silent: None,
            expired: self.expired,
        }
    }

    /// A node builder configured from these flags (groups are joined after start).
    pub fn builder(&self) -> Builder {
        let mut b = crate::Node::builder()
            .port(self.port)
            .interval(self.interval)
            .evasive_timeout(self.evasive)
            .expired_timeout(self.expired)
            .verbose(self.verbose);
        if let Some(name) = &self.name {
            b = b.name(name);
        }
        if let Some(iface) = &self.interface {
            b = b.interface(iface);
        }
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b
    }
}

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line (NDJSON)
    Json,
    /// One readable line per event, coloured on a terminal unless NO_COLOR is set
    Human,
}

/// The output flag of the commands that print events.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(
        help_heading = "Output options",
        long,
        short = 'f',
        value_enum,
        default_value = "json",
        value_name = "FORMAT"
    )]
    pub format: Format,
}

/// `zre-listen`: print every event.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-listen",
    version,
    about = "Join ZRE groups and print every event, one JSON object per line",
    long_about = "Join the given groups (none: presence and whispers only) and print every \
event the node sees: enter, exit, join, leave, whisper, shout, evasive, silent and, last, stop. \
Filtering is jq's job."
)]
pub struct ListenArgs {
    /// Exit after printing N events
    #[arg(help_heading = "Listen options", long, short = 'c', value_name = "N")]
    pub count: Option<u64>,
    /// Exit after D (e.g. 10s)
    #[arg(help_heading = "Listen options", long, short = 't', value_name = "D", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub node: NodeArgs,
}

/// The waiting and input flags zre-shout and zre-whisper share.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Read NDJSON objects from stdin: "text" or "frames", optional "group" (zre-shout)
    #[arg(help_heading = "Sending options", long)]
    pub json: bool,
    /// Give up when the recipients are not there after D
    #[arg(help_heading = "Sending options", long, short = 'w', value_name = "D", default_value = "5s", value_parser = parse_duration)]
    pub wait: Duration,
}

/// `zre-shout`: send to a group.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-shout",
    version,
    about = "Shout a message, or each line of stdin, to a ZRE group",
    long_about = "Shout MESSAGE (the arguments joined by spaces, as one frame) to GROUP, or \
each line of stdin when no MESSAGE is given. Before sending it waits until --peers members of \
the group are present, up to --wait; if they do not show up it says so and exits 1. With --json \
each stdin line is an object with \"text\" or \"frames\" and an optional \"group\" (then GROUP \
may be left out), so the output of zre-listen can be piped back in."
)]
pub struct ShoutArgs {
    /// Wait until N members of the group are present (0: do not wait)
    #[arg(
        help_heading = "Shout options",
        long,
        value_name = "N",
        default_value_t = 1
    )]
    pub peers: usize,
    /// The group to shout to
    #[arg(
        help_heading = "Arguments",
        value_name = "GROUP",
        required_unless_present = "json"
    )]
    pub group: Option<String>,
    /// The message (default: read stdin)
    #[arg(
        help_heading = "Arguments",
        value_name = "MESSAGE",
        conflicts_with = "json"
    )]
    pub message: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub node: NodeArgs,
}

/// `zre-whisper`: send to one peer.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-whisper",
    version,
    about = "Whisper a message, or each line of stdin, to one ZRE peer",
    long_about = "Whisper MESSAGE (the arguments joined by spaces, as one frame) to PEER, or \
each line of stdin when no MESSAGE is given. PEER is a UUID (32 hex digits, any case, hyphens \
allowed) or a name; a name that several peers share is an error listing them. It waits for PEER \
up to --wait. With --json each stdin line is an object with \"text\" or \"frames\"."
)]
pub struct WhisperArgs {
    /// The peer: its UUID or its name
    #[arg(help_heading = "Arguments", value_name = "PEER")]
    pub peer: String,
    /// The message (default: read stdin)
    #[arg(
        help_heading = "Arguments",
        value_name = "MESSAGE",
        conflicts_with = "json"
    )]
    pub message: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub node: NodeArgs,
}

/// `zre-ping`: zpinger, plus round-trip times.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-ping",
    version,
    mut_arg("interval", |a| a.long("beacon-interval")),
    about = "Ping ZRE peers like Zyre's zpinger, and report round-trip times like ping(8)",
    long_about = "Join GLOBAL, whisper \"Hello\" to each peer that enters and answer a \"Hello\" \
whisper with a \"Hello\" shout to GLOBAL, as Zyre's zpinger does, printing every event. With \
--interval it pings each peer again every D and reports each round trip (a \"Hello\" whisper \
answered by that peer's \"Hello\" shout), with a summary per peer at the end. The beacon \
interval is --beacon-interval here."
)]
pub struct PingArgs {
    /// Ping each peer again every D
    #[arg(help_heading = "Ping options", long = "interval", id = "every", value_name = "D", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Stop once every peer was pinged N times (implies --interval 1s)
    #[arg(help_heading = "Ping options", long, short = 'c', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// A ping not answered within D is lost
    #[arg(help_heading = "Ping options", long, short = 'W', value_name = "D", default_value = "5s", value_parser = parse_duration)]
    pub reply_timeout: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub node: NodeArgs,
}

/// The layout of zre-dir's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirFormat {
    /// {"uuid", "name", "endpoint", "headers", "groups", "since"}
    Json,
    /// [name, endpoint, headers], as the Lisp zyredir tool writes
    Zyredir,
}

/// `zre-dir`: a directory of the peers online.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-dir",
    version,
    about = "Keep a directory holding one <UUID>.json file per online ZRE peer",
    long_about = "Keep DIR holding one <UUID>.json file per online peer: written on enter, \
rewritten on join and leave, removed on exit, always atomically (a temporary file in DIR renamed \
into place). Files left by an earlier run are removed at start, and ours on a clean exit. DIR is \
created if missing."
)]
pub struct DirArgs {
    /// File layout
    #[arg(
        help_heading = "Dir options",
        long,
        short = 'f',
        value_enum,
        default_value = "json",
        value_name = "FORMAT"
    )]
    pub format: DirFormat,
    /// The directory to keep
    #[arg(help_heading = "Arguments", value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub node: NodeArgs,
}

/// The longest duration any flag takes: a year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Parses a humantime duration (`500ms`, `30s`, `1m`) greater than zero and at most a
/// year ([`MAX_DURATION`]), so that adding it to the clock cannot overflow.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    if d > MAX_DURATION {
        return Err("must be at most a year (365d)".into());
    }
    Ok(d)
}

/// Parses a duration between `min` and a day ([`Timers::MAX`]).
fn parse_between(s: &str, min: Duration) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < min {
        return Err(format!(
            "must be at least {}",
            humantime::format_duration(min)
        ));
    }
    if d > Timers::MAX {
        return Err("must be at most a day (1d)".into());
    }
    Ok(d)
}

/// Parses the beacon interval: 10 ms ([`Timers::MIN_INTERVAL`]) to a day. Beacons are
/// broadcasts: more often would flood the LAN.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_between(s, Timers::MIN_INTERVAL)
}

/// Parses a peer timer (`--evasive`, `--expired`): 100 ms ([`Timers::MIN_EVASIVE`]) to a
/// day. How they compare is checked once all flags are read ([`Checked`]).
pub fn parse_timer(s: &str) -> Result<Duration, String> {
    parse_between(s, Timers::MIN_EVASIVE)
}

/// A command line with checks that span flags (the node's timers against each other),
/// which clap's value parsers cannot make.
pub trait Checked: Parser {
    /// The node flags.
    fn node_args(&self) -> &NodeArgs;

    /// Parses the command line like [`Parser::parse`], then checks the timers together
    /// (evasive < silent < expired, see [`Timers::check`]). A bad combination is a usage
    /// error: one line `zre-xxx: error: ...` on stderr, exit 2.
    fn parse_checked() -> Self {
        let args = Self::parse();
        if let Err(e) = args.node_args().timers().check() {
            use std::io::Write as _;
            let name = Self::command().get_name().to_string();
            let _ = writeln!(std::io::stderr(), "{name}: error: {e}");
            std::process::exit(super::EXIT_USAGE.into());
        }
        args
    }
}

macro_rules! checked {
    ($($t:ty),*) => {$(
        impl Checked for $t {
            fn node_args(&self) -> &NodeArgs {
                &self.node
            }
        }
    )*};
}
checked!(ListenArgs, ShoutArgs, WhisperArgs, PingArgs, DirArgs);

/// Parses `KEY=VALUE`.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".into()),
    }
}
