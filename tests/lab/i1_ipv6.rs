//! IPv6 scenario 1 (issue 15): our nodes with `--ipv6` on IPv6-only hosts. Beacons go to
//! ff02::1 on veth0; first over link-local addresses (the endpoints carry the zone
//! `%veth0`), then with a global address (ULA) on each host, which every node takes first
//! as CZMQ does, beside a node given its link-local address. Discovery, whisper, shout,
//! and a stop that the others see at once (the port-0 beacon).

use std::net::Ipv6Addr;

use crate::ipv6::*;
use crate::support::*;

/// Waits until each peer saw ENTER from every other, with the endpoint that peer reports
/// for itself (the same text on every host: each one's zone is `veth0`).
fn meet(ps: &mut [Peer]) {
    let known: Vec<(Uuid, Value)> = ps
        .iter()
        .map(|p| (p.uuid, p.ready["endpoint"].clone()))
        .collect();
    for p in ps.iter_mut() {
        for (u, ep) in &known {
            if *u != p.uuid {
                let e = p.expect(&format!("ENTER {}", uuid_hex(u)), js("enter", *u));
                assert_eq!(&e["endpoint"], ep, "{}", p.label);
            }
        }
    }
}

#[test]
fn i1_ipv6_only_hosts_meet_over_link_local_and_global_addresses() {
    let Some(_one) = begin("i1", false) else {
        return;
    };
    let t = Timers::new(0.1, 1.0, 3.0);
    let mut lab = Lab::new("i1", 71);
    let hosts: Vec<Host> = (0..3).map(|_| lab.add_host()).collect();
    let t0 = Instant::now();
    let ll: Vec<Ipv6Addr> = hosts.iter().map(|h| ipv6_only(h, None)).collect();
    figure!(
        "i1 link-local addresses usable {} after the hosts came up",
        secs(t0.elapsed())
    );

    // Link-local: the only IPv6 address on veth0.
    let t1 = Instant::now();
    let mut ps: Vec<Peer> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            peer(
                &lab,
                h,
                48400,
                &format!("ll-{i}"),
                t,
                &["--ipv6", "--group", "G"],
            )
        })
        .collect();
    for (p, ip) in ps.iter().zip(&ll) {
        let ep = p.ready["endpoint"].as_str().unwrap();
        assert!(ep.starts_with(&on_veth(*ip)), "{ep}");
    }
    meet(&mut ps);
    figure!(
        "i1 three nodes met over link-local IPv6 {} after start ({})",
        secs(t1.elapsed()),
        ps[0].ready["endpoint"]
    );
    let (u0, u1, u2) = (ps[0].uuid, ps[1].uuid, ps[2].uuid);
    for (i, p) in ps.iter_mut().enumerate() {
        let me = p.uuid;
        for u in [u0, u1, u2].into_iter().filter(|u| *u != me) {
            p.expect(&format!("JOIN G ({i})"), jsg("join", u, "G"));
        }
    }
    ps[0].whisper(u1, &[b"to one".to_vec()]);
    let e = ps[1].expect("WHISPER from 0", js("whisper", u0));
    assert_eq!(frames_of(&e), vec![b"to one".to_vec()]);
    ps[2].shout("G", &[b"to G".to_vec()]);
    for p in &mut ps[..2] {
        let e = p.expect("SHOUT from 2", jsg("shout", u2, "G"));
        assert_eq!(frames_of(&e), vec![b"to G".to_vec()]);
    }
    // A stop is an EXIT at once: the port-0 beacon reaches every host over ff02::1.
    let stopped = Instant::now();
    assert!(ps[2].stop().success());
    let seen = watch(
        &mut ps[..2].iter_mut().collect::<Vec<_>>(),
        stopped,
        DEADLINE,
        "EXIT ll-2",
        |_, s| seen_at(s, "exit", u2).is_some(),
    );
    for s in &seen {
        let at = seen_at(s, "exit", u2).unwrap();
        assert!(at < t.evasive(), "EXIT after {at:?}: {s:?}");
        assert!(seen_at(s, "evasive", u2).is_none(), "{s:?}");
    }
    figure!(
        "i1 stop seen as EXIT after {}",
        secs(seen_at(&seen[0], "exit", u2).unwrap())
    );
    drop(ps);

    // Global addresses: a ULA on each host, listed before the link-local one, so a node
    // given only the interface takes it (as CZMQ does); one node is given its link-local
    // address and one its ULA. They all meet, across both kinds of address.
    let ula = |i: usize| Ipv6Addr::new(0xfd77, 0x71, 0, 0, 0, 0, 0, i as u16 + 1);
    for (i, h) in hosts.iter().enumerate() {
        ipv6_only(h, Some(ula(i)));
    }
    let ll1 = format!("{}%{}", ll[1], netns::IFACE);
    let ula2 = ula(2).to_string();
    let t2 = Instant::now();
    let mut gs = vec![
        peer(&lab, &hosts[0], 48401, "ula-0", t, &["--ipv6"]),
        peer_on(&lab, &hosts[1], 48401, "ll-1", t, &ll1, &["--ipv6"]),
        peer_on(&lab, &hosts[2], 48401, "ula-2", t, &ula2, &["--ipv6"]),
    ];
    for (p, ip) in gs.iter().zip([ula(0), ll[1], ula(2)]) {
        let ep = p.ready["endpoint"].as_str().unwrap();
        assert!(ep.starts_with(&on_veth(ip)), "{ep}");
    }
    meet(&mut gs);
    figure!(
        "i1 global and link-local nodes met {} after start",
        secs(t2.elapsed())
    );
    let (g0, g1, g2) = (gs[0].uuid, gs[1].uuid, gs[2].uuid);
    gs[0].whisper(g1, &[b"global to link-local".to_vec()]);
    gs[1].whisper(g2, &[b"link-local to global".to_vec()]);
    let e = gs[1].expect("WHISPER from ula-0", js("whisper", g0));
    assert_eq!(frames_of(&e), vec![b"global to link-local".to_vec()]);
    let e = gs[2].expect("WHISPER from ll-1", js("whisper", g1));
    assert_eq!(frames_of(&e), vec![b"link-local to global".to_vec()]);
}
