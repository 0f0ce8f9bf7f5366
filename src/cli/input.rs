//! Reading what zre-shout and zre-whisper send: the command line, or stdin cut into
//! messages ([`Mode`]): lines, NUL-terminated records, all of it, or NDJSON objects
//! (`text` or `frames`, optional `group`). Input bytes are sent untouched but for the
//! separator.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver};

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use serde_json::Value;

use crate::proto::event::Content;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The group named in a `--json` object, if any.
    pub group: Option<String>,
    /// The frames.
    pub content: Content,
}

/// How stdin is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each line, without its `\n` (a `\r` before it stays), is one frame.
    Lines,
    /// Each record ended by a NUL byte (or by the end of input) is one frame (`-0`).
    Null,
    /// All of stdin is one frame (`--whole`), also when empty.
    Whole,
    /// Each line is a JSON object, see [`parse_json_message`] (`--json`).
    Json,
}

/// The `type`s of the objects `--json` sends; objects with another `type` (zre-listen's
/// enter, join, ... events) are skipped, so that zre-listen's output can be piped in.
pub const MESSAGE_TYPES: &[&str] = &["shout", "whisper"];

/// Parses one `--json` line: an object with `frames` (each `{"text": ..}` or
/// `{"base64": ..}`) or `text`, and an optional `group`. `frames` wins over `text`.
/// Ok(None): the object has a `type` that is not a message (see [`MESSAGE_TYPES`]).
pub fn parse_json_message(line: &str) -> anyhow::Result<Option<Message>> {
    // serde_json says "at line 1 column 5" of this one line: keep the column only.
    let v: Value = serde_json::from_str(line).map_err(|e| {
        let what = e.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).to_string();
        anyhow!("not JSON: {what} at column {}", e.column())
    })?;
    let obj = v.as_object().ok_or_else(|| anyhow!("not a JSON object"))?;
    match obj.get("type") {
        None => {}
        Some(Value::String(t)) if MESSAGE_TYPES.contains(&t.as_str()) => {}
        Some(Value::String(_)) => return Ok(None),
        Some(_) => bail!("\"type\" is not a string"),
    }
    let group = match obj.get("group") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) => Some(g.clone()),
        Some(_) => bail!("\"group\" is not a string"),
    };
    let content = if let Some(frames) = obj.get("frames") {
        let frames = frames
            .as_array()
            .ok_or_else(|| anyhow!("\"frames\" is not an array"))?;
        if frames.is_empty() {
            // Zyre would take the next message's frames for this one's content.
            bail!("\"frames\" is empty: a message needs at least one frame");
        }
        frames
            .iter()
            .map(parse_frame)
            .collect::<anyhow::Result<Content>>()?
    } else if let Some(text) = obj.get("text") {
        let text = text
            .as_str()
            .ok_or_else(|| anyhow!("\"text\" is not a string"))?;
        vec![text.as_bytes().to_vec()]
    } else {
        bail!("no \"text\" or \"frames\"");
    };
    Ok(Some(Message { group, content }))
}

fn parse_frame(v: &Value) -> anyhow::Result<Vec<u8>> {
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        return Ok(t.as_bytes().to_vec());
    }
    if let Some(b) = v.get("base64").and_then(Value::as_str) {
        return base64::engine::general_purpose::STANDARD
            .decode(b)
            .context("bad base64 frame");
    }
    bail!("a frame must be {{\"text\": ..}} or {{\"base64\": ..}}")
}

/// Reads stdin on its own thread so the caller can keep watching for Ctrl-C. Each item is
/// one message, cut from stdin as `mode` says (with [`Mode::Json`], blank lines and
/// objects that are not messages are skipped). The channel closes at end of input; an
/// error ends it too, naming the line (or record) it is about.
pub fn spawn_stdin(mode: Mode) -> Receiver<anyhow::Result<Message>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        if mode == Mode::Whole {
            let mut all = Vec::new();
            let item = match input.read_to_end(&mut all) {
                Ok(_) => Ok(Message {
                    group: None,
                    content: vec![all],
                }),
                Err(e) => Err(anyhow!(e).context("reading stdin")),
            };
            let _ = tx.send(item);
            return;
        }
        let end = if mode == Mode::Null { b'\0' } else { b'\n' };
        let mut buf = Vec::new();
        let mut n = 0u64;
        loop {
            buf.clear();
            n += 1;
            match input.read_until(end, &mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(anyhow!(e).context("reading stdin")));
                    return;
                }
            }
            if buf.last() == Some(&end) {
                buf.pop();
            }
            let item = if mode == Mode::Json {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match std::str::from_utf8(&buf)
                    .map_err(|_| anyhow!("not UTF-8"))
                    .and_then(parse_json_message)
                {
                    Ok(Some(m)) => Ok(m),
                    Ok(None) => continue,
                    Err(e) => Err(e.context(format!("stdin line {n}"))),
                }
            } else {
                Ok(Message {
                    group: None,
                    content: vec![buf.clone()],
                })
            };
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_messages() {
        let m = parse_json_message(r#"{"text":"hi","group":"G"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.group.as_deref(), Some("G"));
        assert_eq!(m.content, vec![b"hi".to_vec()]);
        let m = parse_json_message(r#"{"frames":[{"text":"a"},{"base64":"AP8="}],"text":"x"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.content, vec![b"a".to_vec(), vec![0, 255]]);
        assert!(parse_json_message("[1]").is_err());
        assert!(parse_json_message(r#"{"type":"enter"}"#).unwrap().is_none());
        assert!(parse_json_message(r#"{"type":"shout"}"#).is_err());
        let m = parse_json_message(r#"{"type":"shout","group":"A","frames":[{"text":"x"}]}"#);
        assert_eq!(m.unwrap().unwrap().content, vec![b"x".to_vec()]);
        assert!(parse_json_message(r#"{"frames":[{"base64":"!!"}]}"#).is_err());
        let m = parse_json_message(r#"{"frames":[{"text":""}]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.content, vec![Vec::<u8>::new()], "one empty frame is fine");
    }

    #[test]
    fn json_errors_name_one_column_not_a_line() {
        let e = parse_json_message(r#"{"text": nope}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("column 11") && !e.contains("line"), "{e}");
    }

    #[test]
    fn zero_frames_are_refused() {
        let e = parse_json_message(r#"{"frames":[],"text":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("at least one frame"), "{e}");
    }
}
