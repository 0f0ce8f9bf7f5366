//! Printing events: NDJSON (the format documented in [`crate::cli`]) or one human line each.
//! Every line is flushed at once so that `| jq` sees it.

use std::io::{self, IsTerminal, Write};
use std::time::SystemTime;

use base64::Engine as _;
use colored::Colorize;
use serde_json::Value;

use super::args::{Color, Format};
use crate::proto::event::{uuid_hex, Content, Event};

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-01-31T12:00:00.123Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A JSON object whose keys stay in the order they were added (`type` first).
#[derive(Debug, Default, Clone)]
pub struct Obj {
    buf: String,
}

impl Obj {
    /// An object starting with `"type": kind` and `"time": now`.
    pub fn event(kind: &str) -> Obj {
        Obj::default().str("type", kind).str("time", &now_rfc3339())
    }

    /// Adds a field.
    pub fn field(mut self, key: &str, value: Value) -> Obj {
        self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
        self.buf.push_str(&Value::from(key).to_string());
        self.buf.push(':');
        self.buf.push_str(&value.to_string());
        self
    }

    /// Adds a string field.
    pub fn str(self, key: &str, value: &str) -> Obj {
        self.field(key, Value::from(value))
    }

    /// The finished object, on one line without the newline.
    pub fn finish(mut self) -> String {
        if self.buf.is_empty() {
            self.buf.push('{');
        }
        self.buf.push('}');
        self.buf
    }
}

/// One frame as JSON: `{"text": ...}` when valid UTF-8, else `{"base64": ...}`.
pub fn frame_json(frame: &[u8]) -> Value {
    let mut m = serde_json::Map::new();
    match std::str::from_utf8(frame) {
        Ok(s) => m.insert("text".into(), Value::from(s)),
        Err(_) => m.insert(
            "base64".into(),
            Value::from(base64::engine::general_purpose::STANDARD.encode(frame)),
        ),
    };
    Value::Object(m)
}

/// The content's single UTF-8 frame, if it is exactly that.
pub fn single_text(content: &Content) -> Option<&str> {
    match content.as_slice() {
        [one] => std::str::from_utf8(one).ok(),
        _ => None,
    }
}

/// An event as one NDJSON line (without the newline).
pub fn event_json(event: &Event) -> String {
    let mut o = Obj::event(event.kind());
    if let Some(peer) = event.peer() {
        o = o.str("peer", &uuid_hex(&peer)).str("name", event.name());
    }
    if let Event::Enter {
        endpoint, headers, ..
    } = event
    {
        let h: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        o = o
            .str("endpoint", endpoint)
            .field("headers", Value::Object(h));
    }
    if let Some(group) = event.group() {
        o = o.str("group", group);
    }
    if let Some(content) = event.content() {
        let frames: Vec<Value> = content.iter().map(|f| frame_json(f)).collect();
        o = o.field("frames", Value::Array(frames));
        if let Some(text) = single_text(content) {
            o = o.str("text", text);
        }
    }
    o.finish()
}

/// The time of day in UTC, marked `Z`, e.g. `12:00:00.123Z`.
pub fn short_time() -> String {
    // "2026-01-31T12:00:00.123Z" -> "12:00:00.123Z"
    let t = now_rfc3339();
    t.get(11..).map(str::to_string).unwrap_or(t)
}

/// `s` made safe for a terminal, on one line: backslash, the C0 controls, DEL, the C1
/// controls, and the Unicode line separators and bidirectional overrides become
/// conventional escapes (`\\`, `\n`, `\t`, `\e`, `\x00`, `\x7f`, `\u{9b}`, ...), so that
/// nothing a peer sends can move the cursor, start an escape sequence or forge a line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s, false);
    out
}

/// Appends `s` escaped as [`escape`] does; `quoted` also escapes `"`.
fn push_escaped(out: &mut String, s: &str, quoted: bool) {
    use std::fmt::Write as _;
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quoted => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            '\x00'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{80}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Appends bytes escaped: valid UTF-8 as [`escape`] does, other bytes as `\xNN`.
fn push_escaped_bytes(out: &mut String, bytes: &[u8], quoted: bool) {
    use std::fmt::Write as _;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let (ok, after) = rest.split_at(e.valid_up_to());
                let ok = std::str::from_utf8(ok).unwrap_or_default();
                (ok, e.error_len().unwrap_or(after.len()))
            }
        };
        push_escaped(out, valid, quoted);
        let after = &rest[valid.len()..];
        for b in &after[..bad] {
            let _ = write!(out, "\\x{b:02x}");
        }
        rest = &after[bad..];
    }
}

/// The content for a human: a single UTF-8 frame as its escaped text; anything else as
/// each frame in double quotes with conventional escapes (`"k" "\x00\x01\xff"`).
pub fn human_content(content: &Content) -> String {
    if let Some(text) = single_text(content) {
        return escape(text);
    }
    let mut out = String::new();
    for (i, f) in content.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        push_escaped_bytes(&mut out, f, true);
        out.push('"');
    }
    out
}

/// An event as one readable line (without the newline); coloured if `colored` allows it.
/// Everything the peer chose (name, endpoint, headers, group, content) is [`escape`]d.
pub fn event_human(event: &Event) -> String {
    let kind = match event {
        Event::Stop => "STOP".to_string(),
        _ => format!("{:<7}", event.kind().to_uppercase()),
    };
    let kind = match event {
        Event::Enter { .. } | Event::Join { .. } => kind.green(),
        Event::Exit { .. } | Event::Leave { .. } | Event::Stop => kind.red(),
        Event::Evasive { .. } | Event::Silent { .. } => kind.yellow(),
        Event::Whisper { .. } | Event::Shout { .. } => kind.cyan(),
        Event::Leader { .. } => kind.magenta(),
    };
    let mut line = format!("{} {}", short_time().dimmed(), kind.bold());
    if let Some(peer) = event.peer() {
        line.push_str(&format!(
            " {} {}",
            escape(event.name()).bold(),
            format!("({})", uuid_hex(&peer)).dimmed()
        ));
    }
    match event {
        Event::Enter {
            endpoint, headers, ..
        } => {
            line.push_str(&format!(" at {}", escape(endpoint)));
            for (k, v) in headers {
                line.push_str(&format!(" {}={}", escape(k), escape(v)));
            }
        }
        Event::Join { group, .. } | Event::Leave { group, .. } => {
            line.push_str(&format!(" {}", escape(group)));
        }
        Event::Leader { group, .. } => {
            line.push_str(&format!(" leads {}", escape(group)));
        }
        Event::Whisper { content, .. } => {
            line.push_str(&format!(": {}", human_content(content)));
        }
        Event::Shout { group, content, .. } => {
            line.push_str(&format!(
                " to {}: {}",
                escape(group),
                human_content(content)
            ));
        }
        _ => {}
    }
    line
}

/// A peer as zre-peers prints it, one NDJSON line (without the newline): `type` "peer",
/// `time`, `peer` (its UUID), `name`, `endpoint`, `headers`, `groups` (sorted), and
/// `rtt_ms`, the round trip of the last ZRE PING it answered (null if none yet).
pub fn peer_json(p: &crate::PeerInfo) -> String {
    let h: serde_json::Map<String, Value> = p
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let groups: Vec<Value> = p.groups.iter().map(|g| Value::from(g.as_str())).collect();
    Obj::event("peer")
        .str("peer", &uuid_hex(&p.uuid))
        .str("name", &p.name)
        .str("endpoint", &p.endpoint)
        .field("headers", Value::Object(h))
        .field("groups", Value::Array(groups))
        .field(
            "rtt_ms",
            p.rtt.map_or(Value::Null, |d| Value::from(millis(d))),
        )
        .finish()
}

/// A duration in milliseconds, to the microsecond.
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A peer as one readable line: name, UUID, endpoint, groups, headers and round trip,
/// everything the peer chose [`escape`]d.
pub fn peer_human(p: &crate::PeerInfo) -> String {
    let mut line = format!(
        "{} {} at {}",
        escape(&p.name).bold(),
        format!("({})", uuid_hex(&p.uuid)).dimmed(),
        escape(&p.endpoint)
    );
    if !p.groups.is_empty() {
        let groups: Vec<String> = p.groups.iter().map(|g| escape(g)).collect();
        line.push_str(&format!(" in {}", groups.join(",").green()));
    }
    for (k, v) in &p.headers {
        line.push_str(&format!(" {}={}", escape(k), escape(v)));
    }
    if let Some(rtt) = p.rtt {
        line.push_str(&format!(" {}", format!("rtt={} ms", millis(rtt)).dimmed()));
    }
    line
}

/// Where events go: stdout, in the chosen format, one flushed line each.
#[derive(Debug)]
pub struct Output {
    format: Format,
    out: io::Stdout,
}

impl Output {
    /// Prints to stdout in `format`, coloured as [`Color::enabled`] decides.
    pub fn stdout(format: Format, color: Color) -> Output {
        let out = io::stdout();
        colored::control::set_override(color.enabled(format, out.is_terminal()));
        Output { format, out }
    }

    /// The chosen format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Prints one event.
    pub fn emit(&mut self, event: &Event) -> io::Result<()> {
        let line = match self.format {
            Format::Json => event_json(event),
            Format::Human => event_human(event),
        };
        self.line(&line)
    }

    /// Prints one line and flushes.
    pub fn line(&mut self, line: &str) -> io::Result<()> {
        let mut out = self.out.lock();
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shout_json_has_type_first_and_exact_frames() {
        let peer = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let e = Event::Shout {
            peer,
            name: "a".into(),
            group: "G".into(),
            content: vec![b"hi".to_vec(), vec![0, 255]],
        };
        let line = event_json(&e);
        assert!(line.starts_with(r#"{"type":"shout","time":""#), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["peer"], "0123456789ABCDEF0123456789ABCDEF");
        assert_eq!(
            v["frames"],
            serde_json::json!([{"text": "hi"}, {"base64": "AP8="}])
        );
        assert!(v.get("text").is_none());
    }

    #[test]
    fn escape_makes_one_safe_line() {
        assert_eq!(
            escape("a\x1b[2J\x07\n\\\u{9b}\u{202e}\x7fé"),
            r"a\e[2J\x07\n\\\u{9b}\u{202e}\x7fé"
        );
        let content = vec![b"k".to_vec(), vec![0, 1, b'"', 0xff, b'x', 0xe2, 0x82]];
        assert_eq!(human_content(&content), r#""k" "\x00\x01\"\xffx\xe2\x82""#);
    }

    #[test]
    fn single_text_frame_adds_text() {
        let e = Event::Whisper {
            peer: uuid::Uuid::nil(),
            name: "a".into(),
            content: vec![b"hello \"x\"\n".to_vec()],
        };
        let v: Value = serde_json::from_str(&event_json(&e)).unwrap();
        assert_eq!(v["text"], "hello \"x\"\n");
        assert_eq!(event_json(&Event::Stop).matches(',').count(), 1);
    }
}
