//! Gossip lab scenario 1 (issue 13): subnets joined by a router that forwards IP but no
//! broadcast, with a gossip hub on one of them. Beacons still work within each subnet;
//! gossip carries discovery across.

use crate::netns::Router;
use crate::support::*;

/// The hub's gossip endpoint on `h`.
pub fn hub_endpoint(h: &Host, port: u16) -> String {
    format!("tcp://{}:{port}", h.ip)
}

/// Waits until each of `all` lists every other as a peer; returns how long that took.
pub fn all_see_all(all: &mut [Peer], within: Duration) -> Duration {
    let t0 = Instant::now();
    let uuids: Vec<Uuid> = all.iter().map(|p| p.uuid).collect();
    for p in all.iter_mut() {
        let want = sorted(uuids.iter().copied().filter(|u| *u != p.uuid).collect());
        loop {
            if sorted(p.peers()) == want {
                break;
            }
            if t0.elapsed() >= within {
                let n = p.peers().len();
                panic!(
                    "{} sees {n} of {} peers after {within:?}",
                    p.label,
                    want.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    t0.elapsed()
}

#[test]
fn g1_nodes_on_three_subnets_with_beacons_all_meet_through_one_hub() {
    let Some(_one) = begin("g1", false) else {
        return;
    };
    let port = 48200;
    let t = Timers::new(0.5, 2.0, 6.0);
    let router = Router::new("g1");
    let mut labs: Vec<Lab> = (30..33).map(|n| Lab::new(&format!("g1n{n}"), n)).collect();
    for lab in &mut labs {
        router.join(lab);
    }
    let hub_host = labs[0].add_host();
    let hub_ep = hub_endpoint(&hub_host, 48201);
    let mut all = vec![peer(
        &labs[0],
        &hub_host,
        port,
        "hub",
        t,
        &["--gossip-bind", &hub_ep],
    )];
    let mut last = Instant::now();
    for (i, lab) in labs.iter_mut().enumerate() {
        for j in 0..2 {
            let h = lab.add_host();
            let name = format!("n{i}{j}");
            all.push(peer(
                lab,
                &h,
                port,
                &name,
                t,
                &["--gossip-connect", &hub_ep],
            ));
            last = Instant::now();
        }
    }
    let took = all_see_all(&mut all, DEADLINE);
    let since_last = last.elapsed();
    figure!(
        "g1 7 nodes on 3 subnets (beacons on, one hub): all see all {} after the last start (checked in {})",
        secs(since_last),
        secs(took)
    );
    assert!(
        since_last < Duration::from_secs(2),
        "all see all within 2 s of the last start"
    );
    // Messages cross the router both ways.
    let (a, b) = (all[1].uuid, all[6].uuid);
    all[1].whisper(b, &[b"across".to_vec()]);
    all[6].expect("whisper across the router", js("whisper", a));
    all[6].whisper(a, &[b"back".to_vec()]);
    all[1].expect("whisper back", js("whisper", b));
}

#[test]
fn g1_twenty_nodes_on_four_subnets_without_beacons_meet_through_one_hub() {
    let Some(_one) = begin("g1b", false) else {
        return;
    };
    let port = 48210;
    let t = Timers::new(0.5, 3.0, 10.0);
    let router = Router::new("g1b");
    let mut labs: Vec<Lab> = (33..37).map(|n| Lab::new(&format!("g1b{n}"), n)).collect();
    for lab in &mut labs {
        router.join(lab);
    }
    let hub_host = labs[0].add_host();
    let hub_ep = hub_endpoint(&hub_host, 48211);
    let mut all = vec![peer(
        &labs[0],
        &hub_host,
        port,
        "hub",
        t,
        &["--gossip-bind", &hub_ep, "--no-beacon"],
    )];
    for (i, lab) in labs.iter_mut().enumerate() {
        for j in 0..5 {
            let h = lab.add_host();
            let name = format!("n{i}{j}");
            all.push(peer(
                lab,
                &h,
                port,
                &name,
                t,
                &["--gossip-connect", &hub_ep, "--no-beacon"],
            ));
        }
    }
    let last = Instant::now();
    all_see_all(&mut all, DEADLINE);
    let since_last = last.elapsed();
    figure!(
        "g1b 21 nodes (hub + 20) on 4 subnets, no beacons: all see all {} after the last start",
        secs(since_last)
    );
    let hub_stats = stats(&mut all[0]);
    assert_eq!(stat(&hub_stats, "gossip_tuples"), 21);
    assert_eq!(stat(&hub_stats, "gossip_clients"), 20);
    // A shout from one subnet reaches every member on the others.
    for p in all.iter_mut() {
        p.send(json!({"cmd": "join", "group": "G"}));
    }
    let others: Vec<Uuid> = all.iter().map(|p| p.uuid).collect();
    let from = all[1].uuid;
    for u in others.iter().filter(|u| **u != from) {
        let u = *u;
        all[1].expect("JOIN G", js("join", u));
    }
    all[1].send(json!({"cmd": "shout", "group": "G", "text": "to all"}));
    for p in all.iter_mut().skip(2) {
        p.expect("the shout", js("shout", from));
    }
}
