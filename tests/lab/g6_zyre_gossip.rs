//! Gossip lab scenario 6 (issues 13 and 15): gossip against Zyre C, both ways. Zyre C nodes
//! (`zyre_gossip_connect`) meet ours through our hub; our nodes meet each other and Zyre C
//! nodes through a Zyre C hub (`zyre_gossip_bind`, CZMQ's zgossip inside), also after
//! that hub's 1 s client timeout. Messages flow both ways after discovery.

use crate::support::*;
use crate::zyre::{begin_zyre, zyre_peer};

fn meet(a: &mut Peer, b: &mut Peer) {
    let (ua, ub) = (a.uuid, b.uuid);
    a.expect("ENTER", js("enter", ub));
    b.expect("ENTER", js("enter", ua));
}

fn talk(a: &mut Peer, b: &mut Peer) {
    let (ua, ub) = (a.uuid, b.uuid);
    a.whisper(ub, &[b"w".to_vec(), vec![0xFF, 0]]);
    let w = b.expect("whisper", js("whisper", ua));
    assert_eq!(w["frames"].as_array().unwrap().len(), 2);
    b.whisper(ua, &[b"back".to_vec()]);
    a.expect("whisper back", js("whisper", ub));
}

#[test]
fn g6_zyre_c_nodes_gossip_through_our_hub_and_ours_through_a_zyre_c_hub() {
    let Some((_one, z)) = begin_zyre("g6") else {
        return;
    };
    let port = 48270;
    let t = Timers::new(0.5, 2.0, 6.0);
    let mut lab = Lab::new("g6", 45);

    // Our hub; a Zyre C node and one of ours meet through it.
    let hh = lab.add_host();
    let hub = format!("tcp://{}:48271", hh.ip);
    let mut our_hub = peer(
        &lab,
        &hh,
        port,
        "hub",
        t,
        &["--gossip-bind", &hub, "--no-beacon"],
    );
    let hz = lab.add_host();
    let z_endpoint = format!("tcp://{}:48272", hz.ip);
    let t0 = Instant::now();
    let mut zc = zyre_peer(
        &lab,
        &hz,
        z,
        port,
        "zyre-client",
        t,
        &["--gossip-connect", &hub, "--endpoint", &z_endpoint],
    );
    let ha = lab.add_host();
    let mut a = peer(
        &lab,
        &ha,
        port,
        "a",
        t,
        &["--gossip-connect", &hub, "--no-beacon"],
    );
    meet(&mut zc, &mut a);
    meet(&mut zc, &mut our_hub);
    figure!(
        "g6 Zyre C through our hub: it and ours met {} after it started",
        secs(t0.elapsed())
    );
    talk(&mut zc, &mut a);
    // Shout both ways.
    for p in [&mut zc, &mut a] {
        p.send(json!({"cmd": "join", "group": "G"}));
    }
    let (uz, ua) = (zc.uuid, a.uuid);
    zc.expect("JOIN", js("join", ua));
    a.expect("JOIN", js("join", uz));
    zc.send(json!({"cmd": "shout", "group": "G", "text": "from zyre"}));
    a.expect("shout from Zyre C", js("shout", uz));
    a.send(json!({"cmd": "shout", "group": "G", "text": "from zre"}));
    zc.expect("shout from zre", js("shout", ua));
    // A Zyre C node in gossip mode says GOODBYE when it stops (it has no beacon): our
    // node takes it as leaving, well before its 6 s expiry.
    let t_stop = Instant::now();
    zc.terminate();
    a.expect_within(
        Duration::from_secs(2),
        "EXIT on Zyre's GOODBYE",
        js("exit", uz),
    );
    figure!(
        "g6 Zyre C's GOODBYE: EXIT at ours {} after its SIGTERM",
        secs(t_stop.elapsed())
    );
    drop(zc);

    // A Zyre C hub; two of ours and a Zyre C node meet through it. B waits out the hub's
    // 1 s client timeout before C comes: its PINGs keep its session, so the hub passes
    // C's tuple on to it.
    let hzh = lab.add_host();
    let zhub = format!("tcp://{}:48273", hzh.ip);
    let zh_endpoint = format!("tcp://{}:48274", hzh.ip);
    let mut zyre_hub = zyre_peer(
        &lab,
        &hzh,
        z,
        port + 1,
        "zyre-hub",
        t,
        &["--gossip-bind", &zhub, "--endpoint", &zh_endpoint],
    );
    let hb = lab.add_host();
    let hc = lab.add_host();
    let hz2 = lab.add_host();
    let mut b = peer(
        &lab,
        &hb,
        port + 1,
        "b",
        t,
        &["--gossip-connect", &zhub, "--no-beacon"],
    );
    meet(&mut b, &mut zyre_hub);
    std::thread::sleep(Duration::from_millis(2500));
    let t1 = Instant::now();
    let mut c = peer(
        &lab,
        &hc,
        port + 1,
        "c",
        t,
        &["--gossip-connect", &zhub, "--no-beacon"],
    );
    meet(&mut b, &mut c);
    figure!(
        "g6 ours through a Zyre C hub: b (2.5 s in) and c met {} after c started",
        secs(t1.elapsed())
    );
    let z2_endpoint = format!("tcp://{}:48275", hz2.ip);
    let mut z2 = zyre_peer(
        &lab,
        &hz2,
        z,
        port + 1,
        "zyre-2",
        t,
        &["--gossip-connect", &zhub, "--endpoint", &z2_endpoint],
    );
    meet(&mut z2, &mut b);
    meet(&mut z2, &mut c);
    talk(&mut b, &mut c);
    talk(&mut z2, &mut c);
    talk(&mut zyre_hub, &mut b);
    // Ours, beacon-less, say GOODBYE when they stop; Zyre in gossip mode removes at once.
    let t_stop = Instant::now();
    let ub = b.uuid;
    b.send(json!({"cmd": "stop"}));
    zyre_hub.expect_within(
        Duration::from_secs(2),
        "EXIT on our GOODBYE",
        js("exit", ub),
    );
    figure!(
        "g6 our GOODBYE: EXIT at Zyre C {} after our stop",
        secs(t_stop.elapsed())
    );
}
