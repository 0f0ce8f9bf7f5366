//! zre-whisper: by name, by UUID, multi-frame `--json`, ambiguous names, nobody there.

mod cli_support;

use cli_support::*;
use serde_json::json;

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn whisper_by_name_and_by_uuid() {
    let port = 46020;
    let mut target = Proc::spawn(LISTEN, &with(port, &["--name", "target"]));
    let mut observer = Proc::spawn(LISTEN, &with(port, &["--name", "observer"]));
    let enter = observer.expect("target", |v| kind(v) == "enter" && v["name"] == "target");
    let uuid = enter["peer"].as_str().unwrap().to_string();

    let mut by_name = Proc::spawn(
        WHISPER,
        &with(port, &["--name", "w1", "target", "hi", "there"]),
    );
    let w = target.expect("whisper", |v| kind(v) == "whisper" && v["name"] == "w1");
    assert_eq!(w["text"], "hi there");
    assert_eq!(w["frames"], json!([{"text": "hi there"}]));
    by_name.assert_exit(0);

    // Lower case with hyphens, as other tools print UUIDs.
    let u = uuid.to_lowercase();
    let hyphenated = format!(
        "{}-{}-{}-{}-{}",
        &u[..8],
        &u[8..12],
        &u[12..16],
        &u[16..20],
        &u[20..]
    );
    let mut by_uuid = Proc::spawn_stdin(
        WHISPER,
        &with(port, &["--name", "w2", "--json", &hyphenated]),
    );
    let frames = json!([{"text": "key"}, {"base64": "AAEC/w=="}]);
    by_uuid.write_stdin(
        format!(
            "{}\n\n{}\n",
            json!({ "frames": frames }),
            json!({"text": "two"})
        )
        .as_bytes(),
    );
    by_uuid.close_stdin();
    let w = target.expect("multi-frame whisper", |v| {
        kind(v) == "whisper" && v["name"] == "w2"
    });
    assert_eq!(w["frames"], frames);
    assert!(w.get("text").is_none());
    let w = target.expect("second whisper", |v| {
        kind(v) == "whisper" && v["name"] == "w2"
    });
    assert_eq!(w["text"], "two");
    by_uuid.assert_exit(0);
    assert!(observer.seen.iter().all(|l| !l.contains("\"whisper\"")));
}

#[test]
fn an_ambiguous_name_lists_the_candidates() {
    let port = 46021;
    let _a = Proc::spawn(LISTEN, &with(port, &["--name", "twin"]));
    let _b = Proc::spawn(LISTEN, &with(port, &["--name", "twin"]));
    let mut observer = Proc::spawn(LISTEN, &with(port, &["--name", "observer"]));
    let one = observer.expect("a twin", |v| kind(v) == "enter" && v["name"] == "twin");
    let other = observer.expect("the other", |v| kind(v) == "enter" && v["name"] == "twin");
    let (code, _, err) = run(WHISPER, &with(port, &["twin", "hi"]));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("zre-whisper: error: "), "{err}");
    assert!(err.contains("ambiguous"), "{err}");
    for v in [one, other] {
        assert!(err.contains(v["peer"].as_str().unwrap()), "{err}");
    }
}

#[test]
fn whisper_to_nobody_fails() {
    let port = 46022;
    let (code, _, err) = run(WHISPER, &with(port, &["--wait", "300ms", "ghost", "boo"]));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("zre-whisper: error: no peer ghost"),
        "{err}"
    );
}

#[test]
fn json_zero_frames_is_an_error_naming_the_line() {
    // Before: sent as a zero-frame shout (Zyre glues the next message onto it), exit 0.
    let mut shout = Proc::spawn_stdin(
        SHOUT,
        &with(47802, &["--name", "s", "--peers", "0", "--json"]),
    );
    shout.write_stdin(b"{\"group\":\"G\",\"text\":\"ok\"}\n{\"group\":\"G\",\"frames\":[]}\n");
    shout.close_stdin();
    shout.assert_exit(1);
    let err = shout.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("zre-shout: error: stdin line 2: \"frames\" is empty"),
        "{err}"
    );
}

#[test]
fn a_peer_that_left_is_named_in_the_error() {
    // Before (issue 11, item 15): "unknown peer <hex>".
    let port = 46130;
    let slow = ["--evasive", "20s", "--expired", "60s"];
    let mut bob = Proc::spawn(
        LISTEN,
        &with(port, &[&["--name", "bob"][..], &slow].concat()),
    );
    let mut w = Proc::spawn_stdin(WHISPER, &with(port, &[&slow[..], &["bob"]].concat()));
    w.write_stdin(b"first\n");
    let first = bob.expect("first", |v| kind(v) == "whisper");
    assert_eq!(first["text"], "first");
    let enter = bob
        .seen
        .iter()
        .find(|l| l.contains(r#""type":"enter""#))
        .cloned();
    assert!(enter.is_some(), "{:?}", bob.seen);
    // bob leaves (its goodbye makes the whisperer forget it at once), then one more line.
    bob.signal("TERM");
    bob.assert_exit(0);
    std::thread::sleep(std::time::Duration::from_millis(500));
    w.write_stdin(b"second\n");
    w.assert_exit(1);
    let err = w.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("zre-whisper: error: peer bob ("), "{err}");
    assert!(err.trim_end().ends_with(") left"), "{err}");
    let uuid = err
        .split('(')
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap();
    assert!(is_uuid_hex(uuid), "{err}");
}
