//! The UDP discovery beacon: `'Z' 'R' 'E'`, a version byte, the sender's UUID and its
//! mailbox port.
//!
//! Version 1 (22 bytes) is what every ZRE node sends. Version 3 (54 bytes) adds the
//! sender's CURVE public key (raw, 32 bytes), as Zyre sends it in CURVE mode; a node acts
//! only on the version of its own mode (see `NodeState::handle_beacon`). Everything else
//! is rejected.

use uuid::Uuid;

/// Size of a v1 beacon.
pub const V1_LEN: usize = 22;
/// Size of a v3 (CURVE) beacon.
pub const V3_LEN: usize = 54;

/// A decoded beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beacon {
    /// The sender's UUID.
    pub uuid: Uuid,
    /// The sender's mailbox TCP port; 0 means "I am leaving".
    pub port: u16,
    /// The sender's CURVE public key (v3 beacons only).
    pub curve_key: Option<[u8; 32]>,
}

/// Why a datagram is not a beacon we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    /// Neither 22 nor 54 bytes.
    #[error("beacon of {0} bytes (expected 22 or 54)")]
    BadSize(usize),
    /// Does not start with "ZRE".
    #[error("beacon without the ZRE prefix")]
    BadPrefix,
    /// The version byte does not match the size.
    #[error("beacon version {0} with {1} bytes")]
    BadVersion(u8, usize),
}

impl Beacon {
    /// A v1 beacon.
    pub fn new(uuid: Uuid, port: u16) -> Self {
        Beacon {
            uuid,
            port,
            curve_key: None,
        }
    }

    /// Encodes: 22 bytes for v1, 54 when a CURVE key is present.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(V3_LEN);
        b.extend_from_slice(b"ZRE");
        b.push(if self.curve_key.is_some() { 3 } else { 1 });
        b.extend_from_slice(self.uuid.as_bytes());
        b.extend_from_slice(&self.port.to_be_bytes());
        if let Some(key) = &self.curve_key {
            b.extend_from_slice(key);
        }
        b
    }

    /// Decodes a datagram; see the module doc for what is accepted.
    pub fn decode(bytes: &[u8]) -> Result<Beacon, BeaconError> {
        if bytes.len() != V1_LEN && bytes.len() != V3_LEN {
            return Err(BeaconError::BadSize(bytes.len()));
        }
        if &bytes[..3] != b"ZRE" {
            return Err(BeaconError::BadPrefix);
        }
        let version = bytes[3];
        let expected = if bytes.len() == V1_LEN { 1 } else { 3 };
        if version != expected {
            return Err(BeaconError::BadVersion(version, bytes.len()));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[4..20]);
        let port = u16::from_be_bytes([bytes[20], bytes[21]]);
        let curve_key = (bytes.len() == V3_LEN).then(|| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes[22..54]);
            k
        });
        Ok(Beacon {
            uuid: Uuid::from_bytes(id),
            port,
            curve_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_round_trip_and_layout() {
        let u = Uuid::from_u128(0x00112233445566778899AABBCCDDEEFF);
        let b = Beacon::new(u, 49152).encode();
        assert_eq!(b.len(), 22);
        assert_eq!(&b[..4], b"ZRE\x01");
        assert_eq!(&b[20..], &[0xC0, 0x00]);
        assert_eq!(Beacon::decode(&b).unwrap(), Beacon::new(u, 49152));
    }

    #[test]
    fn v3_parsed_with_key() {
        let u = Uuid::from_u128(7);
        let beacon = Beacon {
            uuid: u,
            port: 1,
            curve_key: Some([9; 32]),
        };
        let b = beacon.encode();
        assert_eq!(b.len(), 54);
        assert_eq!(Beacon::decode(&b).unwrap(), beacon);
    }

    /// Zyre's v3 layout (zyre_node.c, beacon_t): "ZRE", 0x03, the UUID, the port (big
    /// endian), the key; here the key of libzmq's zmq_curve(7) example server.
    #[test]
    fn v3_golden_bytes() {
        let uuid = Uuid::from_u128(0xF81D4FAE7DEC11D0A76500A0C91E6BF6);
        let key =
            crate::curve::z85::decode_key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7").unwrap();
        let hex = "5A524503F81D4FAE7DEC11D0A76500A0C91E6BF6C000\
                   54FCBA24E93249969316FB617C872BB0C1D1FF14800427C594CBFACF1BC2D652";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let beacon = Beacon {
            uuid,
            port: 49152,
            curve_key: Some(key),
        };
        assert_eq!(beacon.encode(), bytes);
        assert_eq!(Beacon::decode(&bytes).unwrap(), beacon);
        // The goodbye keeps the key (Zyre's does too).
        let bye = Beacon { port: 0, ..beacon }.encode();
        assert_eq!((&bye[20..22], &bye[22..]), (&[0u8, 0][..], &key[..]));
    }

    #[test]
    fn every_other_size_and_bad_headers_rejected() {
        for n in 0..=100usize {
            let mut b = vec![0u8; n];
            if n >= 4 {
                b[..4].copy_from_slice(b"ZRE\x01");
            }
            let r = Beacon::decode(&b);
            if n == 22 {
                assert!(r.is_ok());
            } else if n == 54 {
                assert_eq!(r, Err(BeaconError::BadVersion(1, 54)));
            } else {
                assert_eq!(r, Err(BeaconError::BadSize(n)));
            }
        }
        let mut b = Beacon::new(Uuid::nil(), 1).encode();
        b[0] = b'X';
        assert_eq!(Beacon::decode(&b), Err(BeaconError::BadPrefix));
        b[0] = b'Z';
        b[3] = 2;
        assert_eq!(Beacon::decode(&b), Err(BeaconError::BadVersion(2, 22)));
    }
}
