//! Lab scenario 9 (issue 4): sequence wrap.

use crate::support::*;

#[test]
fn s9_more_than_65536_messages_on_one_link_wrap_without_exit() {
    let Some(_one) = begin("s9", false) else {
        return;
    };
    let port = 48090;
    let t = Timers::new(0.1, 2.0, 10.0);
    let mut lab = Lab::new("s9", 9);
    let ha = lab.add_host();
    let hb = lab.add_host();
    let mut a = peer(&lab, &ha, port, "a", t, &[]);
    let mut b = peer(&lab, &hb, port, "b", t, &["--tally"]);
    a.expect("ENTER b", js("enter", b.uuid));
    b.expect("ENTER a", js("enter", a.uuid));
    let n = 70_000u64;
    let t0 = Instant::now();
    a.send(json!({"cmd": "burst", "peer": uuid_hex(&b.uuid), "count": n}));
    a.expect_within(Duration::from_secs(120), "burst queued", |v| {
        v["type"] == "burst"
    });
    let (count, next, disorder) = wait_tally(&mut b, a.uuid, n, Duration::from_secs(120));
    let took = t0.elapsed();
    let s = stats(&mut b);
    figure!(
        "s9 wrap: {count}/{n} whispers a->b in {} (sequence wrapped {} time(s)); b counted {} messages, {} gaps",
        secs(took),
        (count + 1) / 65_536,
        stat(&s, "messages"),
        stat(&s, "sequence_gaps")
    );
    assert_eq!((count, next, disorder), (n, n, 0));
    assert_eq!(stat(&s, "sequence_gaps"), 0);
    assert!(stat(&s, "messages") > 65_536);
    // The link still works after the wrap, both ways, and nobody left.
    a.whisper(b.uuid, &[b"after wrap".to_vec()]);
    let e = b.expect("WHISPER after the wrap", js("whisper", a.uuid));
    assert_eq!(frames_of(&e), vec![b"after wrap".to_vec()]);
    b.whisper(a.uuid, &[b"ack".to_vec()]);
    a.expect("WHISPER back", js("whisper", b.uuid));
    for x in [&mut a, &mut b] {
        let rest = x.drain_for(Duration::from_millis(500));
        let exits = of_kind(&rest, &["exit"]);
        assert!(exits.is_empty(), "{}: {exits:?}", x.label);
    }
    assert_eq!(a.peers(), vec![b.uuid]);
    assert_eq!(b.peers(), vec![a.uuid]);
}
