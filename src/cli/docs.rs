//! Man pages and shell completions, rendered from the same clap definitions the commands
//! parse ([`args::command`]). Each command prints its own: `zre-listen --generate man`
//! (`bash`, `zsh`, `fish`). The committed `man/` and `completions/` are that output; a test
//! (tests/cli_docs.rs) fails when they differ, and says how to regenerate them.

use std::io;

use clap::Command;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};

use super::args::{self, DirArgs, Generate, ListenArgs, PingArgs, ShoutArgs, WhisperArgs};
use super::args_tools::PeersArgs;

/// Every user command, as it parses its command line (with `--generate`).
pub fn commands() -> Vec<Command> {
    vec![
        args::command::<ListenArgs>(),
        args::command::<ShoutArgs>(),
        args::command::<WhisperArgs>(),
        args::command::<PingArgs>(),
        args::command::<DirArgs>(),
        args::command::<PeersArgs>(),
        args::command::<super::args_tools::KeygenArgs>(),
    ]
}

/// What `cmd --generate kind` prints: its man page, or its completion script for a shell.
pub fn generate(cmd: Command, kind: Generate) -> io::Result<Vec<u8>> {
    Ok(match kind {
        Generate::Man => man_page(cmd)?,
        Generate::Bash => completion(&cmd, Shell::Bash),
        Generate::Zsh => completion(&cmd, Shell::Zsh),
        Generate::Fish => completion(&cmd, Shell::Fish),
    })
}

/// Where the committed copy of `cmd --generate kind` lives, relative to the project root:
/// `man/zre-listen.1`, `completions/bash/zre-listen`, `completions/zsh/_zre-listen`,
/// `completions/fish/zre-listen.fish`.
pub fn committed_path(name: &str, kind: Generate) -> String {
    match kind {
        Generate::Man => format!("man/{name}.1"),
        Generate::Bash => format!("completions/bash/{name}"),
        Generate::Zsh => format!("completions/zsh/_{name}"),
        Generate::Fish => format!("completions/fish/{name}.fish"),
    }
}

/// One command's completion script for `shell`: clap's, suggesting interface names for
/// `--interface` too.
pub fn completion(cmd: &Command, shell: Shell) -> Vec<u8> {
    let mut c = cmd.clone();
    let mut bytes = Vec::new();
    clap_complete::generate(shell, &mut c, cmd.get_name().to_string(), &mut bytes);
    complete_interfaces(shell, &String::from_utf8_lossy(&bytes)).into_bytes()
}

/// Makes a completion script suggest interface names for `-i`/`--interface`, which clap
/// cannot: its value hints have no such kind. bash lists /sys/class/net; zsh and fish
/// have their own functions for it.
fn complete_interfaces(shell: Shell, script: &str) -> String {
    match shell {
        Shell::Bash => {
            let clap_says = "COMPREPLY=(\"${cur}\")
                    if [[ \"${BASH_VERSINFO[0]}\" -ge 4 ]]; then
                        compopt -o nospace
                    fi
                    return 0";
            let ours =
                "COMPREPLY=($(compgen -W \"$(ls /sys/class/net 2>/dev/null)\" -- \"${cur}\"))
                    return 0";
            let mut out = script.to_string();
            for flag in ["--interface)", "-i)"] {
                out = out.replace(
                    &format!("{flag}\n                    {clap_says}"),
                    &format!("{flag}\n                    {ours}"),
                );
            }
            out
        }
        Shell::Zsh => script.replace(":NAME|IP:' \\", ":NAME|IP:_net_interfaces' \\"),
        Shell::Fish => script
            .lines()
            .map(|l| {
                if l.contains(" -l interface ") {
                    format!("{l} -a \"(__fish_print_interfaces)\"\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect(),
        _ => script.to_string(),
    }
}

fn section(w: &mut Vec<u8>, title: &str, paragraphs: &[&str]) -> io::Result<()> {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    for (i, p) in paragraphs.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*p)]);
    }
    roff.to_writer(w)
}

fn table(w: &mut Vec<u8>, title: &str, intro: &str, rows: &[(&str, &str)]) -> io::Result<()> {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    roff.text([roman(intro)]);
    for (term, text) in rows {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
    roff.to_writer(w)
}

const FORMAT_INTRO: &str = "With --format json (the default) every event is one JSON object \
on one line (NDJSON), flushed at once, so that the output can be piped into jq. The first field \
is \"type\"; the fields are:";

const INPUT_FORMAT: &str = "Without --json each stdin line (without its newline; a carriage \
return before it stays) is sent as one frame, its bytes untouched. With -0 (--null) each record \
ended by a NUL byte is one frame, as find -print0 writes them; with --whole all of stdin is one \
frame, e.g. a binary file. With --json each line is a JSON object as zre-listen prints them: \
\"frames\" (each {\"text\": ...} or {\"base64\": ...}) or else \"text\"; zre-shout also reads \
an optional \"group\" that overrides GROUP (and that -g GROUP overrides). Objects whose \
\"type\" is not shout or whisper (zre-listen's enter, join, ... events) and blank lines are \
skipped; a bad line is an error naming its line number.";

const EXIT_ROWS: &[(&str, &str)] = &[
    (
        "0",
        "Done; also after Ctrl-C (SIGINT), SIGTERM or a closed output pipe (noticed within a \
tenth of a second even while nothing is printed, as after | head -1). Peers see the node exit \
at once. zre-listen: --count events were printed.",
    ),
    (
        "1",
        "Runtime failure (nobody to deliver to, the node failed, an --identity file that \
holds no UUID, a --mailbox-port in use, ...): one line \
\"zre-xxx: error: ...\" on stderr. zre-listen: --timeout ended the run before --count events \
were printed (nothing on stderr, as grep finding nothing). zre-ping: no ping was answered \
(no peer, or total loss; nothing on stderr, as ping(8)). zre-dir: DIR is kept by another \
zre-dir.",
    ),
    (
        "2",
        "Usage error, in one line \"zre-xxx: error: ...\" that names the flag or the \
environment variable the bad value came from: bad arguments, an unknown interface, a duplicate \
--header key, a --uuid that is not one, --uuid with --identity, timers that do not fit together (--evasive must be below --expired, with room \
for silent, evasive + a fifth, between them).",
    ),
    (
        "130, 143, 129",
        "zre-shout and zre-whisper: interrupted before everything was delivered, by Ctrl-C \
(SIGINT: 130), SIGTERM (143) or SIGHUP (129), 128 + the signal as a shell reports a process \
that signal killed; the line on stderr says what was not. Interrupted with nothing owed, they \
exit 0.",
    ),
];

const ENV_ROWS: &[(&str, &str)] = &[
    ("ZRE_INTERFACE", "The default for --interface."),
    (
        "ZSYS_INTERFACE",
        "The default for --interface when ZRE_INTERFACE is not set, as Zyre (CZMQ) reads it.",
    ),
    (
        "ZSYS_IPV6",
        "1 (or true, yes, on) is --ipv6, as Zyre (CZMQ) reads it; 0 (false, no, off) or \
empty is IPv4.",
    ),
    ("ZRE_PORT", "The default for --port."),
    (
        "ZRE_UUID",
        "The default for --uuid. Every command that sees it takes that UUID: set it for one \
command, not for a whole shell.",
    ),
    (
        "ZRE_IDENTITY",
        "The default for --identity (the same caution as ZRE_UUID: commands sharing the file \
share the UUID).",
    ),
    (
        "NO_COLOR",
        "When set and not empty, --color auto prints no colour.",
    ),
    (
        "CLICOLOR_FORCE",
        "When set and not 0, --color auto colours also into a pipe (NO_COLOR wins).",
    ),
];

fn extra(name: &str) -> (Vec<String>, Vec<&'static str>) {
    use super::schema::shape;
    // (extra OUTPUT paragraphs, EXAMPLES)
    match name {
        "zre-listen" => (
            vec![],
            vec![
                "zre-listen --interface lo --group CHAT",
                "zre-listen -i lo -g CHAT | jq -r 'select(.type == \"shout\") | .text'",
                "zre-listen -i lo --count 1 --timeout 10s",
                "zre-listen -i lo -g CHAT --type shout,whisper --from bob --count 1 --timeout 30s",
            ],
        ),
        "zre-shout" => (
            vec!["zre-shout prints nothing on stdout.".to_string()],
            vec![
                "zre-shout --interface lo CHAT hello world",
                "tail -f log | zre-shout -i lo --peers 2 LOGS",
                "zre-shout -i lo --whole FILES < picture.png",
                "zre-listen -i lo -g A | zre-shout -i lo --json -g B",
            ],
        ),
        "zre-whisper" => (
            vec!["zre-whisper prints nothing on stdout.".to_string()],
            vec![
                "zre-whisper --interface lo alice 'are you there?'",
                "echo '{\"frames\":[{\"text\":\"key\"},{\"base64\":\"AAEC\"}]}' | zre-whisper -i lo --json 5E1C0D5BE71F4A4BA7C1E0E7B9F4AA01",
            ],
        ),
        "zre-ping" => (
            vec![
                format!("Beside the events, zre-ping prints these objects: \
{} for each answered ping; \
{} for a ping not answered within \
--reply-timeout or when the peer exits; and at the end, for each peer pinged, \
{} where loss is a percentage and the times are null when nothing came back. \
A ping is a ZRE PING that the peer's node answers with a PING-OK (any ZRE node does, Zyre's \
and pyre's too), timed by our node from sending the PING to reading the PING-OK, so that \
rtt_ms includes what was queued on the link ahead of either; seq counts the pings to that \
peer from 1. zpinger's \"Hello\" whispers and shouts are printed as events and answer no \
ping. Pings still out when the run ends early (Ctrl-C, -w) are given a tenth of a second, \
then not counted. -q prints only the summaries. The exit status is 1, as ping(8)'s, when no \
ping was answered (no peer, or total loss), also after Ctrl-C, and 0 otherwise.",
                shape("rtt"), shape("lost"), shape("summary")),
            ],
            vec![
                "zre-ping --interface lo",
                "zre-ping -i lo --interval 1s --count 5 --format human",
                "zre-ping -i lo -w 10s -q | jq -r '\"\\(.name) \\(.loss)%\"'",
            ],
        ),
        "zre-dir" => (
            vec![
                format!("With --format json each file holds {} (since: when the peer entered, RFC 3339 UTC). With \
--format zyredir it holds [name, endpoint, headers]. zre-dir prints nothing on stdout. \
It keeps three files of its own in DIR while it runs, .zre-dir.lock, .zre-dir.written and \
(briefly) .zre-dir.tmp; DIR that is a file is a usage error (exit 2), and DIR that another \
zre-dir keeps a runtime failure (exit 1).", shape("file")),
            ],
            vec![
                "zre-dir --interface lo /run/zre/peers",
                "jq -r .name /run/zre/peers/*.json",
            ],
        ),
        "zre-peers" => (
            vec![
                format!("With --format json (the default) each peer present is one JSON object on one \
line, \"type\" first: {}, where peer is its UUID (32 upper-case hex digits), \
headers an object, groups a sorted array and rtt_ms the round trip of a ZRE PING measured \
by our node just before listing (null when it did not answer within --wait). With --format \
human, one line a peer, what the peer chose escaped. Peers are sorted by name. Nothing to \
list is not an error: exit 0 with no output, as fd and rg --files.", shape("peer")),
            ],
            vec![
                "zre-peers --interface lo",
                "zre-peers -i lo -g CHAT | jq -r .name",
                "zre-peers -i lo --wait 5s --format human",
            ],
        ),
        _ => (vec![], vec![]),
    }
}

/// Renders one man page: clap's sections, then the output format, exit status,
/// environment and examples.
pub fn man_page(cmd: Command) -> io::Result<Vec<u8>> {
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd).manual("zre manual");
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    man.render_options_section(&mut w)?;
    let (output, examples) = extra(&name);
    match name.as_str() {
        "zre-listen" | "zre-ping" => {
            let rows = super::schema::man_rows();
            let rows: Vec<(&str, &str)> = rows.iter().map(|(f, m)| (*f, m.as_str())).collect();
            table(&mut w, "OUTPUT FORMAT", FORMAT_INTRO, &rows)?
        }
        "zre-shout" | "zre-whisper" => section(&mut w, "INPUT FORMAT", &[INPUT_FORMAT])?,
        _ => {}
    }
    if !output.is_empty() {
        let output: Vec<&str> = output.iter().map(String::as_str).collect();
        section(&mut w, "OUTPUT", &output)?;
    }
    table(&mut w, "EXIT STATUS", "", EXIT_ROWS)?;
    table(&mut w, "ENVIRONMENT", "", ENV_ROWS)?;
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    for ex in examples {
        roff.control("PP", []);
        roff.text([italic(ex)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "zre-listen(1), zre-shout(1), zre-whisper(1), zre-ping(1), zre-dir(1), zre-peers(1), \
jq(1)",
    )]);
    roff.to_writer(&mut w)?;
    man.render_version_section(&mut w)?;
    Ok(w)
}
