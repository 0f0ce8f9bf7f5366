//! Gossip lab scenario 2 (issue 13): the hub is killed (kill -9) and restarted. Nodes
//! already connected stay connected, newcomers still join, and a node that dies leaves no
//! ghost behind once its expiry has passed.

use crate::g1_subnets::hub_endpoint;
use crate::netns::Router;
use crate::support::*;

#[test]
fn g2_a_hub_killed_and_restarted_keeps_links_joins_newcomers_and_leaves_no_ghost() {
    let Some(_one) = begin("g2", false) else {
        return;
    };
    let port = 48220;
    let t = Timers::new(0.5, 1.5, 4.0);
    let router = Router::new("g2");
    let mut near = Lab::new("g2a", 37);
    let mut far = Lab::new("g2b", 38);
    router.join(&mut near);
    router.join(&mut far);
    let hub_host = near.add_host();
    let hub_ep = hub_endpoint(&hub_host, 48221);
    let hub_args = ["--gossip-bind", hub_ep.as_str(), "--no-beacon"];
    let member = ["--gossip-connect", hub_ep.as_str(), "--no-beacon"];
    let mut hub = peer(&near, &hub_host, port, "hub", t, &hub_args);
    let ha = near.add_host();
    let hb = far.add_host();
    let hd = far.add_host();
    let mut a = peer(&near, &ha, port, "a", t, &member);
    let mut b = peer(&far, &hb, port, "b", t, &member);
    let mut d = peer(&far, &hd, port, "d", t, &member);
    let (ua, ub, ud) = (a.uuid, b.uuid, d.uuid);
    for (p, others) in [(&mut a, [ub, ud]), (&mut b, [ua, ud]), (&mut d, [ua, ub])] {
        for u in others {
            p.expect("ENTER", js("enter", u));
        }
    }

    // kill -9 the hub, and start it again on the same address and port.
    let t0 = Instant::now();
    hub.kill();
    drop(hub);
    let mut hub = peer(&near, &hub_host, port, "hub", t, &hub_args);
    // Its members publish again (its INVALID to their PINGs tells them it forgot them).
    let end = Instant::now() + DEADLINE;
    while stat(&stats(&mut hub), "gossip_tuples") < 4 {
        assert!(
            Instant::now() < end,
            "members did not publish to the restarted hub"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    figure!(
        "g2 hub restart: all 3 members published again {} after the kill",
        secs(t0.elapsed())
    );
    // Links did not depend on the hub: no EXIT anywhere across the restart.
    for p in [&mut a, &mut b, &mut d] {
        let seen = p.drain_for(Duration::from_millis(500));
        let churn = of_kind(&seen, &["exit"]);
        assert!(churn.is_empty(), "{}: {churn:?}", p.label);
    }

    // D dies without a word. The hub drops its tuple when the connection goes; A and B
    // see it EXIT at their expiry.
    let d_uuid = d.uuid;
    let t1 = Instant::now();
    d.kill();
    a.expect_within(t.expired() + REAP * 2, "EXIT d", js("exit", d_uuid));
    b.expect_within(t.expired() + REAP * 2, "EXIT d", js("exit", d_uuid));
    let exit_after = t1.elapsed();
    let tuples = stat(&stats(&mut hub), "gossip_tuples");
    figure!(
        "g2 d killed: EXIT at a and b {} after (expired {}s); hub holds {tuples} tuples",
        secs(exit_after),
        t.expired
    );
    assert_eq!(
        tuples, 3,
        "hub, a and b: d's tuple went with its connection"
    );

    // A newcomer after the restart and after D's expiry meets everyone alive, and no
    // ghost: D never enters.
    let hn = far.add_host();
    let mut n = peer(&far, &hn, port, "n", t, &member);
    for u in [a.uuid, b.uuid, hub.uuid] {
        n.expect("ENTER", js("enter", u));
    }
    let later = n.drain_for(Duration::from_secs(2));
    assert!(
        later.iter().all(|v| !js("enter", d_uuid)(v)),
        "ghost: the dead node entered at the newcomer"
    );
    assert_eq!(sorted(n.peers()), sorted(vec![a.uuid, b.uuid, hub.uuid]));
    a.expect("ENTER n", js("enter", n.uuid));
    assert_eq!(sorted(a.peers()), sorted(vec![b.uuid, hub.uuid, n.uuid]));
}
