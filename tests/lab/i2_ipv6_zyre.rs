//! IPv6 scenario 2 (issue 15): Zyre C with `ZSYS_IPV6=1` (zyre_peer --ipv6) and our node
//! with `--ipv6`, on IPv6-only hosts. Over global addresses (a ULA, which both take first
//! as the system lists it), then over link-local ones (Zyre given its address by
//! `ZSYS_IPV6_ADDRESS`, ours by `--interface`): each discovers the other by its beacons to
//! ff02::1, whisper and shout both ways, and each sees the other's stop at once. Last, the
//! HELLO path: our node, beaconing nothing, connects to Zyre's endpoint as Zyre's HELLO
//! writes it (no zone), and Zyre, which never heard of us, connects back to the endpoint
//! our HELLO names, adding its own interface as zyre_peer.c does.

use std::net::Ipv6Addr;

use crate::ipv6::*;
use crate::support::*;
use crate::zyre::*;

/// zyre_peer with `--ipv6`, as [`zyre_peer`] starts it, with `ZSYS_IPV6_ADDRESS` if given.
fn zyre_v6(
    lab: &Lab,
    h: &Host,
    z: &ZyreC,
    port: u16,
    name: &str,
    t: Timers,
    address: Option<Ipv6Addr>,
) -> Peer {
    let mut cmd = lab.command(h, &z.peer);
    cmd.args(["--interface", netns::IFACE, "--port", &port.to_string()])
        .args(["--name", name, "--ipv6", "--group", "G"])
        .args(t.args());
    if let Some(a) = address {
        cmd.env("ZSYS_IPV6_ADDRESS", a.to_string());
    }
    Peer::spawn(&format!("zyre:{name}"), cmd)
}

/// `tcp://fe80::1%veth0:5` as our HELLO writes it: `tcp://fe80::1:5`.
fn hello_form(endpoint: &str) -> String {
    endpoint.replace(&format!("%{}", netns::IFACE), "")
}

/// Both see each other at the expected endpoints, join G, whisper and shout both ways.
/// Returns Zyre's endpoint as our node reports it.
fn exchange(zy: &mut Peer, rs: &mut Peer, zyre_at: Ipv6Addr, ours_at: Ipv6Addr) -> String {
    let (zu, ru) = (zy.uuid, rs.uuid);
    let e = rs.expect("ENTER zyre", js("enter", zu));
    let zep = e["endpoint"].as_str().unwrap().to_string();
    assert!(zep.starts_with(&on_veth(zyre_at)), "{zep}");
    let e = zy.expect("ENTER rusty", js("enter", ru));
    // Zyre's ENTER names the endpoint our HELLO carries: ours without the zone.
    let ours = rs.ready["endpoint"].as_str().unwrap();
    assert!(ours.starts_with(&on_veth(ours_at)), "{ours}");
    assert_eq!(e["endpoint"].as_str(), Some(hello_form(ours).as_str()));
    rs.expect("JOIN zyre G", jsg("join", zu, "G"));
    zy.expect("JOIN rusty G", jsg("join", ru, "G"));
    zy.whisper(ru, &[b"from zyre".to_vec()]);
    rs.whisper(zu, &[b"from zre".to_vec()]);
    let e = rs.expect("WHISPER zyre", js("whisper", zu));
    assert_eq!(frames_of(&e), vec![b"from zyre".to_vec()]);
    let e = zy.expect("WHISPER rusty", js("whisper", ru));
    assert_eq!(frames_of(&e), vec![b"from zre".to_vec()]);
    zy.shout("G", &[b"zyre to G".to_vec()]);
    rs.shout("G", &[b"zre to G".to_vec()]);
    let e = rs.expect("SHOUT zyre", jsg("shout", zu, "G"));
    assert_eq!(frames_of(&e), vec![b"zyre to G".to_vec()]);
    let e = zy.expect("SHOUT rusty", jsg("shout", ru, "G"));
    assert_eq!(frames_of(&e), vec![b"zre to G".to_vec()]);
    zep
}

/// `stopping` stops gracefully; `watcher` must see its EXIT before the evasive timeout
/// (the port-0 beacon, not the expired timeout). Returns when.
fn stop_seen_at_once(stopping: &mut Peer, watcher: &mut Peer, t: Timers) -> Duration {
    let u = stopping.uuid;
    let t0 = Instant::now();
    assert!(stopping.stop().success(), "{} stop", stopping.label);
    let seen = until(watcher, t0, DEADLINE, "EXIT", js("exit", u));
    let at = seen_at(&seen, "exit", u).unwrap();
    assert!(at < t.evasive(), "{}: EXIT after {at:?}", watcher.label);
    assert!(seen_at(&seen, "evasive", u).is_none(), "{seen:?}");
    at
}

#[test]
fn i2_zyre_c_and_zre_meet_over_ipv6_global_and_link_local_and_by_hello() {
    let Some((_one, z)) = begin_zyre("i2") else {
        return;
    };
    let t = Timers::new(0.1, 1.0, 3.0);
    let mut lab = Lab::new("i2", 72);
    let (hz, hr) = (lab.add_host(), lab.add_host());
    let ula = |i| Ipv6Addr::new(0xfd77, 0x72, 0, 0, 0, 0, 0, i);
    // zyre_peer runs only on an interface with an address of the lab's (here fd77::/16).
    let zll = ipv6_only(&hz, Some(ula(1)));
    let rll = ipv6_only(&hr, Some(ula(2)));

    // Global: both take the ULA, the first address listed for veth0.
    let t0 = Instant::now();
    let mut zy = zyre_v6(&lab, &hz, z, 48410, "zyre-ula", t, None);
    let mut rs = peer(&lab, &hr, 48410, "zre-ula", t, &["--ipv6", "--group", "G"]);
    let zep = exchange(&mut zy, &mut rs, ula(1), ula(2));
    figure!(
        "i2 global: Zyre C at {zep}, zre at {}; met, whispered and shouted {} after start",
        rs.ready["endpoint"],
        secs(t0.elapsed())
    );
    let a = stop_seen_at_once(&mut rs, &mut zy, t);
    let mut rs = peer(&lab, &hr, 48410, "zre-ula-2", t, &["--ipv6"]);
    rs.expect("ENTER zyre", js("enter", zy.uuid));
    let b = stop_seen_at_once(&mut zy, &mut rs, t);
    figure!(
        "i2 global: stop seen as EXIT by Zyre C after {}, by zre after {}",
        secs(a),
        secs(b)
    );
    drop(rs);

    // Link-local: Zyre given its address (CZMQ adds %veth0), ours by --interface.
    let t1 = Instant::now();
    let mut zy = zyre_v6(&lab, &hz, z, 48411, "zyre-ll", t, Some(zll));
    let ours = format!("{rll}%{}", netns::IFACE);
    let mut rs = peer_on(
        &lab,
        &hr,
        48411,
        "zre-ll",
        t,
        &ours,
        &["--ipv6", "--group", "G"],
    );
    let zep = exchange(&mut zy, &mut rs, zll, rll);
    figure!(
        "i2 link-local: Zyre C at {zep}, zre at {}; met, whispered and shouted {} after start",
        rs.ready["endpoint"],
        secs(t1.elapsed())
    );
    let a = stop_seen_at_once(&mut rs, &mut zy, t);
    figure!(
        "i2 link-local: stop seen as EXIT by Zyre C after {}",
        secs(a)
    );

    // HELLO first: Zyre's endpoint as its HELLO carries it, without the zone.
    let port = zep.rsplit(':').next().unwrap();
    let bare = format!("tcp://{zll}:{port}");
    let hello_args = ["--ipv6", "--no-beacon", "--peer", bare.as_str()];
    let mut quiet = peer_on(&lab, &hr, 48412, "zre-quiet", t, &ours, &hello_args);
    // Zyre heard no beacon: it connected to our HELLO's endpoint plus its own interface
    // (its ENTER names the HELLO's), and our whisper below comes back that way.
    let e = zy.expect("ENTER zre-quiet", js("enter", quiet.uuid));
    let ours = quiet.ready["endpoint"].as_str().unwrap();
    assert_eq!(e["endpoint"].as_str(), Some(hello_form(ours).as_str()));
    let e = quiet.expect("ENTER zyre", js("enter", zy.uuid));
    assert_eq!(e["endpoint"].as_str(), Some(zep.as_str()));
    zy.whisper(quiet.uuid, &[b"by hello".to_vec()]);
    let e = quiet.expect("WHISPER zyre", js("whisper", zy.uuid));
    assert_eq!(frames_of(&e), vec![b"by hello".to_vec()]);
    quiet.whisper(zy.uuid, &[b"and back".to_vec()]);
    let e = zy.expect("WHISPER zre-quiet", js("whisper", quiet.uuid));
    assert_eq!(frames_of(&e), vec![b"and back".to_vec()]);
    figure!("i2 HELLO path: Zyre C reached {}", quiet.ready["endpoint"]);
}
