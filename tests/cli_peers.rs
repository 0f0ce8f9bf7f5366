//! zre-peers: lists the peers present, with their groups, headers and round trip, and
//! exits; -g selects a group's members without joining it; nothing to list is exit 0.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::*;
use serde_json::{json, Value};

const PEERS: &str = env!("CARGO_BIN_EXE_zre-peers");

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn lists_the_peers_present_and_exits() {
    let port = 46280;
    let mut alice = Proc::spawn(
        LISTEN,
        &with(
            port,
            &[
                "--name",
                "alice",
                "--group",
                "G1",
                "--group",
                "G2",
                "--header",
                "Role=a\x1b[2J",
            ],
        ),
    );
    let _bob = Proc::spawn(LISTEN, &with(port, &["--name", "bob", "--group", "G2"]));
    let _carol = Proc::spawn(LISTEN, &with(port, &["--name", "carol"]));
    // Every one of them is up: alice sees the other two.
    let mut met = std::collections::BTreeSet::new();
    while met.len() < 2 {
        let v = alice.expect("bob and carol", |v| kind(v) == "enter");
        met.insert(v["name"].as_str().unwrap().to_string());
    }

    let (code, out, err) = run(PEERS, &with(port, &["--name", "lister", "--wait", "1s"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    let all = lines(&out);
    let names: Vec<_> = all.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob", "carol"], "sorted by name: {out}");
    for v in &all {
        assert!(
            out.contains(r#"{"type":"peer","time":""#),
            "type first: {out}"
        );
        assert!(is_uuid_hex(v["peer"].as_str().unwrap()), "{v}");
        assert!(
            v["endpoint"].as_str().unwrap().starts_with("tcp://127."),
            "{v}"
        );
        // The round trip of a ZRE PING, measured by the node.
        assert!(v["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{v}");
    }
    assert_eq!(all[0]["groups"], json!(["G1", "G2"]));
    assert_eq!(all[0]["headers"], json!({"Role": "a\x1b[2J"}));
    assert_eq!(all[1]["groups"], json!(["G2"]));
    assert_eq!(all[2]["groups"], json!([]));
    assert_eq!(all[2]["headers"], json!({}));

    // -g: one group's members (any of several), and zre-peers joins nothing.
    let (code, out, err) = run(
        PEERS,
        &with(port, &["--name", "lister2", "-g", "G1", "--wait", "1s"]),
    );
    assert_eq!(code, Some(0), "{err}");
    let names: Vec<_> = lines(&out).iter().map(|v| v["name"].clone()).collect();
    assert_eq!(names, [json!("alice")]);
    let (_, out, _) = run(
        PEERS,
        &with(
            port,
            &["-g", "G1", "-g", "G2", "-g", "NONE", "--wait", "1s"],
        ),
    );
    let names: Vec<_> = lines(&out).iter().map(|v| v["name"].clone()).collect();
    assert_eq!(names, [json!("alice"), json!("bob")]);
    alice.expect("lister2 left", |v| {
        kind(v) == "exit" && v["name"] == "lister2"
    });
    assert!(
        !alice
            .seen
            .iter()
            .any(|l| l.contains(r#""type":"join""#) && l.contains("lister")),
        "zre-peers joined a group: {:?}",
        alice.seen
    );

    // Human: one line a peer, what the peer chose escaped.
    let (code, out, _) = run(
        PEERS,
        &with(port, &["-f", "human", "--color", "never", "--wait", "1s"]),
    );
    assert_eq!(code, Some(0));
    let human: Vec<_> = out.lines().collect();
    assert_eq!(human.len(), 3, "{out}");
    assert!(human[0].starts_with("alice ("), "{out}");
    assert!(human[0].contains(" in G1,G2 Role=a\\e[2J rtt="), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
}

#[test]
fn nothing_to_list_is_exit_0_after_the_default_wait() {
    // As fd and rg --files: an empty list is no error. The default wait is one and a half
    // beacon intervals.
    let started = Instant::now();
    let args = [
        "--interface",
        "lo",
        "--port",
        "46281",
        "--interval",
        "400ms",
    ];
    let (code, out, err) = run(PEERS, &args);
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
