//! The command lines: the flags every command shares ([`NodeArgs`], [`OutputArgs`]) and one
//! clap struct per command, kept here so that each command's `--generate man|bash|zsh|fish`
//! renders its man page and completions from the very definitions it parses.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{EnumValueParser, Resettable};
use clap::{Arg, ArgMatches, Args, Command, CommandFactory, Parser, ValueEnum, ValueHint};

use crate::node::Builder;
use crate::proto::node::Timers;

/// Flags shared by every command: who we are and how we find peers.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Our node name, 1 to 255 bytes (default: the first 6 hex digits of our UUID)
    #[arg(help_heading = "Node options", long, short = 'n', value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Join GROUP, 1 to 255 bytes (repeatable)
    #[arg(
        help_heading = "Node options",
        long = "group",
        short = 'g',
        value_name = "GROUP",
        value_parser = parse_name
    )]
    pub groups: Vec<String>,

    /// Join GROUP and contest its leadership (Zyre's draft elections): the member with the
    /// lowest UUID among those contesting leads, and each election ends with a leader
    /// event naming it (repeatable)
    #[arg(
        help_heading = "Node options",
        long = "contest",
        value_name = "GROUP",
        value_parser = parse_name
    )]
    pub contest: Vec<String>,

    /// Tell every peer this header when we meet (repeatable; KEY is 1 to 255 bytes)
    #[arg(help_heading = "Node options", long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Network interface, by name or IP address (default: ZRE_INTERFACE, else
    /// ZSYS_INTERFACE as Zyre reads it, else the first non-loopback one)
    #[arg(
        help_heading = "Node options",
        long,
        short = 'i',
        env = "ZRE_INTERFACE",
        hide_env_values = true,
        value_name = "NAME|IP",
        value_hint = ValueHint::Other,
        value_parser = parse_interface
    )]
    pub interface: Option<String>,

    /// UDP beacon port, 1 to 65535; nodes must share it to find each other
    #[arg(
        help_heading = "Node options",
        long,
        short = 'p',
        env = "ZRE_PORT",
        hide_env_values = true,
        default_value_t = crate::node::DEFAULT_PORT,
        value_name = "PORT",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub port: u16,

    /// Our UUID, 32 hex digits in either case, hyphens allowed (default: random, or the
    /// one in --identity)
    #[arg(
        help_heading = "Node options",
        long,
        env = "ZRE_UUID",
        hide_env_values = true,
        value_name = "HEX",
        value_hint = ValueHint::Other,
        value_parser = parse_uuid,
        conflicts_with = "identity"
    )]
    pub uuid: Option<crate::Uuid>,

    /// Keep our UUID in FILE across restarts: read it, or create it with a random one
    #[arg(
        help_heading = "Node options",
        long,
        env = "ZRE_IDENTITY",
        hide_env_values = true,
        value_name = "FILE",
        value_hint = ValueHint::FilePath
    )]
    pub identity: Option<PathBuf>,

    /// TCP port of our mailbox, 1 to 65535 (default, or 0: any free port)
    #[arg(help_heading = "Node options", long, value_name = "PORT", value_parser = clap::value_parser!(u16))]
    pub mailbox_port: Option<u16>,

    /// Send and hear no beacons (no UDP socket at all): we meet only peers that connect to
    /// us and those given by --peer
    #[arg(help_heading = "Node options", long)]
    pub no_beacon: bool,

    /// Connect to a peer's mailbox at tcp://HOST:PORT and say HELLO, without beacons or its
    /// UUID; its HELLO back tells who it is. Retried until it answers, and after it leaves
    /// (repeatable; ZRE_PEERS takes a comma-separated list)
    #[arg(
        help_heading = "Node options",
        long = "peer",
        env = "ZRE_PEERS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "ENDPOINT",
        value_hint = ValueHint::Url,
        value_parser = parse_peer
    )]
    pub static_peers: Vec<String>,

    /// Tell peers to connect to our mailbox at tcp://HOST:PORT (behind NAT or in a
    /// container: an address and port forwarded to --mailbox-port). Sent in HELLO and
    /// published by gossip; peers that hear our beacon use its source address instead
    #[arg(
        help_heading = "Node options",
        long,
        env = "ZRE_ADVERTISE",
        hide_env_values = true,
        value_name = "ENDPOINT",
        value_hint = ValueHint::Url,
        value_parser = parse_peer
    )]
    pub advertise: Option<String>,

    /// Be a gossip hub on tcp://IP:PORT: nodes given --gossip-connect (ours or Zyre's)
    /// meet there, across subnets (repeatable; ZRE_GOSSIP_BIND takes a comma-separated list)
    #[arg(
        help_heading = "Node options",
        long,
        env = "ZRE_GOSSIP_BIND",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "ENDPOINT",
        value_hint = ValueHint::Url,
        value_parser = parse_peer
    )]
    pub gossip_bind: Vec<String>,

    /// Meet peers through the gossip hub at tcp://HOST:PORT, ours or Zyre's (repeatable;
    /// ZRE_GOSSIP_CONNECT takes a comma-separated list)
    #[arg(
        help_heading = "Node options",
        long,
        env = "ZRE_GOSSIP_CONNECT",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "ENDPOINT",
        value_hint = ValueHint::Url,
        value_parser = parse_peer
    )]
    pub gossip_connect: Vec<String>,

    /// CURVE: encrypt and authenticate with this secret certificate (CZMQ's zcert; FILE or
    /// FILE_secret, as zre-keygen writes them); only CURVE peers are met
    #[arg(
        help_heading = "Security options",
        long,
        env = "ZRE_CURVE",
        hide_env_values = true,
        value_name = "SECRET_CERT",
        value_hint = ValueHint::FilePath,
        value_parser = parse_cert
    )]
    pub curve: Option<crate::curve::Cert>,

    /// With --curve: accept only the keys in DIR (public certificates, as zauth) or FILE
    /// (Z85 keys, one a line), re-read when it changes; without it, any key is accepted
    #[arg(
        help_heading = "Security options",
        long,
        env = "ZRE_ALLOW",
        hide_env_values = true,
        value_name = "DIR|FILE",
        value_hint = ValueHint::AnyPath,
        requires = "curve"
    )]
    pub allow: Option<PathBuf>,

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

    /// Run over IPv6 as Zyre does with ZSYS_IPV6=1: beacons to ff02::1 on the interface,
    /// only IPv6 peers; the interface's first IPv6 address, or the one given to --interface
    #[arg(
        help_heading = "Node options",
        long,
        env = "ZSYS_IPV6",
        hide_env_values = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub ipv6: bool,
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
            .verbose(self.verbose)
            .ipv6(self.ipv6)
            .beacon(!self.no_beacon);
        if let Some(uuid) = self.uuid {
            b = b.uuid(uuid);
        }
        if let Some(path) = &self.identity {
            b = b.identity_file(path);
        }
        if let Some(port) = self.mailbox_port {
            b = b.mailbox_port(port);
        }
        if let Some(name) = &self.name {
            b = b.name(name);
        }
        if let Some(iface) = &self.interface {
            b = b.interface(iface);
        }
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        for endpoint in &self.static_peers {
            b = b.peer(endpoint);
        }
        if let Some(endpoint) = &self.advertise {
            b = b.advertised_endpoint(endpoint);
        }
        for endpoint in &self.gossip_bind {
            b = b.gossip_bind(endpoint);
        }
        for endpoint in &self.gossip_connect {
            b = b.gossip_connect(endpoint);
        }
        if let Some(cert) = &self.curve {
            b = b.curve(cert.clone());
        }
        if let Some(path) = &self.allow {
            b = b.allow(path);
        }
        b
    }
}

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line (NDJSON)
    Json,
    /// One readable line per event, what peers send escaped, coloured on a terminal
    Human,
}

/// When `--format human` is coloured, as in rg, fd and jq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// On a terminal, unless NO_COLOR is set (not empty); CLICOLOR_FORCE (not 0) forces it
    Auto,
    /// Always, also into a pipe or a file
    Always,
    /// Never
    Never,
}

impl Color {
    /// Whether output in `format` to a terminal (or not) is coloured. JSON never is.
    pub fn enabled(self, format: Format, terminal: bool) -> bool {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        format == Format::Human
            && match self {
                Color::Always => true,
                Color::Never => false,
                // NO_COLOR wins over CLICOLOR_FORCE, as in anstream (clap's colours).
                Color::Auto if set("NO_COLOR") => false,
                Color::Auto => {
                    terminal
                        || (set("CLICOLOR_FORCE")
                            && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0"))
                }
            }
    }
}

/// The output flags of the commands that print events.
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
    /// When --format human is coloured
    #[arg(
        help_heading = "Output options",
        long,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: Color,
}

/// The event types `zre-listen --type` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventType {
    /// A peer appeared
    Enter,
    /// A peer left or expired
    Exit,
    /// A peer joined a group
    Join,
    /// A peer left a group
    Leave,
    /// A message to us
    Whisper,
    /// A message to a group
    Shout,
    /// A peer has been quiet for --evasive
    Evasive,
    /// A peer has been quiet for longer
    Silent,
    /// A group elected its leader (--contest)
    Leader,
    /// We stopped (printed last)
    Stop,
}

impl EventType {
    /// The `type` field of the events of this type.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Enter => "enter",
            EventType::Exit => "exit",
            EventType::Join => "join",
            EventType::Leave => "leave",
            EventType::Whisper => "whisper",
            EventType::Shout => "shout",
            EventType::Evasive => "evasive",
            EventType::Silent => "silent",
            EventType::Leader => "leader",
            EventType::Stop => "stop",
        }
    }
}

/// `zre-listen`: print every event.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-listen",
    version,
    about = "Join ZRE groups and print every event, one JSON object per line",
    long_about = "Join the given groups (none: presence and whispers only) and print every \
event the node sees: enter, exit, join, leave, whisper, shout, evasive, silent, leader (a group \
it is in elected a leader: see --contest) and, last, stop. \
--type and --from select events, and --count counts only those, so that \
`zre-listen --type shout,whisper --from bob --count 1 --timeout 30s` waits for bob's next \
message; the exit status then says, as grep's does, whether it came (0) or --timeout ended the \
run first (1). Finer filtering is jq's job."
)]
pub struct ListenArgs {
    /// Exit 0 after printing N events (those --type and --from select)
    #[arg(help_heading = "Listen options", long, short = 'c', value_name = "N")]
    pub count: Option<u64>,
    /// Exit after D (e.g. 10s); with --count, exit 1 when D ends the run first
    #[arg(help_heading = "Listen options", long, short = 't', value_name = "D", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Print only events of these types (comma-separated or repeated)
    #[arg(
        help_heading = "Listen options",
        long = "type",
        value_enum,
        value_delimiter = ',',
        value_name = "TYPE"
    )]
    pub types: Vec<EventType>,
    /// Print only events from this peer, by name or UUID (repeatable: any of them)
    #[arg(help_heading = "Listen options", long, value_name = "NAME|UUID")]
    pub from: Vec<String>,
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
    /// Read NDJSON objects from stdin: "text" or "frames", optional "group" (zre-shout);
    /// objects whose "type" is not shout or whisper (zre-listen's other events) are skipped
    #[arg(help_heading = "Sending options", long, group = "input")]
    pub json: bool,
    /// Read messages separated by NUL bytes, not newlines (find -print0, xargs -0)
    #[arg(help_heading = "Sending options", long, short = '0', group = "input")]
    pub null: bool,
    /// Send all of stdin as one message (e.g. a binary file)
    #[arg(help_heading = "Sending options", long, group = "input")]
    pub whole: bool,
    /// Give up when the recipients are not there after D
    #[arg(help_heading = "Sending options", long, short = 'w', value_name = "D", default_value = "5s", value_parser = parse_duration)]
    pub wait: Duration,
}

impl SendArgs {
    /// How stdin is cut into messages.
    pub fn input(&self) -> super::input::Mode {
        use super::input::Mode;
        if self.json {
            Mode::Json
        } else if self.null {
            Mode::Null
        } else if self.whole {
            Mode::Whole
        } else {
            Mode::Lines
        }
    }
}

/// `zre-shout`: send to a group.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-shout",
    version,
    mut_arg("groups", |a| a
        .help("The group to shout to; then every argument is MESSAGE")
        .help_heading("Shout options")),
    mut_arg("contest", |a| a.hide(true)),
    about = "Shout a message, or each line of stdin, to a ZRE group",
    long_about = "Shout MESSAGE (the arguments joined by spaces, as one frame) to GROUP, or \
each line of stdin when no MESSAGE is given (-0: each NUL-terminated record, --whole: all of \
it). The group is the first argument, or -g GROUP; then every argument is MESSAGE. Before \
sending it waits until --peers members of the group are present, up to --wait; if they do not \
show up it says so and exits 1. With --json each stdin line is an object with \"text\" or \
\"frames\" and an optional \"group\" (which overrides GROUP; -g GROUP overrides it), so the output \
of zre-listen can be piped back in: `zre-listen -g A | zre-shout --json -g B` relays A's \
shouts to B."
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
    /// The group to shout to (unless -g names it)
    #[arg(
        help_heading = "Arguments",
        value_name = "GROUP",
        required_unless_present_any = ["json", "groups"],
        value_parser = parse_name
    )]
    pub group: Option<String>,
    /// The message (default: read stdin)
    #[arg(
        help_heading = "Arguments",
        value_name = "MESSAGE",
        conflicts_with = "input"
    )]
    pub message: Vec<String>,
    /// True when `group` came from -g: it then wins over the "group" of `--json` lines.
    #[arg(skip)]
    pub group_flag: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub node: NodeArgs,
}

impl ShoutArgs {
    /// Makes `-g GROUP` the group to shout to: the positional arguments are then all
    /// MESSAGE, and zre-shout joins no group. Without -g, nothing changes.
    pub fn resolve_group_flag(&mut self) -> Result<(), String> {
        match self.node.groups.as_slice() {
            [] => Ok(()),
            [g] => {
                let g = g.clone();
                if let Some(first) = self.group.take() {
                    if self.send.json || self.send.null || self.send.whole {
                        return Err(format!(
                            "-g {} names the group; a MESSAGE argument cannot be given with \
                             --json, -0 or --whole",
                            shorten(&g)
                        ));
                    }
                    self.message.insert(0, first);
                }
                self.group = Some(g);
                self.group_flag = true;
                self.node.groups.clear();
                Ok(())
            }
            _ => Err("zre-shout takes one -g GROUP, the group to shout to".into()),
        }
    }
}

/// `zre-whisper`: send to one peer.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "zre-whisper",
    version,
    mut_arg("contest", |a| a.hide(true)),
    about = "Whisper a message, or each line of stdin, to one ZRE peer",
    long_about = "Whisper MESSAGE (the arguments joined by spaces, as one frame) to PEER, or \
each line of stdin when no MESSAGE is given. PEER is a UUID (32 hex digits, any case, hyphens \
allowed) or a name; a name that several peers share is an error listing them. It waits for PEER \
up to --wait. -0 reads NUL-terminated records, --whole all of stdin as one message. With --json \
each stdin line is an object with \"text\" or \"frames\". zre-whisper joins no group: -g is \
refused."
)]
pub struct WhisperArgs {
    /// The peer: its UUID or its name
    #[arg(help_heading = "Arguments", value_name = "PEER")]
    pub peer: String,
    /// The message (default: read stdin)
    #[arg(
        help_heading = "Arguments",
        value_name = "MESSAGE",
        conflicts_with = "input"
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
whisper with a \"Hello\" shout to GLOBAL, as Zyre's zpinger does, printing every event. Each \
peer is pinged when it enters and, with --interval, again every D; a ping is a ZRE PING that \
the peer's node answers with a PING-OK, timed by our node (Node::ping), whatever the peer's \
application does. Each round trip is reported, with a summary per peer at the end. As ping(8): \
--count N stops after N pings per peer (after N intervals when no peer came), -w bounds the \
whole run, -q prints only the summaries, and the exit status is 1 when no ping was answered. \
The beacon interval is --beacon-interval here."
)]
pub struct PingArgs {
    /// Ping each peer again every D
    #[arg(help_heading = "Ping options", long = "interval", id = "every", value_name = "D", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Stop once every peer was pinged N times, or after N intervals when no peer came
    /// (implies --interval 1s)
    #[arg(help_heading = "Ping options", long, short = 'c', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// A ping not answered within D is lost
    #[arg(help_heading = "Ping options", long, short = 'W', value_name = "D", default_value = "5s", value_parser = parse_duration)]
    pub reply_timeout: Duration,
    /// Stop after D, however many pings were sent or answered (ping(8) -w)
    #[arg(help_heading = "Ping options", long, short = 'w', value_name = "D", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Print only the summaries (no events, no rtt or lost lines)
    #[arg(help_heading = "Ping options", long, short = 'q')]
    pub quiet: bool,
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
into place). DIR is created if missing. One zre-dir at a time keeps a directory: it locks \
DIR/.zre-dir.lock (flock) and a second one exits 1. It removes only files it wrote, which it lists \
in DIR/.zre-dir.written: ours at exit, and at start those a crashed run left; anything else in DIR \
is left alone."
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
    #[arg(help_heading = "Arguments", value_name = "DIR", value_hint = ValueHint::DirPath)]
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

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page (roff)
    Man,
    /// The bash completion script
    Bash,
    /// The zsh completion script
    Zsh,
    /// The fish completion script
    Fish,
}

/// The id of the `--generate` flag.
const GENERATE: &str = "generate";

/// `T`'s command line as the command parses it and its man page shows it: clap's
/// definition, plus `--generate KIND`, which every command takes (as `rg --generate`).
pub fn command<T: CommandFactory>() -> Command {
    T::command().arg(
        Arg::new(GENERATE)
            .long("generate")
            .value_name("KIND")
            .value_parser(EnumValueParser::<Generate>::new())
            .help("Print this command's man page or completion script, and exit"),
    )
}

/// Parses the command line of a command without node flags (zre-keygen) as
/// [`Checked::parse_checked`] does: `--generate KIND`, then clap's parse, a usage error
/// being one line `zre-xxx: error: ...` and exit 2.
pub fn parse_plain<T: Parser>() -> T {
    let cmd = command::<T>();
    if let Some(kind) = generate_asked(&cmd) {
        generate_and_exit(cmd, kind);
    }
    let parsed = cmd
        .clone()
        .try_get_matches()
        .and_then(|mut m| T::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(a) => a,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                use std::io::Write as _;
                let line = usage_line(&cmd, &e);
                let _ = writeln!(std::io::stderr(), "{}: error: {line}", cmd.get_name());
                std::process::exit(super::EXIT_USAGE.into());
            }
        },
    }
}

/// When the command line asks for `--generate KIND`, that KIND. It is looked for with
/// every argument optional, so that `zre-whisper --generate man` needs no PEER; any other
/// problem with the line is left to the real parse, which reports it.
fn generate_asked(cmd: &Command) -> Option<Generate> {
    let relaxed = cmd
        .clone()
        .mut_args(|a| a.required(false).required_unless_present(Resettable::Reset))
        .disable_help_flag(true)
        .disable_version_flag(true);
    let matches: ArgMatches = relaxed.try_get_matches().ok()?;
    matches.get_one::<Generate>(GENERATE).copied()
}

/// Prints what `--generate` asked for on stdout and exits: 0, also into a closed pipe;
/// 1 when stdout cannot be written, with one line on stderr.
fn generate_and_exit(cmd: Command, kind: Generate) -> ! {
    use std::io::Write as _;
    let name = cmd.get_name().to_string();
    let written = super::docs::generate(cmd, kind).and_then(|bytes| {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()
    });
    match written {
        Ok(()) => std::process::exit(super::EXIT_OK.into()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(super::EXIT_OK.into())
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: error: cannot write: {e}");
            std::process::exit(super::EXIT_FAILURE.into())
        }
    }
}

/// A command line with checks that span flags (the node's timers against each other,
/// duplicate headers), which clap's value parsers cannot make.
pub trait Checked: Parser {
    /// The command joins groups (`-g`, `--contest`); the others refuse `--contest`.
    const JOINS: bool = true;

    /// The node flags.
    fn node_args(&self) -> &NodeArgs;

    /// Checks this command's own rules once all flags are read.
    fn check(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Parses the command line like [`Parser::parse`], then checks what spans flags (the
    /// timers, evasive < silent < expired, see [`Timers::check`]; duplicate header keys).
    /// A usage error, clap's own too, is one line `zre-xxx: error: ...` on stderr that
    /// names the environment variable a bad value came from and shortens long values;
    /// exit 2. `--help` and `--version` print as clap prints them; `--generate KIND`
    /// prints the man page or a completion script ([`Generate`]).
    fn parse_checked() -> Self {
        let cmd = command::<Self>();
        if let Some(kind) = generate_asked(&cmd) {
            generate_and_exit(cmd, kind);
        }
        let name = cmd.get_name().to_string();
        let fail = |msg: String| -> ! {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{name}: error: {msg}");
            std::process::exit(super::EXIT_USAGE.into());
        };
        // A variable set but blank is unset, as the library reads ZSYS_INTERFACE. This
        // runs before any thread starts, so changing the environment is safe.
        for k in Self::command().get_arguments().filter_map(|a| a.get_env()) {
            if std::env::var_os(k).is_some_and(|v| v.to_string_lossy().trim().is_empty()) {
                std::env::remove_var(k);
            }
        }
        let parsed = cmd
            .clone()
            .try_get_matches()
            .and_then(|mut m| Self::from_arg_matches_mut(&mut m));
        let mut args = match parsed {
            Ok(a) => a,
            Err(e) => match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
                _ => fail(usage_line(&cmd, &e)),
            },
        };
        if let (false, Some(g)) = (Self::JOINS, args.node_args().contest.first()) {
            fail(format!(
                "{name} joins no group (--contest {}): contest from zre-listen, zre-dir or \
                 zre-ping",
                shorten(g)
            ));
        }
        if let Err(e) = args.node_args().timers().check() {
            fail(e.to_string());
        }
        let mut keys = std::collections::HashSet::new();
        for (k, _) in &args.node_args().headers {
            if !keys.insert(k.as_str()) {
                fail(format!("--header {} is given twice", shorten(k)));
            }
        }
        if let Err(e) = args.check() {
            fail(e);
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
checked!(ListenArgs, PingArgs, DirArgs);

impl Checked for ShoutArgs {
    const JOINS: bool = false;
    fn node_args(&self) -> &NodeArgs {
        &self.node
    }
    fn check(&mut self) -> Result<(), String> {
        self.resolve_group_flag()
    }
}

impl Checked for WhisperArgs {
    const JOINS: bool = false;
    fn node_args(&self) -> &NodeArgs {
        &self.node
    }
    fn check(&mut self) -> Result<(), String> {
        match self.node.groups.first() {
            None => Ok(()),
            Some(g) => Err(format!(
                "zre-whisper joins no group (-g {}); it whispers to PEER, its first argument: \
                 zre-whisper PEER [MESSAGE...]",
                shorten(g)
            )),
        }
    }
}

/// The longest value a usage error repeats; longer ones are cut, with their length.
const SHOWN: usize = 40;

/// `s` as a usage error shows it: quoted, escaped, cut after 40 characters.
pub fn shorten(s: &str) -> String {
    let n = s.chars().count();
    let cut: String = s.chars().take(SHOWN).collect();
    let shown = super::output::escape(&cut);
    if n > SHOWN {
        format!("'{shown}...' ({} bytes)", s.len())
    } else {
        format!("'{shown}'")
    }
}

/// A clap error as one line: what is wrong, the value (shortened), the flag, and, when
/// the value came from the environment, which variable (`ZRE_PORT=abc`).
fn usage_line(cmd: &clap::Command, e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let get = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(flag), Some(value)) = (get(ContextKind::InvalidArg), get(ContextKind::InvalidValue))
    else {
        // Not about one value: clap's first line, without its "error: ".
        let text = e.render().to_string();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("bad arguments");
        let first = first.strip_prefix("error: ").unwrap_or(first);
        // "not provided:" is followed by the missing arguments, one per indented line.
        if first.ends_with(':') {
            let listed: Vec<&str> = lines
                .take_while(|l| l.starts_with(' '))
                .map(str::trim)
                .collect();
            return format!("{first} {} (see --help)", listed.join(", "));
        }
        return format!("{first} (see --help)");
    };
    let why = match e.kind() {
        ErrorKind::InvalidValue => match e.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(v)) => format!("possible values: {}", v.join(", ")),
            _ => "invalid value".into(),
        },
        _ => std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "invalid value".into()),
    };
    // `--port <PORT>` -> the argument, and its variable if the value is that variable's.
    let long = flag.split_whitespace().next().unwrap_or(&flag).to_string();
    let env = cmd
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == long))
        .and_then(|a| a.get_env())
        .and_then(|k| {
            let v = std::env::var_os(k)?;
            (v.to_string_lossy() == value).then(|| k.to_string_lossy().into_owned())
        });
    let given_on_line = std::env::args()
        .skip(1)
        .any(|a| a == long || a.starts_with(&format!("{long}=")) || short_of(cmd, &long, &a));
    match env {
        Some(k) if !given_on_line => format!("{k}={}: {why} ({long})", shorten_bare(&value)),
        _ => format!("{long} {}: {why}", shorten(&value)),
    }
}

/// True when `arg` is the short form of the flag `long` (`-p` for `--port`).
fn short_of(cmd: &clap::Command, long: &str, arg: &str) -> bool {
    cmd.get_arguments()
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == long))
        .and_then(|a| a.get_short())
        .is_some_and(|c| arg.starts_with(&format!("-{c}")))
}

/// Like [`shorten`], without quotes (for `VAR=value`).
fn shorten_bare(s: &str) -> String {
    let q = shorten(s);
    q.strip_prefix('\'')
        .map(|r| r.replacen('\'', "", 1))
        .unwrap_or(q)
}

/// Where the interface the node tried came from, for an error about it: `--interface`,
/// `ZRE_INTERFACE=..` or `ZSYS_INTERFACE=..` (empty when none: the default choice).
pub fn interface_source(args: &NodeArgs) -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match &args.interface {
        Some(i)
            if var("ZRE_INTERFACE").as_deref() == Some(i.as_str())
                && !std::env::args().any(|a| a == "-i" || a.starts_with("--interface")) =>
        {
            format!("ZRE_INTERFACE={}: ", shorten_bare(i))
        }
        Some(i) => format!("--interface {}: ", shorten(i)),
        None => match var("ZSYS_INTERFACE") {
            Some(v) => format!("ZSYS_INTERFACE={}: ", shorten_bare(&v)),
            None => String::new(),
        },
    }
}

/// The longest name, group or header key: a ZRE `string` has a 1-byte length.
pub const MAX_NAME: usize = 255;

/// Parses a node name or a group: 1 to 255 bytes.
pub fn parse_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_NAME {
        return Err(format!(
            "is {} bytes; the wire allows at most {MAX_NAME}",
            s.len()
        ));
    }
    Ok(s.to_string())
}

/// Parses an interface name or IP address: 1 to 64 bytes (Linux names have at most 15),
/// so that the error that lists the interfaces never repeats a long value.
pub fn parse_interface(s: &str) -> Result<String, String> {
    match s.trim().len() {
        0 => Err("must not be empty".into()),
        n if n > 64 => Err(format!("is {n} bytes; no interface has such a name")),
        _ => Ok(s.to_string()),
    }
}

/// Parses a static peer's endpoint: `tcp://HOST:PORT`.
pub fn parse_peer(s: &str) -> Result<String, String> {
    crate::proto::node::check_endpoint(s)
        .map(|()| s.to_string())
        .map_err(|_| "want tcp://HOST:PORT, port 1 to 65535".into())
}

/// Reads a secret certificate (`--curve`): FILE_secret, or FILE with FILE_secret beside it.
pub fn parse_cert(s: &str) -> Result<crate::curve::Cert, String> {
    crate::curve::Cert::load_secret(s).map_err(|e| e.to_string())
}

/// Parses a UUID: 32 hex digits in either case, or 8-4-4-4-12 with hyphens.
pub fn parse_uuid(s: &str) -> Result<crate::Uuid, String> {
    crate::identity::parse_uuid(s)
}

/// Parses `KEY=VALUE`; KEY is 1 to 255 bytes.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => {
            if k.len() > MAX_NAME {
                return Err(format!(
                    "its KEY is {} bytes; the wire allows at most {MAX_NAME}",
                    k.len()
                ));
            }
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err("expected KEY=VALUE".into()),
    }
}
