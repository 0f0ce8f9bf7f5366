//! Gossip lab scenario 5 (issue 13): hostile frames at a hub (every truncation of every
//! message, bad signature, version and id, a frame in two parts, a 10,000-tuple flood)
//! leave it serving the others, with bounded memory.

use crate::g1_subnets::hub_endpoint;
use crate::support::*;

#[test]
fn g5_hostile_frames_and_a_tuple_flood_leave_the_hub_serving_with_bounded_memory() {
    let Some(_one) = begin("g5", false) else {
        return;
    };
    let port = 48260;
    let t = Timers::new(0.5, 2.0, 6.0);
    let mut lab = Lab::new("g5", 44);
    let hub_host = lab.add_host();
    let hub_ep = hub_endpoint(&hub_host, 48261);
    let member = ["--gossip-connect", hub_ep.as_str(), "--no-beacon"];
    let mut hub = peer(
        &lab,
        &hub_host,
        port,
        "hub",
        t,
        &["--gossip-bind", &hub_ep, "--no-beacon"],
    );
    let ha = lab.add_host();
    let mut a = peer(&lab, &ha, port, "a", t, &member);
    a.expect("ENTER hub", js("enter", hub.uuid));
    let before = stats(&mut hub);
    let (rss0, _) = memory_kib(hub.pid());

    let evil = lab.add_host();
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let tried = rogue(
            &lab,
            &evil,
            &["gossip", "--target", &hub_ep, "--count", "10000"],
        );
        rounds.push(tried);
    }
    let malformed: u64 = rounds
        .iter()
        .map(|r| r["malformed"].as_u64().unwrap())
        .sum();
    let s = stats_until(&mut hub, &before, &[("gossip_malformed", malformed)]);
    let (rss1, hwm) = memory_kib(hub.pid());
    figure!(
        "g5 hub under 3 x (every truncation, bad frames, 10,000 tuples): malformed {} of {malformed}, refused {}, tuples {}, RSS {} -> {} KiB (peak {hwm})",
        stat(&s, "gossip_malformed") - stat(&before, "gossip_malformed"),
        stat(&s, "gossip_refused"),
        stat(&s, "gossip_tuples"),
        rss0,
        rss1
    );
    assert_eq!(
        stat(&s, "gossip_malformed") - stat(&before, "gossip_malformed"),
        malformed
    );
    // Each round was one client: at most its bound (1,024 tuples) was held, and it all
    // goes once the hub finds the client gone (a probe it cannot route, within seconds).
    assert!(stat(&s, "gossip_tuples") <= 2 + 3 * 1_024, "{s}");
    let t0 = Instant::now();
    loop {
        let n = stat(&stats(&mut hub), "gossip_tuples");
        if n == 2 {
            break;
        }
        assert!(t0.elapsed() < DEADLINE, "the flooders' tuples stayed: {n}");
        std::thread::sleep(Duration::from_millis(100));
    }
    figure!(
        "g5 the flooders' tuples were gone {} after the last flood",
        secs(t0.elapsed())
    );
    assert!(rss1 < rss0 + 20 * 1024, "hub grew {} KiB", rss1 - rss0);
    // Still serving: a newcomer meets both.
    let hb = lab.add_host();
    let mut b = peer(&lab, &hb, port, "b", t, &member);
    b.expect("ENTER hub", js("enter", hub.uuid));
    b.expect("ENTER a", js("enter", a.uuid));
    a.expect("ENTER b", js("enter", b.uuid));
}
