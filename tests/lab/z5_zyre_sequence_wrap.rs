//! Zyre C scenario 5 (issue 15): 70,000 whispers on one link, both ways, so the 16-bit
//! message sequence wraps. Zyre C removes a peer (EXIT) at the first sequence it did not
//! expect; our node counts `sequence_gaps`.

use crate::support::*;
use crate::zyre::*;

#[test]
fn z5_more_than_65536_messages_wrap_both_ways_with_zyre_c() {
    let Some((_one, z)) = begin_zyre("z5") else {
        return;
    };
    let port = 48150;
    let t = Timers::new(0.1, 3.0, 10.0);
    let n = 70_000u64;
    let mut lab = Lab::new("z5", 25);
    let hz = lab.add_host();
    let hr = lab.add_host();
    let mut zy = zyre_peer(&lab, &hz, z, port, "zyre-c", t, &["--tally"]);
    let mut rs = peer(&lab, &hr, port, "rusty", t, &["--tally"]);
    let (zu, ru) = (zy.uuid, rs.uuid);
    zy.expect("ENTER rusty", js("enter", ru));
    rs.expect("ENTER zyre", js("enter", zu));

    // Ours to Zyre.
    let t0 = Instant::now();
    rs.send(json!({"cmd": "burst", "peer": uuid_hex(&zu), "count": n}));
    rs.expect_within(Duration::from_secs(60), "burst queued", |v| {
        v["type"] == "burst"
    });
    let got = wait_tally(&mut zy, ru, n, Duration::from_secs(60));
    let ours = t0.elapsed();
    assert_eq!(got, (n, n, 0), "Zyre's tally (count, next, out of order)");

    // Zyre to ours.
    let t1 = Instant::now();
    zy.send(json!({"cmd": "burst", "peer": uuid_hex(&ru), "count": n}));
    zy.expect_within(Duration::from_secs(60), "burst queued", |v| {
        v["type"] == "burst"
    });
    let got = wait_tally(&mut rs, zu, n, Duration::from_secs(60));
    let theirs = t1.elapsed();
    assert_eq!(got, (n, n, 0), "our tally (count, next, out of order)");
    let s = stats(&mut rs);
    figure!(
        "z5 {n} whispers zre->Zyre in {}, Zyre->zre in {}; our node counted {} messages, {} sequence gaps",
        secs(ours),
        secs(theirs),
        stat(&s, "messages"),
        stat(&s, "sequence_gaps")
    );
    assert_eq!(stat(&s, "sequence_gaps"), 0);
    assert!(stat(&s, "messages") > n);

    // The link still works both ways after the wraps, and nobody left.
    zy.whisper(ru, &[b"after wrap".to_vec()]);
    let e = rs.expect("WHISPER after the wrap", js("whisper", zu));
    assert_eq!(frames_of(&e), vec![b"after wrap".to_vec()]);
    rs.whisper(zu, &[b"ack".to_vec()]);
    zy.expect("WHISPER back", js("whisper", ru));
    for x in [&mut zy, &mut rs] {
        let rest = x.drain_for(Duration::from_millis(300));
        let exits = of_kind(&rest, &["exit"]);
        assert!(exits.is_empty(), "{}: {exits:?}", x.label);
    }
    assert_eq!(zy.peers(), vec![ru]);
    assert_eq!(rs.peers(), vec![zu]);
}
