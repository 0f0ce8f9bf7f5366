//! Codec tests: golden bytes produced by a real peer (pyre 0.3.4, `tests/interop/golden.py`)
//! and property tests (round trip, exact length, hostile input never panics).

use proptest::prelude::*;
use zre::proto::beacon::Beacon;
use zre::proto::codec::{Body, DecodeError, Hello, Message};
use zre::Uuid;

fn golden(name: &str) -> Vec<u8> {
    let text = include_str!("golden/pyre.txt");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no golden vector {name}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn check(name: &str, msg: Message) {
    let bytes = golden(name);
    assert_eq!(msg.to_bytes().unwrap(), bytes, "encoding {name}");
    assert_eq!(Message::decode(&bytes).unwrap(), msg, "decoding {name}");
    assert_eq!(msg.encoded_len(), bytes.len());
}

#[test]
fn every_message_matches_pyre_bytes() {
    check(
        "hello",
        Message::new(
            1,
            Body::Hello(Hello {
                endpoint: "tcp://127.0.0.1:49152".into(),
                groups: vec!["GLOBAL".into(), "robots".into()],
                status: 3,
                name: "node-a".into(),
                headers: vec![("X-A".into(), "1".into()), ("X-B".into(), "two".into())],
            }),
        ),
    );
    check("whisper", Message::new(2, Body::Whisper));
    check(
        "shout",
        Message::new(
            3,
            Body::Shout {
                group: "GLOBAL".into(),
            },
        ),
    );
    check(
        "join",
        Message::new(
            4,
            Body::Join {
                group: "GLOBAL".into(),
                status: 4,
            },
        ),
    );
    check(
        "leave",
        Message::new(
            5,
            Body::Leave {
                group: "GLOBAL".into(),
                status: 5,
            },
        ),
    );
    check("ping", Message::new(6, Body::Ping));
    check("ping_ok", Message::new(7, Body::PingOk));
}

#[test]
fn draft_messages_follow_the_field_layout_of_zre_msg_xml() {
    // pyre has no ids 8-10; these bytes are written from the field list (string = 1-byte
    // length), not captured from a peer.
    let elect = Message::new(
        8,
        Body::Elect {
            group: "G".into(),
            challenger_id: "abc".into(),
        },
    );
    assert_eq!(
        elect.to_bytes().unwrap(),
        b"\xaa\xa1\x08\x02\x00\x08\x01G\x03abc".to_vec()
    );
    let leader = Message::new(
        9,
        Body::Leader {
            group: "G".into(),
            leader_id: "abc".into(),
        },
    );
    assert_eq!(
        leader.to_bytes().unwrap(),
        b"\xaa\xa1\x09\x02\x00\x09\x01G\x03abc".to_vec()
    );
    assert_eq!(
        Message::new(10, Body::Goodbye).to_bytes().unwrap(),
        b"\xaa\xa1\x0a\x02\x00\x0a".to_vec()
    );
    for m in [elect, leader, Message::new(10, Body::Goodbye)] {
        assert_eq!(Message::decode(&m.to_bytes().unwrap()).unwrap(), m);
    }
}

#[test]
fn beacons_match_pyre_bytes() {
    let u = Uuid::from_u128(0x00112233445566778899AABBCCDDEEFF);
    assert_eq!(Beacon::new(u, 49152).encode(), golden("beacon"));
    assert_eq!(Beacon::new(u, 0).encode(), golden("beacon_stop"));
    assert_eq!(
        Beacon::decode(&golden("beacon")).unwrap(),
        Beacon::new(u, 49152)
    );
}

#[test]
fn a_string_that_is_not_utf8_is_refused_never_replaced() {
    // JOIN "\xE9" status 1 and JOIN "\xE8": Latin-1 groups from a C peer. A lossy decode
    // made both U+FFFD (one group), and encoding that sends EF BF BD back.
    let join = |g: u8| vec![0xAA, 0xA1, 4, 2, 0, 7, 1, g, 1];
    for g in [0xE9, 0xE8] {
        assert_eq!(
            Message::decode(&join(g)),
            Err(DecodeError::NotUtf8 {
                id: 4,
                sequence: 7,
                offset: 7
            })
        );
    }
    // Valid UTF-8 decodes and encodes byte for byte.
    let ok = vec![0xAA, 0xA1, 4, 2, 0, 7, 2, 0xC3, 0xA9, 1];
    let m = Message::decode(&ok).unwrap();
    assert_eq!(
        m.body,
        Body::Join {
            group: "é".into(),
            status: 1
        }
    );
    assert_eq!(m.to_bytes().unwrap(), ok);
    // Structure first: a bad string in a truncated or overlong frame is reported as such.
    let bad = join(0xE9);
    assert!(matches!(
        Message::decode(&bad[..8]),
        Err(DecodeError::Truncated { .. })
    ));
    let mut longer = bad.clone();
    longer.push(0);
    assert_eq!(Message::decode(&longer), Err(DecodeError::TrailingBytes(1)));
    // Every string field of HELLO is checked: endpoint, groups, name, header keys, values.
    let hello = Message::new(
        1,
        Body::Hello(Hello {
            endpoint: "E".into(),
            groups: vec!["G".into()],
            status: 0,
            name: "N".into(),
            headers: vec![("K".into(), "V".into())],
        }),
    )
    .to_bytes()
    .unwrap();
    for letter in [b'E', b'G', b'N', b'K', b'V'] {
        let mut b = hello.clone();
        let at = b.iter().position(|x| *x == letter).unwrap();
        b[at] = 0xFF;
        assert_eq!(
            Message::decode(&b),
            Err(DecodeError::NotUtf8 {
                id: 1,
                sequence: 1,
                offset: at
            }),
            "{}",
            letter as char
        );
    }
}

fn text() -> impl Strategy<Value = String> {
    // Up to 255 bytes (the `string` limit) of mixed ASCII and multi-byte characters.
    "[a-zA-Z0-9 éü€😀-]{0,60}"
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            text(),
            prop::collection::vec(text(), 0..5),
            any::<u8>(),
            text(),
            prop::collection::vec((text(), text()), 0..5)
        )
            .prop_map(
                |(endpoint, groups, status, name, headers)| Body::Hello(Hello {
                    endpoint,
                    groups,
                    status,
                    name,
                    headers
                })
            ),
        Just(Body::Whisper),
        text().prop_map(|group| Body::Shout { group }),
        (text(), any::<u8>()).prop_map(|(group, status)| Body::Join { group, status }),
        (text(), any::<u8>()).prop_map(|(group, status)| Body::Leave { group, status }),
        Just(Body::Ping),
        Just(Body::PingOk),
        (text(), text()).prop_map(|(group, challenger_id)| Body::Elect {
            group,
            challenger_id
        }),
        (text(), text()).prop_map(|(group, leader_id)| Body::Leader { group, leader_id }),
        Just(Body::Goodbye),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (any::<u16>(), body()).prop_map(|(s, b)| Message::new(s, b))
}

proptest! {
    #[test]
    fn round_trip(m in message()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert_eq!(Message::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn every_truncation_is_an_error(m in message()) {
        let bytes = m.to_bytes().unwrap();
        for n in 0..bytes.len() {
            let r = Message::decode(&bytes[..n]);
            prop_assert!(r.is_err(), "prefix of {} bytes decoded", n);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert_eq!(Message::decode(&longer), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn corrupted_bytes_never_panic(m in message(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = m.to_bytes().unwrap();
        for (i, v) in flips {
            let n = bytes.len();
            bytes[i % n] = v;
        }
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&bytes);
        let _ = Beacon::decode(&bytes);
        // With a valid header the field readers get the random rest.
        for id in 1..=10u8 {
            let mut framed = vec![0xAA, 0xA1, id, 2, 0, 1];
            framed.extend_from_slice(&bytes);
            let _ = Message::decode(&framed);
        }
    }

    #[test]
    fn beacon_round_trip(id in any::<u128>(), port in any::<u16>()) {
        let b = Beacon::new(Uuid::from_u128(id), port);
        prop_assert_eq!(Beacon::decode(&b.encode()).unwrap(), b);
    }
}
