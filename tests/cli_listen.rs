//! zre-listen with zre-shout: text, stdin lines, binary and multi-frame content via
//! `--json`, the NDJSON fields, and `--count`.

mod cli_support;

use base64::Engine as _;
use cli_support::*;
use serde_json::{json, Value};

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn listen_prints_a_shout_from_the_command_line() {
    let port = 46010;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--name", "ear", "--group", "G"]));
    let mut shout = Proc::spawn(
        SHOUT,
        &with(
            port,
            &[
                "--name", "mouth", "--header", "X-K=v", "G", "hello", "world",
            ],
        ),
    );
    let enter = listen.expect("enter", |v| kind(v) == "enter" && v["name"] == "mouth");
    assert!(listen
        .seen
        .last()
        .unwrap()
        .starts_with(r#"{"type":"enter","time":""#));
    let peer = enter["peer"].as_str().unwrap().to_string();
    assert!(is_uuid_hex(&peer), "{peer}");
    assert!(enter["endpoint"]
        .as_str()
        .unwrap()
        .starts_with("tcp://127."));
    assert_eq!(enter["headers"], json!({"X-K": "v"}));
    let time = enter["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.len() == 24,
        "RFC 3339 UTC: {time}"
    );
    assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");

    let s = listen.expect("shout", |v| kind(v) == "shout");
    assert_eq!(s["peer"], peer.as_str());
    assert_eq!(s["name"], "mouth");
    assert_eq!(s["group"], "G");
    assert_eq!(s["text"], "hello world");
    assert_eq!(s["frames"], json!([{"text": "hello world"}]));
    shout.assert_exit(0);
    listen.expect("exit", |v| kind(v) == "exit" && v["peer"] == peer.as_str());
}

#[test]
fn shout_sends_each_stdin_line_untouched() {
    let port = 46011;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--group", "LINES"]));
    let mut shout = Proc::spawn_stdin(SHOUT, &with(port, &["LINES"]));
    shout.write_stdin(b"first\nnot utf-8 \xff\xfe\n\nlast");
    shout.close_stdin();
    let a = listen.expect("first", |v| kind(v) == "shout");
    assert_eq!(a["text"], "first");
    let b = listen.expect("second", |v| kind(v) == "shout");
    let raw = base64::engine::general_purpose::STANDARD.encode(b"not utf-8 \xff\xfe");
    assert_eq!(b["frames"], json!([{ "base64": raw }]));
    assert!(b.get("text").is_none(), "no text for binary: {b}");
    let c = listen.expect("empty line", |v| kind(v) == "shout");
    assert_eq!(c["text"], "");
    let d = listen.expect("last", |v| kind(v) == "shout");
    assert_eq!(d["text"], "last");
    shout.assert_exit(0);
}

#[test]
fn binary_and_multi_frame_content_round_trips_through_json() {
    let port = 46012;
    let mut first = Proc::spawn(LISTEN, &with(port, &["--name", "first", "--group", "SRC"]));
    let mut second = Proc::spawn(LISTEN, &with(port, &["--name", "second", "--group", "DST"]));
    let every_byte: Vec<u8> = (0..=255).collect();
    let frames = json!([
        {"text": "héllo\n\"quoted\""},
        {"base64": base64::engine::general_purpose::STANDARD.encode(&every_byte)},
        {"text": ""},
    ]);
    let mut shout = Proc::spawn_stdin(SHOUT, &with(port, &["--json", "SRC"]));
    shout.write_stdin(format!("{}\n", json!({ "frames": frames })).as_bytes());
    shout.close_stdin();
    let got = first.expect("shout in SRC", |v| kind(v) == "shout");
    assert_eq!(got["frames"], frames);
    assert!(got.get("text").is_none());
    shout.assert_exit(0);

    // zre-listen | jq -c '.group = "DST"' | zre-shout --json
    let mut relayed: Value = got.clone();
    relayed["group"] = json!("DST");
    let mut relay = Proc::spawn_stdin(SHOUT, &with(port, &["--json"]));
    relay.write_stdin(format!("{relayed}\n").as_bytes());
    relay.close_stdin();
    let again = second.expect("shout in DST", |v| kind(v) == "shout");
    assert_eq!(again["group"], "DST");
    assert_eq!(again["frames"], frames);
    relay.assert_exit(0);
}

#[test]
fn count_stops_after_n_events() {
    let port = 46013;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--count", "2", "--group", "C"]));
    let _shout = Proc::spawn(SHOUT, &with(port, &["C", "one"]));
    let lines = listen.rest();
    assert_eq!(lines.len(), 2, "{lines:?}");
    listen.assert_exit(0);
}

#[test]
fn shout_to_nobody_fails_with_one_line() {
    let port = 46014;
    let (code, out, err) = run(SHOUT, &with(port, &["--wait", "300ms", "EMPTY", "hi"]));
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("zre-shout: error: nobody in group EMPTY"),
        "{err}"
    );
}

#[test]
fn json_input_errors_name_the_line() {
    let port = 46015;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--group", "J"]));
    let mut shout = Proc::spawn_stdin(SHOUT, &with(port, &["--json", "J"]));
    // An object with a type that is not a message is skipped (zre-listen's own events);
    // a line that is not JSON is an error naming one line number (not serde's "line 1").
    shout.write_stdin(b"{\"text\":\"ok\"}\n{\"type\":\"enter\"}\n{\"text\": nope}\n");
    shout.close_stdin();
    listen.expect("the good line", |v| kind(v) == "shout" && v["text"] == "ok");
    shout.assert_exit(1);
    let err = shout.stderr();
    assert_eq!(
        err.trim_end(),
        "zre-shout: error: stdin line 3: not JSON: expected ident at column 11"
    );
}

#[test]
fn timeout_stops_with_stop_last() {
    let port = 46016;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--timeout", "300ms"]));
    let lines = listen.rest();
    listen.assert_exit(0);
    assert_eq!(lines.last().map(kind), Some("stop"), "{lines:?}");
    assert_eq!(listen.stderr(), "");
}

#[test]
fn human_format_is_plain_off_a_terminal() {
    let port = 46017;
    let mut args = with(port, &["--format", "human", "--group", "H", "--count", "2"]);
    args.push("--timeout".into());
    args.push("20s".into());
    let listen = std::process::Command::new(LISTEN)
        .args(&args)
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Reaped below; killed on failure by the guard.
    struct Reap(Option<std::process::Child>);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut guard = Reap(Some(listen));
    let mut shout = Proc::spawn(SHOUT, &with(port, &["--name", "hum", "H", "plain", "text"]));
    shout.assert_exit(0);
    let child = guard.0.take().expect("child");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        !text.contains('\u{1b}'),
        "no colour off a terminal: {text:?}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("ENTER") && lines[0].contains("hum"),
        "{text}"
    );
    assert!(
        lines[1].contains("SHOUT") && lines[1].ends_with("to H: plain text"),
        "{text}"
    );
}

#[test]
fn type_and_from_filters_are_what_count_counts() {
    // Before (issue 11, item 9): no --type or --from; --count counted every event, so
    // `--count 1` ended at the first enter.
    let port = 46110;
    let wait_for_bob = with(
        port,
        &[
            "--group",
            "F",
            "--type",
            "shout,whisper",
            "--from",
            "bob",
            "--count",
            "1",
            "--timeout",
            "30s",
        ],
    );
    let mut listen = Proc::spawn(LISTEN, &wait_for_bob);
    let mut other = Proc::spawn(SHOUT, &with(port, &["--name", "alice", "F", "not this"]));
    other.assert_exit(0);
    let mut bob = Proc::spawn(SHOUT, &with(port, &["--name", "bob", "F", "this one"]));
    bob.assert_exit(0);
    let all = listen.rest();
    listen.assert_exit(0);
    assert_eq!(all.len(), 1, "only bob's shout: {all:?}");
    assert_eq!(all[0]["name"], "bob");
    assert_eq!(all[0]["text"], "this one");

    // --from takes a UUID too (any case, hyphens allowed).
    let mut carol = Proc::spawn(LISTEN, &with(port, &["--name", "carol", "--group", "F"]));
    let mut watcher = Proc::spawn(LISTEN, &with(port, &["--name", "watcher"]));
    let enter = watcher.expect("carol", |v| kind(v) == "enter" && v["name"] == "carol");
    let uuid = enter["peer"].as_str().unwrap().to_lowercase();
    let hyphenated = format!("{}-{}", &uuid[..8], &uuid[8..]);
    let by_uuid = with(
        port,
        &[
            "--from",
            &hyphenated,
            "--type",
            "join",
            "--count",
            "1",
            "--timeout",
            "20s",
        ],
    );
    let mut listen = Proc::spawn(LISTEN, &by_uuid);
    let all = listen.rest();
    listen.assert_exit(0);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((kind(&all[0]), &all[0]["name"]), ("join", &json!("carol")));
    carol.signal("TERM");
    carol.assert_exit(0);
}

#[test]
fn timeout_before_count_exits_1_like_grep() {
    // Nothing selected before --timeout: exit 1, nothing printed, nothing on stderr.
    let port = 46111;
    let mut listen = Proc::spawn(
        LISTEN,
        &with(
            port,
            &["--type", "shout", "--count", "1", "--timeout", "500ms"],
        ),
    );
    let all = listen.rest();
    listen.assert_exit(1);
    assert!(all.is_empty(), "{all:?}");
    assert_eq!(listen.stderr(), "");
    // Without --count, --timeout is the plan: exit 0 (as before).
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--timeout", "300ms"]));
    listen.rest();
    listen.assert_exit(0);
}

/// Runs zre-listen --format human with `extra` and env, stdout a pipe; its lines.
fn human(port: u16, extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(LISTEN);
    cmd.args(with(port, &["--format", "human"]))
        .args(extra)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("ZRE_INTERFACE")
        .env_remove("ZRE_PORT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run zre-listen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn human_output_escapes_what_peers_send() {
    // Before (issue 11, item 2): a peer's name went to the terminal raw (it cleared the
    // screen, set the title and forged a line), frames printed as Rust debug text
    // (`["k", "\0\u{1}\u{2}"]`), and the time had no zone.
    let port = 46112;
    let evil = "evil\x1b[2J\x1b]0;pwned\x07\nFAKE LINE\u{9b}31m\u{202e}";
    let listener = std::thread::spawn(move || {
        human(
            port,
            &[
                "--group",
                "H",
                "--type",
                "enter,shout",
                "--count",
                "3",
                "--timeout",
                "20s",
            ],
            &[],
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut shout = Proc::spawn_stdin(
        SHOUT,
        &with(
            port,
            &["--name", evil, "--header", "K=v\x1b[1m", "--json", "H"],
        ),
    );
    shout.write_stdin(b"{\"frames\":[{\"text\":\"k\"},{\"base64\":\"AAEC/w==\"}]}\n");
    shout.write_stdin(b"{\"text\":\"tab\\there \\\\ \\u001b[31mred\"}\n");
    shout.close_stdin();
    shout.assert_exit(0);
    let text = listener.join().expect("listener");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "one line per event: {text:?}");
    for c in ['\x1b', '\x07', '\u{9b}', '\u{202e}', '\r'] {
        assert!(!text.contains(c), "{c:?} reached the terminal: {text:?}");
    }
    let name = r"evil\e[2J\e]0;pwned\x07\nFAKE LINE\u{9b}31m\u{202e}";
    assert!(lines[0].contains(&format!("ENTER   {name} (")), "{text}");
    assert!(lines[0].ends_with(r" K=v\e[1m"), "{text}");
    assert!(
        lines[1].ends_with(r#" to H: "k" "\x00\x01\x02\xff""#),
        "{text}"
    );
    assert!(
        lines[2].ends_with(r" to H: tab\there \\ \e[31mred"),
        "{text}"
    );
    // 12:00:00.123Z: UTC, marked.
    let time = lines[0].split(' ').next().unwrap();
    assert!(time.len() == 13 && time.ends_with('Z'), "{time}");
}

#[test]
fn color_flag_no_color_and_clicolor_force() {
    // Before (issue 11, item 11): no --color; colour only on a terminal.
    let port = 46113;
    let stop = ["--timeout", "200ms"];
    let coloured = |extra: &[&str], env: &[(&str, &str)]| {
        let args: Vec<&str> = extra.iter().chain(&stop).copied().collect();
        let out = human(port, &args, env);
        assert!(out.contains("STOP"), "{out:?}");
        out.contains("\x1b[")
    };
    assert!(!coloured(&[], &[]), "auto: not into a pipe");
    assert!(coloured(&["--color", "always"], &[]));
    assert!(
        coloured(&["--color", "always"], &[("NO_COLOR", "1")]),
        "the flag wins"
    );
    assert!(!coloured(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
    assert!(coloured(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(!coloured(&[], &[("CLICOLOR_FORCE", "0")]));
    assert!(!coloured(
        &[],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    // JSON is never coloured.
    let out = std::process::Command::new(LISTEN)
        .args(with(port, &["--color", "always", "--timeout", "200ms"]))
        .output()
        .expect("run");
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\x1b'));
}
