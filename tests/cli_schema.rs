//! The NDJSON format has one definition (`zre::cli::schema`): what the printer prints for
//! every kind of event matches it field for field and in order, and README's table is the
//! one made from it. No sockets.

use std::sync::Arc;

use serde_json::Value;
use zre::cli::output::event_json;
use zre::cli::schema::{fields_of, markdown_table, EVENT_TYPES};
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
        Event::Silent { peer, name },
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
