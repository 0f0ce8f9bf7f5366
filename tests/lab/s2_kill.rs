//! Lab scenario 2 (issue 4): kill -9.

use crate::support::*;

#[test]
fn s2_killed_node_is_evasive_then_exits_within_expired_plus_reap() {
    let Some(_one) = begin("s2", false) else {
        return;
    };
    let port = 48020;
    let t = Timers::new(0.1, 1.0, 3.0);
    let mut lab = Lab::new("s2", 2);
    let hosts: Vec<Host> = (0..3).map(|_| lab.add_host()).collect();
    let mut p: Vec<Peer> = ["a", "b", "victim"]
        .iter()
        .zip(&hosts)
        .map(|(n, h)| peer(&lab, h, port, n, t, &[]))
        .collect();
    converge(&mut p, DEADLINE);
    // Idle long enough that only PINGs keep the links alive.
    std::thread::sleep(t.evasive() * 2);
    let victim = p[2].uuid;
    let t0 = Instant::now();
    p[2].kill();
    let mut survivors: Vec<&mut Peer> = p[..2].iter_mut().collect();
    let all = watch(
        &mut survivors,
        t0,
        t.expired() + DEADLINE,
        "EXIT victim",
        |_, s| seen_at(s, "exit", victim).is_some(),
    );
    for (i, seen) in all.iter().enumerate() {
        let seen = seen.as_slice();
        let ev = seen_at(seen, "evasive", victim).expect("EVASIVE before EXIT");
        let si = seen_at(seen, "silent", victim).expect("SILENT before EXIT");
        let ex = seen_at(seen, "exit", victim).unwrap();
        figure!(
            "s2 host {i}: kill -9 -> EVASIVE {} SILENT {} EXIT {} (evasive {}s, expired {}s)",
            secs(ev),
            secs(si),
            secs(ex),
            t.evasive,
            t.expired
        );
        assert!(
            ev <= si && si <= ex,
            "order EVASIVE, SILENT, EXIT: {seen:?}"
        );
        // Last contact was at most the PING interval (four fifths of the evasive timeout)
        // before the kill, so EVASIVE falls in [evasive - ping, evasive] after it, EXIT in
        // [expired - ping, expired], plus delivery slack.
        let ping = t.evasive() - t.evasive() / 5;
        assert!(ev <= t.evasive() + REAP, "EVASIVE after {ev:?}");
        assert!(
            ev + Duration::from_millis(100) >= t.evasive() - ping,
            "EVASIVE too early: {ev:?}"
        );
        assert!(ex <= t.expired() + REAP, "EXIT after {ex:?}");
        assert!(
            ex + Duration::from_millis(100) >= t.expired() - ping,
            "EXIT too early: {ex:?}"
        );
        let evasive_count = seen
            .iter()
            .filter(|(_, v)| js("evasive", victim)(v))
            .count();
        assert_eq!(evasive_count, 1, "EVASIVE is reported once: {seen:?}");
    }
    // The survivors still see each other.
    let (a, b) = (p[0].uuid, p[1].uuid);
    assert_eq!(p[0].peers(), vec![b]);
    assert_eq!(p[1].peers(), vec![a]);
    for x in p[..2].iter_mut() {
        let rest = x.drain_for(Duration::from_millis(500));
        assert!(of_kind(&rest, &["exit", "evasive"]).is_empty(), "{rest:?}");
    }
}
