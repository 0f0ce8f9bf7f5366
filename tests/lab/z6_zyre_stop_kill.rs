//! Zyre C scenario 6 (issue 15): graceful stop and kill -9, both ways, timed. The figures
//! are printed; the asserts are generous bounds from the configured timers (beacon
//! interval 0.1 s, evasive 1 s, expired 3 s on both sides; Zyre reaps once a second).

use crate::support::*;
use crate::zyre::*;

/// When `p` reports `kind` about `peer`, measured from `t0`, with everything it reported
/// about `peer` up to then.
fn timed(
    p: &mut Peer,
    t0: Instant,
    within: Duration,
    kind: &'static str,
    peer: Uuid,
) -> (Duration, Vec<(Duration, Value)>) {
    let seen = until(p, t0, within, kind, js(kind, peer));
    let at = seen_at(&seen, kind, peer).unwrap();
    let about = seen
        .into_iter()
        .filter(|(_, v)| v["peer"] == uuid_hex(&peer).as_str())
        .collect();
    (at, about)
}

#[test]
fn z6_graceful_stop_and_kill_9_timings_with_zyre_c() {
    let Some((_one, z)) = begin_zyre("z6") else {
        return;
    };
    let port = 48160;
    let t = Timers::new(0.1, 1.0, 3.0);
    let mut lab = Lab::new("z6", 26);
    let hz = lab.add_host();
    let hr = lab.add_host();
    let meet = |a: &mut Peer, b: &mut Peer| {
        a.expect("ENTER", js("enter", b.uuid));
        b.expect("ENTER", js("enter", a.uuid));
    };

    // Ours stops gracefully: Zyre sees EXIT from the goodbye, long before expiry.
    let mut zy = zyre_peer(&lab, &hz, z, port, "zyre-a", t, &[]);
    let mut rs = peer(&lab, &hr, port, "rusty-b", t, &[]);
    meet(&mut zy, &mut rs);
    // Timed from the stop command to the EXIT line (the process exits after that).
    let t0 = Instant::now();
    rs.send(json!({"cmd": "stop"}));
    let (ours_stop, _) = timed(&mut zy, t0, t.expired() + DEADLINE, "exit", rs.uuid);
    rs.expect("STOP", |v| v["type"] == "stop");
    assert!(rs.wait().success());
    figure!("z6 zre stops: Zyre EXIT after {}", secs(ours_stop));
    assert!(
        ours_stop < t.expired(),
        "not from the goodbye: {ours_stop:?}"
    );

    // Zyre stops gracefully: ours sees EXIT from its port-0 beacon.
    let mut rs = peer(&lab, &hr, port, "rusty-c", t, &[]);
    meet(&mut zy, &mut rs);
    let t0 = Instant::now();
    zy.send(json!({"cmd": "stop"}));
    let (zyre_stop, _) = timed(&mut rs, t0, t.expired() + DEADLINE, "exit", zy.uuid);
    zy.expect("STOP", |v| v["type"] == "stop");
    assert!(zy.wait().success());
    figure!("z6 Zyre stops: zre EXIT after {}", secs(zyre_stop));
    assert!(
        zyre_stop < t.expired(),
        "not from the goodbye: {zyre_stop:?}"
    );

    // Ours is killed right after a whisper, so Zyre's last message from it is known:
    // Zyre reports EVASIVE (at each reap once the evasive timeout passed), SILENT one reap
    // later, and EXIT at its expired timeout from that message, at a reap (once a second).
    let mut zy = zyre_peer(&lab, &hz, z, port, "zyre-e", t, &[]);
    meet(&mut zy, &mut rs);
    // Idle, healthy: Zyre reports EVASIVE about a peer it has had no message from, though
    // its beacons arrive (README, "Where we differ"); how often depends on its reaps.
    let idle = zy.drain_for(t.evasive() * 2);
    let idle_evasive = idle.iter().filter(|v| js("evasive", rs.uuid)(v)).count();
    rs.whisper(zy.uuid, &[b"last words".to_vec()]);
    zy.expect("the last whisper", js("whisper", rs.uuid));
    let t0 = Instant::now();
    rs.kill();
    let (ex, about) = timed(&mut zy, t0, t.expired() + DEADLINE, "exit", rs.uuid);
    let ev = seen_at(&about, "evasive", rs.uuid);
    let si = seen_at(&about, "silent", rs.uuid);
    let evasives = about.iter().filter(|(_, v)| v["type"] == "evasive").count();
    figure!(
        "z6 kill -9 zre after a whisper: Zyre EVASIVE {} ({evasives} times) SILENT {} EXIT {} \
         (before, idle {}: {idle_evasive} EVASIVE)",
        ev.map_or("-".into(), secs),
        si.map_or("-".into(), secs),
        secs(ex),
        secs(t.evasive() * 2)
    );
    let ev = ev.expect("Zyre reports EVASIVE before EXIT");
    assert!(ev + Duration::from_millis(100) >= t.evasive() && ev <= t.evasive() + REAP * 2);
    assert!(ev <= ex);
    assert!(
        ex + Duration::from_millis(100) >= t.expired(),
        "EXIT too early: {ex:?}"
    );
    assert!(ex <= t.expired() + REAP * 2, "EXIT after {ex:?}");

    // Zyre is killed: ours reports EVASIVE, SILENT and EXIT once each, at our timers
    // from its last beacon (0.1 s before the kill at most).
    let mut rs = peer(&lab, &hr, port, "rusty-f", t, &[]);
    meet(&mut zy, &mut rs);
    let idle = rs.drain_for(t.evasive() * 2);
    assert!(
        of_kind(&idle, &["evasive", "silent"]).is_empty(),
        "{idle:?}"
    );
    let t0 = Instant::now();
    zy.kill();
    let (ex, about) = timed(&mut rs, t0, t.expired() + DEADLINE, "exit", zy.uuid);
    let kinds: Vec<&str> = about
        .iter()
        .map(|(_, v)| v["type"].as_str().unwrap())
        .collect();
    let ev = seen_at(&about, "evasive", zy.uuid).expect("EVASIVE before EXIT");
    let si = seen_at(&about, "silent", zy.uuid).expect("SILENT before EXIT");
    figure!(
        "z6 kill -9 Zyre: zre EVASIVE {} SILENT {} EXIT {}",
        secs(ev),
        secs(si),
        secs(ex)
    );
    assert_eq!(kinds, ["evasive", "silent", "exit"]);
    assert!(ev <= t.evasive() + REAP && ev + t.evasive() / 2 >= t.evasive());
    assert!(ex <= t.expired() + REAP, "EXIT after {ex:?}");
    assert!(ex + t.evasive() >= t.expired(), "EXIT too early: {ex:?}");
}
