//! Z85, ZeroMQ's text encoding of binary keys (ZMQ RFC 32): every 4 bytes, read as a
//! big-endian u32, become 5 characters of an 85-letter alphabet, most significant first.
//! A CURVE key (32 bytes) is 40 characters.
//!
//! Total functions: decoding rejects a length that is not a multiple of 5, a character
//! outside the alphabet and a group worth more than `u32::MAX` (libzmq's decoder lets
//! that wrap; we refuse it, so every accepted text has exactly one meaning).

/// The alphabet, in value order (RFC 32).
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Why text is not Z85.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Z85Error {
    /// Encoding: the input is not a whole number of 4-byte groups.
    #[error("{0} bytes is not a multiple of 4")]
    BadInputLength(usize),
    /// Decoding: the text is not a whole number of 5-character groups.
    #[error("{0} characters is not a multiple of 5")]
    BadLength(usize),
    /// Decoding: a character outside the alphabet, at this byte offset.
    #[error("character {0:?} at {1} is not Z85")]
    BadChar(char, usize),
    /// Decoding: a group of 5 characters worth more than 2^32 - 1, at this offset.
    #[error("group at {0} overflows 32 bits")]
    Overflow(usize),
}

/// Encodes `bytes` (a multiple of 4 long).
pub fn encode(bytes: &[u8]) -> Result<String, Z85Error> {
    if !bytes.len().is_multiple_of(4) {
        return Err(Z85Error::BadInputLength(bytes.len()));
    }
    let mut out = String::with_capacity(bytes.len() / 4 * 5);
    for group in bytes.chunks_exact(4) {
        let mut value = u32::from_be_bytes([group[0], group[1], group[2], group[3]]);
        let mut chars = [0u8; 5];
        for c in chars.iter_mut().rev() {
            *c = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        out.extend(chars.iter().map(|&c| c as char));
    }
    Ok(out)
}

/// Decodes Z85 text (a multiple of 5 characters long).
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(5) {
        return Err(Z85Error::BadLength(text.len()));
    }
    let mut out = Vec::with_capacity(text.len() / 5 * 4);
    for (g, group) in text.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for (i, &c) in group.iter().enumerate() {
            let digit = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| Z85Error::BadChar(char::from(c), g * 5 + i))?;
            value = value * 85 + digit as u64;
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow(g * 5))?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

/// Decodes a 40-character Z85 key into its 32 bytes.
pub fn decode_key(text: &str) -> Result<[u8; 32], Z85Error> {
    if text.len() != 40 {
        return Err(Z85Error::BadLength(text.len()));
    }
    let bytes = decode(text)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Encodes a 32-byte key as 40 characters.
pub fn encode_key(key: &[u8; 32]) -> String {
    // 32 is a multiple of 4.
    encode(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 32's test vector.
    #[test]
    fn rfc32_hello_world() {
        let bytes = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&bytes).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), bytes);
    }

    /// The server public key of libzmq's zmq_curve(7) example; the bytes are what
    /// libzmq's zmq_z85_decode gives (a C program linked to Debian's libzmq 4.3.4), and
    /// `zmq::z85_decode` (libzmq's, in either build) must agree.
    #[test]
    fn curve_man_page_key() {
        let public = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
        let bytes = [
            0x54, 0xFC, 0xBA, 0x24, 0xE9, 0x32, 0x49, 0x96, 0x93, 0x16, 0xFB, 0x61, 0x7C, 0x87,
            0x2B, 0xB0, 0xC1, 0xD1, 0xFF, 0x14, 0x80, 0x04, 0x27, 0xC5, 0x94, 0xCB, 0xFA, 0xCF,
            0x1B, 0xC2, 0xD6, 0x52,
        ];
        assert_eq!(decode_key(public).unwrap(), bytes);
        assert_eq!(zmq::z85_decode(public).unwrap(), bytes);
        assert_eq!(encode_key(&bytes), public);
    }

    #[test]
    fn extremes_and_errors() {
        assert_eq!(encode(&[0, 0, 0, 0]).unwrap(), "00000");
        assert_eq!(encode(&[0xFF; 4]).unwrap(), "%nSc0");
        assert_eq!(decode("%nSc0").unwrap(), [0xFF; 4]);
        assert_eq!(decode("%nSc1"), Err(Z85Error::Overflow(0)));
        assert_eq!(decode("#####"), Err(Z85Error::Overflow(0)));
        assert_eq!(decode("abcd"), Err(Z85Error::BadLength(4)));
        assert_eq!(decode("abcd\""), Err(Z85Error::BadChar('"', 4)));
        assert_eq!(decode("abcdé"), Err(Z85Error::BadLength(6)));
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::BadInputLength(3)));
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(decode_key("HelloWorld"), Err(Z85Error::BadLength(10)));
    }

    proptest::proptest! {
        #[test]
        fn round_trip(words in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..16)) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let text = encode(&bytes).unwrap();
            proptest::prop_assert_eq!(&text, &zmq::z85_encode(&bytes).unwrap());
            proptest::prop_assert_eq!(decode(&text).unwrap(), bytes);
        }

        #[test]
        fn decode_never_panics(text in ".{0,60}") {
            let _ = decode(&text);
            let _ = decode_key(&text);
        }
    }
}
