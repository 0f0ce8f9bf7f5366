//! Reading what zre-shout and zre-whisper send: the command line, stdin lines, or NDJSON
//! objects on stdin (`text` or `frames`, optional `group`).

use std::io::{self, BufRead};
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

/// Parses one `--json` line: an object with `frames` (each `{"text": ..}` or
/// `{"base64": ..}`) or `text`, and an optional `group`. `frames` wins over `text`.
pub fn parse_json_message(line: &str) -> anyhow::Result<Message> {
    let v: Value = serde_json::from_str(line).context("not JSON")?;
    let obj = v.as_object().ok_or_else(|| anyhow!("not a JSON object"))?;
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
    Ok(Message { group, content })
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
/// one message: a line as one frame (its bytes untouched but for the newline), or with
/// `json` one parsed object (blank lines skipped). The channel closes at end of input; an
/// error ends it too.
pub fn spawn_stdin(json: bool) -> Receiver<anyhow::Result<Message>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut buf = Vec::new();
        let mut n = 0u64;
        loop {
            buf.clear();
            n += 1;
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(anyhow!(e).context("reading stdin")));
                    return;
                }
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            let item = if json {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                std::str::from_utf8(&buf)
                    .map_err(|_| anyhow!("not UTF-8"))
                    .and_then(parse_json_message)
                    .with_context(|| format!("stdin line {n}"))
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
        let m = parse_json_message(r#"{"text":"hi","group":"G"}"#).unwrap();
        assert_eq!(m.group.as_deref(), Some("G"));
        assert_eq!(m.content, vec![b"hi".to_vec()]);
        let m = parse_json_message(r#"{"frames":[{"text":"a"},{"base64":"AP8="}],"text":"x"}"#)
            .unwrap();
        assert_eq!(m.content, vec![b"a".to_vec(), vec![0, 255]]);
        assert!(parse_json_message("[1]").is_err());
        assert!(parse_json_message(r#"{"type":"enter"}"#).is_err());
        assert!(parse_json_message(r#"{"frames":[{"base64":"!!"}]}"#).is_err());
        let m = parse_json_message(r#"{"frames":[{"text":""}]}"#).unwrap();
        assert_eq!(m.content, vec![Vec::<u8>::new()], "one empty frame is fine");
    }

    #[test]
    fn zero_frames_are_refused() {
        let e = parse_json_message(r#"{"frames":[],"text":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("at least one frame"), "{e}");
    }
}
