//! The NDJSON format has one definition (`zre::cli::schema`): what the printer prints for
//! every kind of event matches it field for field and in order, README's table is the one
//! made from it, and zre-ping's, zre-peers' and zre-dir's objects, printed by the real
//! tools on lo (ports 46300-46302), have the fields the schema gives them.

mod cli_support;

use std::sync::Arc;
use std::time::Duration;

use cli_support::*;

use serde_json::Value;
use zre::cli::output::event_json;
use zre::cli::schema::{fields_of, markdown_table, object, EVENT_TYPES};
use zre::{Event, Uuid};

fn every_kind() -> Vec<Event> {
    let (peer, name): (Uuid, Arc<str>) = (Uuid::from_u128(7), "n".into());
    let one = vec![b"hi".to_vec()];
    let two = vec![b"k".to_vec(), vec![0, 1, 0xff]];
    vec![
        Event::Enter {
            peer,
            name: name.clone(),
            headers: [("X-A".to_string(), "1".to_string())].into(),
            endpoint: "tcp://127.0.0.1:1".into(),
        },
        Event::Exit {
            peer,
            name: name.clone(),
        },
        Event::Join {
            peer,
            name: name.clone(),
            group: "G".into(),
        },
        Event::Leave {
            peer,
            name: name.clone(),
            group: "G".into(),
        },
        Event::Whisper {
            peer,
            name: name.clone(),
            content: one.clone(),
        },
        Event::Whisper {
            peer,
            name: name.clone(),
            content: two.clone(),
        },
        Event::Shout {
            peer,
            name: name.clone(),
            group: "G".into(),
            content: one,
        },
        Event::Shout {
            peer,
            name: name.clone(),
            group: "G".into(),
            content: two,
        },
        Event::Evasive {
            peer,
            name: name.clone(),
        },
        Event::Silent {
            peer,
            name: name.clone(),
        },
        Event::Leader {
            peer,
            name,
            group: "G".into(),
        },
        Event::Stop,
    ]
}

/// The keys of a JSON object line, in the order printed.
fn keys(line: &str) -> Vec<String> {
    // serde_json's Map keeps keys sorted, so read the order from the text itself.
    let v: Value = serde_json::from_str(line).unwrap();
    let mut keys: Vec<(usize, String)> = v
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.clone()))
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

#[test]
fn the_printer_prints_exactly_the_fields_the_schema_defines_in_order() {
    let mut seen = std::collections::BTreeSet::new();
    for event in every_kind() {
        let line = event_json(&event);
        let printed = keys(&line);
        let kind = printed.first().map(|_| {
            let v: Value = serde_json::from_str(&line).unwrap();
            v["type"].as_str().unwrap().to_string()
        });
        let kind = kind.unwrap();
        seen.insert(kind.clone());
        let defined: Vec<&str> = fields_of(&kind)
            .into_iter()
            .filter(|(name, optional)| !optional || printed.iter().any(|p| p == name))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(printed, defined, "{line}");
    }
    let all: std::collections::BTreeSet<String> =
        EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(seen, all, "every type defined is printed, and no other");
}

#[test]
fn readme_shows_the_table_made_from_the_schema() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&markdown_table()),
        "README's NDJSON table differs from zre::cli::schema; paste this:\n{}",
        markdown_table()
    );
}

/// Checks an object printed by a tool against the schema's shape for its kind.
fn conforms(line: &str, kind: &str) {
    let defined: Vec<String> = object(kind)
        .unwrap_or_else(|| panic!("no object {kind} in the schema"))
        .fields
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(keys(line), defined, "{line}");
}

#[test]
fn zre_ping_and_zre_peers_print_the_objects_the_schema_defines() {
    let port = 46300;
    let mut args = node_args(port);
    args.extend(["--name".into(), "target".into()]);
    let _target = Proc::spawn(LISTEN, &args);
    // zre-peers: one peer object.
    let mut args = node_args(port);
    args.extend(["--wait".into(), "1500ms".into()]);
    let (code, out, err) = run(PEERS, &args);
    assert_eq!(code, Some(0), "{err}");
    let line = out.lines().next().expect("the target is listed");
    conforms(line, "peer");
    // zre-ping: round trips, then a summary. Its --interval is its ping period; the
    // beacon interval has another name.
    let args: Vec<String> = [
        "--interface",
        "lo",
        "--port",
        "46300",
        "--beacon-interval",
        "100ms",
        "--count",
        "2",
        "--interval",
        "300ms",
    ]
    .map(String::from)
    .to_vec();
    let (code, out, err) = run(PING, &args);
    assert_eq!(code, Some(0), "{err}\n{out}");
    let mut kinds = Vec::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let kind = v["type"].as_str().unwrap().to_string();
        if ["rtt", "lost", "summary"].contains(&kind.as_str()) {
            conforms(line, &kind);
            kinds.push(kind);
        }
    }
    assert!(kinds.contains(&"rtt".to_string()), "{out}");
    assert!(kinds.contains(&"summary".to_string()), "{out}");
}

#[test]
fn zre_dir_writes_files_the_schema_defines() {
    let port = 46301;
    let mut args = node_args(port);
    args.extend(["--name".into(), "target".into()]);
    let _target = Proc::spawn(LISTEN, &args);
    let dir = TempDir::new("schema");
    let mut args = node_args(port);
    args.push(dir.0.to_string_lossy().into_owned());
    let dir_proc = Proc::spawn(DIR, &args);
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let file = loop {
        let found = std::fs::read_dir(&dir.0)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json"));
        if let Some(f) = found {
            break f;
        }
        assert!(std::time::Instant::now() < give_up, "no file in 10 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&file).unwrap();
    conforms(text.trim_end(), "file");
    drop(dir_proc);
}
