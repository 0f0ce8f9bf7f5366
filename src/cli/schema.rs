//! The NDJSON format, defined once: each kind of object the tools print, its fields in
//! the order they are printed, and what each means.
//!
//! Everything else follows from here: the printers must print exactly these fields
//! (`tests/cli_schema.rs` checks real output against [`fields_of`] and [`OBJECTS`]), the
//! man pages' OUTPUT FORMAT and OUTPUT sections are made from [`FIELDS`] and [`shape`],
//! and README's table is [`markdown_table`] (a test compares them). A field may be
//! added; none may change meaning.

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
    "enter", "exit", "join", "leave", "whisper", "shout", "evasive", "silent", "leader", "stop",
];

const ALL_BUT_STOP: &[&str] = &[
    "enter", "exit", "join", "leave", "whisper", "shout", "evasive", "silent", "leader",
];

/// Every field of an event object, in the order they are printed.
pub const FIELDS: &[Field] = &[
    Field {
        name: "type",
        types: &[],
        optional: false,
        meaning: "enter, exit, join, leave, whisper, shout, evasive, silent, leader or stop (last)",
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
        meaning: "the peer's UUID, 32 upper-case hex digits as Zyre prints it (in leader: the \
                  leader's, ours when we lead)",
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
        types: &["join", "leave", "shout", "leader"],
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

/// An object a single tool prints (beside the events) or writes.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    /// The tool.
    pub tool: &'static str,
    /// Its `type` (zre-dir's files have none: "file").
    pub kind: &'static str,
    /// Its fields, in the order printed.
    pub fields: &'static [&'static str],
}

/// The other objects: zre-ping's round trips, losses and summaries, zre-peers' listing,
/// zre-dir's files. Their fields' meanings are in each tool's man page (OUTPUT), which
/// shows these shapes.
pub const OBJECTS: &[Object] = &[
    Object {
        tool: "zre-ping",
        kind: "rtt",
        fields: &["type", "time", "peer", "name", "seq", "rtt_ms"],
    },
    Object {
        tool: "zre-ping",
        kind: "lost",
        fields: &["type", "time", "peer", "name", "seq"],
    },
    Object {
        tool: "zre-ping",
        kind: "summary",
        fields: &[
            "type", "time", "peer", "name", "sent", "received", "loss", "min_ms", "avg_ms",
            "max_ms",
        ],
    },
    Object {
        tool: "zre-peers",
        kind: "peer",
        fields: &[
            "type", "time", "peer", "name", "endpoint", "headers", "groups", "rtt_ms",
        ],
    },
    Object {
        tool: "zre-dir",
        kind: "file",
        fields: &["uuid", "name", "endpoint", "headers", "groups", "since"],
    },
];

/// The object of `kind` (see [`OBJECTS`]).
pub fn object(kind: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| o.kind == kind)
}

/// How the man pages show an object: `{"type":"rtt","time","peer",...}`.
pub fn shape(kind: &str) -> String {
    let Some(o) = object(kind) else {
        return String::new();
    };
    let fields: Vec<String> = o
        .fields
        .iter()
        .map(|f| {
            if *f == "type" {
                format!("\"type\":\"{}\"", o.kind)
            } else {
                format!("\"{f}\"")
            }
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

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
