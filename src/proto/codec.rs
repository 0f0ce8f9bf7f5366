//! ZRE messages (RFC 36): the frame that follows the routing identity, encoded and decoded.
//!
//! Every decoder here is a total function over bytes: any input returns a value or a
//! [`DecodeError`], never a panic, and no length or count read from the wire is used to
//! allocate before the bytes it claims are known to be present. Content (the whisper and
//! shout payload) is not part of this frame: it travels as the zmq frames after it.

use std::fmt;

/// First two bytes of every ZRE frame.
pub const SIGNATURE: [u8; 2] = [0xAA, 0xA1];
/// Protocol version carried in every frame (ZRE v2).
pub const VERSION: u8 = 2;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame ended before a field did.
    #[error("truncated frame: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Where the missing field started.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// The first two bytes were not 0xAA 0xA1.
    #[error("bad signature {0:02X?}")]
    BadSignature([u8; 2]),
    /// The message id is not one of 1..=10.
    #[error("unknown message id {0}")]
    UnknownMessageId(u8),
    /// The version byte is not 2.
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// Bytes were left after the last field.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// A well-formed frame whose `string` or `longstr` field at `offset` is not UTF-8.
    /// The frame is otherwise valid, so it still counts as received in sequence: the
    /// receiver refuses the message but must expect `sequence + 1` next.
    #[error("message id {id} (sequence {sequence}): string at offset {offset} is not UTF-8")]
    NotUtf8 {
        /// The message id.
        id: u8,
        /// The message's sequence number.
        sequence: u16,
        /// Where the first such string's bytes start.
        offset: usize,
    },
}

/// Why a message could not be encoded (a field too long for its wire type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A `string` field (1-byte length) was longer than 255 bytes.
    #[error("field {field} is {len} bytes; the wire allows at most 255")]
    StringTooLong {
        /// Which field.
        field: &'static str,
        /// Its UTF-8 byte length.
        len: usize,
    },
}

/// The HELLO a node sends as the first message on every link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// The sender's mailbox endpoint, `tcp://ip:port`.
    pub endpoint: String,
    /// The groups the sender is in.
    pub groups: Vec<String>,
    /// The sender's status byte (incremented on every JOIN and LEAVE it makes).
    pub status: u8,
    /// The sender's name.
    pub name: String,
    /// The sender's headers, in wire order.
    pub headers: Vec<(String, String)>,
}

/// The body of a ZRE message: one variant per message id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// Id 1: introduces the sender.
    Hello(Hello),
    /// Id 2: content for this peer only (content in the following frames).
    Whisper,
    /// Id 3: content for a group (content in the following frames).
    Shout {
        /// The group.
        group: String,
    },
    /// Id 4: the sender joined a group.
    Join {
        /// The group.
        group: String,
        /// The sender's new status.
        status: u8,
    },
    /// Id 5: the sender left a group.
    Leave {
        /// The group.
        group: String,
        /// The sender's new status.
        status: u8,
    },
    /// Id 6: are you there?
    Ping,
    /// Id 7: yes, I am.
    PingOk,
    /// Id 8 (draft): leader election challenge.
    Elect {
        /// The group.
        group: String,
        /// The challenger's id.
        challenger_id: String,
    },
    /// Id 9 (draft): the elected leader.
    Leader {
        /// The group.
        group: String,
        /// The leader's id.
        leader_id: String,
    },
    /// Id 10 (draft): the sender is leaving.
    Goodbye,
}

impl Body {
    /// The message id on the wire.
    pub fn id(&self) -> u8 {
        match self {
            Body::Hello(_) => 1,
            Body::Whisper => 2,
            Body::Shout { .. } => 3,
            Body::Join { .. } => 4,
            Body::Leave { .. } => 5,
            Body::Ping => 6,
            Body::PingOk => 7,
            Body::Elect { .. } => 8,
            Body::Leader { .. } => 9,
            Body::Goodbye => 10,
        }
    }

    /// The protocol's name for this message.
    pub fn name(&self) -> &'static str {
        match self {
            Body::Hello(_) => "HELLO",
            Body::Whisper => "WHISPER",
            Body::Shout { .. } => "SHOUT",
            Body::Join { .. } => "JOIN",
            Body::Leave { .. } => "LEAVE",
            Body::Ping => "PING",
            Body::PingOk => "PING-OK",
            Body::Elect { .. } => "ELECT",
            Body::Leader { .. } => "LEADER",
            Body::Goodbye => "GOODBYE",
        }
    }
}

/// Where the sequence number sits in every encoded ZRE frame (after the signature, the
/// message id and the version), big-endian: a SHOUT's frame differs between members only
/// there.
pub const SEQUENCE_BYTES: std::ops::Range<usize> = 4..6;

/// Writes `sequence` into an encoded ZRE frame (one SHOUT header, sent to each member with
/// that member's number). A frame too short to be a ZRE frame is left alone.
pub fn set_sequence(frame: &mut [u8], sequence: u16) {
    if let Some(bytes) = frame.get_mut(SEQUENCE_BYTES) {
        bytes.copy_from_slice(&sequence.to_be_bytes());
    }
}

/// One ZRE frame: a per-link sequence number and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Per-link counter; HELLO carries 1, it wraps 65535 -> 0.
    pub sequence: u16,
    /// What the message says.
    pub body: Body,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seq={}", self.body.name(), self.sequence)
    }
}

impl Message {
    /// Creates a message.
    pub fn new(sequence: u16, body: Body) -> Self {
        Message { sequence, body }
    }

    /// The exact number of bytes [`Message::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        fn s(x: &str) -> usize {
            1 + x.len()
        }
        fn l(x: &str) -> usize {
            4 + x.len()
        }
        6 + match &self.body {
            Body::Hello(h) => {
                s(&h.endpoint)
                    + 4
                    + h.groups.iter().map(|g| l(g)).sum::<usize>()
                    + 1
                    + s(&h.name)
                    + 4
                    + h.headers.iter().map(|(k, v)| s(k) + l(v)).sum::<usize>()
            }
            Body::Whisper | Body::Ping | Body::PingOk | Body::Goodbye => 0,
            Body::Shout { group } => s(group),
            Body::Join { group, .. } | Body::Leave { group, .. } => s(group) + 1,
            Body::Elect {
                group,
                challenger_id: id,
            }
            | Body::Leader {
                group,
                leader_id: id,
            } => s(group) + s(id),
        }
    }

    /// Appends the encoded frame to `out`. Fails only when a `string` field exceeds 255
    /// bytes; `out` is then left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.reserve(self.encoded_len());
        let result = self.encode_inner(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Encodes into a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&SIGNATURE);
        out.push(self.body.id());
        out.push(VERSION);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        match &self.body {
            Body::Hello(h) => {
                put_string(out, "endpoint", &h.endpoint)?;
                put_u32(out, h.groups.len());
                for g in &h.groups {
                    put_longstr(out, g);
                }
                out.push(h.status);
                put_string(out, "name", &h.name)?;
                put_u32(out, h.headers.len());
                for (k, v) in &h.headers {
                    put_string(out, "header key", k)?;
                    put_longstr(out, v);
                }
            }
            Body::Whisper | Body::Ping | Body::PingOk | Body::Goodbye => {}
            Body::Shout { group } => put_string(out, "group", group)?,
            Body::Join { group, status } | Body::Leave { group, status } => {
                put_string(out, "group", group)?;
                out.push(*status);
            }
            Body::Elect {
                group,
                challenger_id,
            } => {
                put_string(out, "group", group)?;
                put_string(out, "challenger_id", challenger_id)?;
            }
            Body::Leader { group, leader_id } => {
                put_string(out, "group", group)?;
                put_string(out, "leader_id", leader_id)?;
            }
        }
        Ok(())
    }

    /// Decodes one frame. Rejects a wrong signature, an unknown id, a version other than 2,
    /// a truncated field and trailing bytes; then, for an otherwise well-formed frame, a
    /// string that is not UTF-8 ([`DecodeError::NotUtf8`]).
    ///
    /// Strings are never decoded lossily: two different wire strings (say the Latin-1
    /// groups `E9` and `E8`) would both become U+FFFD, merge, and go back out as
    /// `EF BF BD`, bytes no peer sent. Refusing keeps every string we hold byte-identical
    /// to the wire.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader {
            bytes,
            pos: 0,
            not_utf8: None,
        };
        let sig = [r.u8()?, r.u8()?];
        if sig != SIGNATURE {
            return Err(DecodeError::BadSignature(sig));
        }
        let id = r.u8()?;
        if !(1..=10).contains(&id) {
            return Err(DecodeError::UnknownMessageId(id));
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let sequence = r.u16()?;
        let body = match id {
            1 => {
                let endpoint = r.string()?;
                let groups = r.strings()?;
                let status = r.u8()?;
                let name = r.string()?;
                let headers = r.hash()?;
                Body::Hello(Hello {
                    endpoint,
                    groups,
                    status,
                    name,
                    headers,
                })
            }
            2 => Body::Whisper,
            3 => Body::Shout { group: r.string()? },
            4 => Body::Join {
                group: r.string()?,
                status: r.u8()?,
            },
            5 => Body::Leave {
                group: r.string()?,
                status: r.u8()?,
            },
            6 => Body::Ping,
            7 => Body::PingOk,
            8 => Body::Elect {
                group: r.string()?,
                challenger_id: r.string()?,
            },
            9 => Body::Leader {
                group: r.string()?,
                leader_id: r.string()?,
            },
            _ => Body::Goodbye,
        };
        let rest = bytes.len() - r.pos;
        if rest != 0 {
            return Err(DecodeError::TrailingBytes(rest));
        }
        if let Some(offset) = r.not_utf8 {
            return Err(DecodeError::NotUtf8 {
                id,
                sequence,
                offset,
            });
        }
        Ok(Message { sequence, body })
    }
}

/// Checks that `value` fits a `string` field (1-byte length).
pub fn check_string(field: &'static str, value: &str) -> Result<(), EncodeError> {
    if value.len() > 255 {
        Err(EncodeError::StringTooLong {
            field,
            len: value.len(),
        })
    } else {
        Ok(())
    }
}

fn put_string(out: &mut Vec<u8>, field: &'static str, value: &str) -> Result<(), EncodeError> {
    // "string = 1-byte length + bytes (max 255; UTF-8 byte length, not characters)"
    check_string(field, value)?;
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Counts and longstr lengths above 4 GiB cannot occur: a zmq frame that large would
    // not be sent, so saturating here only guards the cast.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_longstr(out: &mut Vec<u8>, value: &str) {
    put_u32(out, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// A cursor over a frame with one reader per wire type.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of the first string that was not UTF-8. Decoding carries on past it so that
    /// a truncated or overlong frame is still reported as such.
    not_utf8: Option<usize>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let left = self.bytes.len() - self.pos;
        if n > left {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - left,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// Names, groups and headers from C peers are not guaranteed UTF-8. Such a string is
    /// recorded (the frame becomes [`DecodeError::NotUtf8`]) and stands in as empty.
    fn text(&mut self, bytes: &[u8], at: usize) -> String {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                self.not_utf8.get_or_insert(at);
                String::new()
            }
        }
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u8()? as usize;
        let at = self.pos;
        let bytes = self.take(n)?;
        Ok(self.text(bytes, at))
    }

    fn longstr(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()?;
        let at = self.pos;
        let bytes = self.take(n)?;
        Ok(self.text(bytes, at))
    }

    /// Fails before allocating when the count claims more entries than the bytes left could
    /// hold (each entry takes at least `min_entry` bytes).
    fn count(&mut self, min_entry: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u32()?;
        let left = self.bytes.len() - self.pos;
        if n > left / min_entry {
            return Err(DecodeError::Truncated {
                offset: at,
                needed: n.saturating_mul(min_entry) - left,
            });
        }
        Ok(n)
    }

    fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        let n = self.count(4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.longstr()?);
        }
        Ok(v)
    }

    fn hash(&mut self) -> Result<Vec<(String, String)>, DecodeError> {
        let n = self.count(5)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.string()?;
            let val = self.longstr()?;
            v.push((k, val));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ping_bytes() {
        let m = Message::new(6, Body::Ping);
        assert_eq!(m.to_bytes().unwrap(), hex("aaa106020006"));
    }

    #[test]
    fn rejects_bad_header_fields() {
        assert_eq!(
            Message::decode(&hex("aaa206020006")),
            Err(DecodeError::BadSignature([0xAA, 0xA2]))
        );
        assert_eq!(
            Message::decode(&hex("aaa10b020006")),
            Err(DecodeError::UnknownMessageId(11))
        );
        assert_eq!(
            Message::decode(&hex("aaa106010006")),
            Err(DecodeError::BadVersion(1))
        );
        assert_eq!(
            Message::decode(&hex("aaa10602000600")),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            Message::decode(&hex("aaa1060200")),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn huge_counts_rejected_before_allocation() {
        // HELLO with endpoint "" and a group count of 0xFFFFFFFF and nothing after it.
        let b = hex("aaa101020001" /* hdr */);
        let mut b = b;
        b.push(0);
        b.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            Message::decode(&b),
            Err(DecodeError::Truncated { .. })
        ));
        // A longstr claiming 4 GiB.
        let mut b = hex("aaa101020001");
        b.push(0);
        b.extend_from_slice(&[0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            Message::decode(&b),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn the_sequence_number_sits_at_sequence_bytes_in_every_message() {
        for body in [
            Body::Shout { group: "G".into() },
            Body::Whisper,
            Body::Ping,
            Body::Join {
                group: "group".into(),
                status: 3,
            },
        ] {
            let bytes = Message::new(0x1234, body).to_bytes().unwrap();
            assert_eq!(&bytes[SEQUENCE_BYTES], &[0x12, 0x34]);
        }
    }

    #[test]
    fn long_string_is_an_encode_error() {
        let m = Message::new(
            1,
            Body::Shout {
                group: "x".repeat(256),
            },
        );
        let mut out = vec![7];
        assert!(m.encode(&mut out).is_err());
        assert_eq!(out, vec![7]);
        let ok = Message::new(
            1,
            Body::Shout {
                group: "é".repeat(127),
            },
        );
        assert_eq!(ok.to_bytes().unwrap().len(), ok.encoded_len());
    }
}
