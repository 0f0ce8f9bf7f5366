//! Lab scenario 4 (issue 4): restart, new UUID.

use crate::support::*;

#[test]
fn s4_restart_on_the_same_address_exits_old_uuid_enters_new() {
    let Some(_one) = begin("s4", false) else {
        return;
    };
    let port = 48040;
    // A long expired timeout: the old peer's EXIT must come from seeing the new UUID on
    // its endpoint, not from expiry.
    let t = Timers::new(0.1, 2.0, 20.0);
    let mut lab = Lab::new("s4", 4);
    let ha = lab.add_host();
    let hb = lab.add_host();
    let fixed = ["--mailbox-port", "49400"];
    let mut a = peer(&lab, &ha, port, "a", t, &[]);
    let mut old = peer(&lab, &hb, port, "b", t, &fixed);
    a.expect("ENTER b", js("enter", old.uuid));
    old.expect("ENTER a", js("enter", a.uuid));
    let old_uuid = old.uuid;

    let t0 = Instant::now();
    old.kill();
    let mut new = peer(&lab, &hb, port, "b", t, &fixed);
    let restarted = t0.elapsed();
    assert_ne!(new.uuid, old_uuid);
    assert_eq!(new.ready["endpoint"], old.ready["endpoint"], "same address");
    let seen = until(&mut a, t0, DEADLINE, "ENTER new b", js("enter", new.uuid));
    let ex = seen_at(&seen, "exit", old_uuid).expect("old UUID EXIT before the new ENTER");
    let en = seen_at(&seen, "enter", new.uuid).unwrap();
    figure!(
        "s4 restart (new process ready {} after kill): old EXIT {} new ENTER {} (expired {}s)",
        secs(restarted),
        secs(ex),
        secs(en),
        t.expired
    );
    assert!(ex < t.expired() / 2, "EXIT came from expiry: {ex:?}");
    new.expect("ENTER a", js("enter", a.uuid));
    assert_eq!(a.peers(), vec![new.uuid]);
    assert_eq!(new.peers(), vec![a.uuid]);
    a.whisper(new.uuid, &[b"hi".to_vec()]);
    new.expect("WHISPER a->new b", js("whisper", a.uuid));
    let new_b = new.uuid;
    for x in [&mut a, &mut new] {
        let rest = x.drain_for(Duration::from_secs(2));
        let churn = of_kind(&rest, &["enter", "exit"]);
        assert!(
            churn.is_empty(),
            "{}: ghost or duplicate {churn:?} (old b {}, new b {}); seen before: {seen:?}",
            x.label,
            uuid_hex(&old_uuid),
            uuid_hex(&new_b)
        );
    }
    assert_eq!(a.peers(), vec![new.uuid]);
}
