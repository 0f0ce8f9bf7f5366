//! Lab scenario 5 (issue 4): 20% loss.

use crate::support::*;

#[test]
fn s5_lossy_link_discovers_and_delivers_10000_whispers_in_order() {
    let Some(_one) = begin("s5", true) else {
        return;
    };
    let port = 48050;
    // TCP recovers lost segments, but a segment lost several times waits for exponential
    // retransmit backoff (0.2 s, 0.4 s, ... ) with nothing arriving meanwhile: the
    // timeouts on this link are long enough that "the link holds".
    let t = Timers::new(0.2, 5.0, 30.0);
    let mut lab = Lab::new("s5", 5);
    let ha = lab.add_host();
    let hb = lab.add_host();
    lab.loss(&hb, 20);
    // A burst of small messages is a thin TCP stream: with 20% loss both ways, a segment
    // whose retransmits are lost again waits out exponential RTO backoff (once seen: 4,672
    // of 10,000 whispers in 240 s). Linux's remedy for thin streams is linear timeouts;
    // hosts on lossy links set it, and so do these.
    for h in [&ha, &hb] {
        lab.sysctl(h, "net.ipv4.tcp_thin_linear_timeouts=1");
    }
    let t0 = Instant::now();
    let mut a = peer(&lab, &ha, port, "a", t, &[]);
    let mut b = peer(&lab, &hb, port, "b", t, &["--tally"]);
    let deadline = Duration::from_secs(60);
    a.expect_within(deadline, "ENTER b over the lossy link", js("enter", b.uuid));
    b.expect_within(deadline, "ENTER a over the lossy link", js("enter", a.uuid));
    figure!(
        "s5 20% loss: discovered both ways after {}",
        secs(t0.elapsed())
    );

    let n = 10_000u64;
    let t1 = Instant::now();
    a.send(json!({"cmd": "burst", "peer": uuid_hex(&b.uuid), "count": n}));
    a.expect_within(deadline, "burst queued", |v| v["type"] == "burst");
    let (count, next, disorder) = wait_tally(&mut b, a.uuid, n, Duration::from_secs(240));
    let took = t1.elapsed();
    let drops = lab.nft_counters(&hb);
    let dropped: u64 = drops
        .lines()
        .filter_map(|l| l.split("counter packets ").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    figure!(
        "s5 20% loss: {count}/{n} whispers in {}, next {next}, out of order {disorder}; nft dropped {dropped} packets on b",
        secs(took)
    );
    assert_eq!(
        (count, next, disorder),
        (n, n, 0),
        "complete, in order, no duplicates"
    );
    assert!(dropped > 0, "the loss rule dropped nothing:\n{drops}");
    for x in [&mut a, &mut b] {
        let all = x.drain_for(Duration::from_millis(200));
        let exits = of_kind(&all, &["exit"]);
        assert!(exits.is_empty(), "{}: the link broke: {exits:?}", x.label);
    }
}
