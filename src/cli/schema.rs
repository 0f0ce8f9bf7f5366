//! The NDJSON format, defined once: each kind of object the tools print, its fields in
//! the order they are printed, and what each means.
//!
//! Everything else follows from here: the printers must print exactly these fields
//! (`tests/cli_schema.rs` checks real output against [`fields_of`]), the man pages' FORMAT
//! sections are made from [`FIELDS`], and README's table is [`markdown_table`] (a test
//! compares them). A field may be added; none may change meaning.

/// One field of the tools' NDJSON objects.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its key.
    pub name: &'static str,
    /// The `type`s of the objects that carry it; empty: every event.
    pub types: &'static [&'static str],
    /// Present only sometimes (the meaning says when).
    pub optional: bool,
    /// What it holds.
    pub meaning: &'static str,
}

/// The `type`s of the events zre-listen prints (zre-ping and zre-dir's peers print the
/// same objects), in the order of [`FIELDS`]'s first row.
pub const EVENT_TYPES: &[&str] = &[
    "enter", "exit", "join", "leave", "whisper", "shout", "evasive", "silent", "stop",
];

const ALL_BUT_STOP: &[&str] = &[
    "enter", "exit", "join", "leave", "whisper", "shout", "evasive", "silent",
];

/// Every field of an event object, in the order they are printed.
pub const FIELDS: &[Field] = &[
    Field {
        name: "type",
        types: &[],
        optional: false,
        meaning: "enter, exit, join, leave, whisper, shout, evasive, silent or stop (last)",
    },
    Field {
        name: "time",
        types: &[],
        optional: false,
        meaning: "when it was printed, RFC 3339 UTC with milliseconds: 2026-01-31T12:00:00.123Z",
    },
    Field {
        name: "peer",
        types: ALL_BUT_STOP,
        optional: false,
        meaning: "the peer's UUID, 32 upper-case hex digits as Zyre prints it",
    },
    Field {
        name: "name",
        types: ALL_BUT_STOP,
        optional: false,
        meaning: "the peer's name",
    },
    Field {
        name: "endpoint",
        types: &["enter"],
        optional: false,
        meaning: "its mailbox, e.g. tcp://127.0.0.1:49152",
    },
    Field {
        name: "headers",
        types: &["enter"],
        optional: false,
        meaning: "an object of its headers",
    },
    Field {
        name: "group",
        types: &["join", "leave", "shout"],
        optional: false,
        meaning: "the group",
    },
    Field {
        name: "frames",
        types: &["whisper", "shout"],
        optional: false,
        meaning: "every frame: {\"text\": ...} if valid UTF-8, else {\"base64\": ...}",
    },
    Field {
        name: "text",
        types: &["whisper", "shout"],
        optional: true,
        meaning: "only when the content is a single UTF-8 frame: that frame",
    },
];

/// The fields an event of `kind` carries, in order: (name, optional).
pub fn fields_of(kind: &str) -> Vec<(&'static str, bool)> {
    FIELDS
        .iter()
        .filter(|f| f.types.is_empty() || f.types.contains(&kind))
        .map(|f| (f.name, f.optional))
        .collect()
}

/// Where a field appears, in words: "all", "all but stop" or the list of types.
fn carried_by(f: &Field) -> String {
    if f.types.is_empty() {
        "all".to_string()
    } else if f.types == ALL_BUT_STOP {
        "all but `stop`".to_string()
    } else {
        f.types
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// README's table of the fields (checked by a test).
pub fn markdown_table() -> String {
    let mut out = String::from("| field | in | value |\n|---|---|---|\n");
    for f in FIELDS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            f.name,
            carried_by(f),
            f.meaning
        ));
    }
    out
}

/// The man pages' rows: (field, "In ...: meaning.").
pub fn man_rows() -> Vec<(&'static str, String)> {
    FIELDS
        .iter()
        .map(|f| {
            let in_ = if f.types.is_empty() {
                String::new()
            } else if f.types == ALL_BUT_STOP {
                "Not in stop. ".to_string()
            } else {
                format!("In {}: ", f.types.join(", "))
            };
            let mut meaning = f.meaning.to_string();
            if in_.ends_with(": ") {
                // "In enter: its mailbox" reads on; elsewhere the meaning starts a sentence.
            } else if let Some(first) = meaning.get(..1) {
                meaning = first.to_uppercase() + &meaning[1..];
            }
            (f.name, format!("{in_}{meaning}."))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_type_and_time_first_and_stop_nothing_else() {
        for kind in EVENT_TYPES {
            let f = fields_of(kind);
            assert_eq!(&f[..2], &[("type", false), ("time", false)], "{kind}");
        }
        assert_eq!(fields_of("stop").len(), 2);
        assert_eq!(
            fields_of("shout")
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            ["type", "time", "peer", "name", "group", "frames", "text"]
        );
    }

    #[test]
    fn the_tables_name_every_field() {
        let md = markdown_table();
        let man = man_rows();
        for f in FIELDS {
            assert!(md.contains(&format!("| `{}` |", f.name)));
            assert!(man.iter().any(|(n, _)| *n == f.name));
        }
    }
}
