//! Lab scenario 3 (issue 4): partition and heal.

use crate::support::*;

#[test]
fn s3_partition_exits_both_sides_and_heal_reenters_once() {
    let Some(_one) = begin("s3", false) else {
        return;
    };
    let port = 48030;
    let t = Timers::new(0.1, 0.5, 2.0);
    let mut lab = Lab::new("s3", 3);
    let hosts: Vec<Host> = (0..3).map(|_| lab.add_host()).collect();
    let mut p: Vec<Peer> = ["a", "b", "c"]
        .iter()
        .zip(&hosts)
        .map(|(n, h)| peer(&lab, h, port, n, t, &["--group", "G"]))
        .collect();
    converge(&mut p, DEADLINE);
    let (a, b, c) = (p[0].uuid, p[1].uuid, p[2].uuid);

    // Cut c off.
    let t0 = Instant::now();
    lab.link_down(&hosts[2]);
    let gone_from = |i: usize| if i < 2 { vec![c] } else { vec![a, b] };
    let mut refs: Vec<&mut Peer> = p.iter_mut().collect();
    let all = watch(
        &mut refs,
        t0,
        t.expired() + DEADLINE,
        "EXIT across the partition",
        |i, s| {
            gone_from(i)
                .iter()
                .all(|u| seen_at(s, "exit", *u).is_some())
        },
    );
    for (i, gone) in [(0, c), (1, c), (2, a), (2, b)] {
        let seen = all[i].as_slice();
        let ex = seen_at(seen, "exit", gone).unwrap();
        let ev = seen_at(seen, "evasive", gone);
        figure!(
            "s3 partition: {} sees {} EVASIVE {} EXIT {} (expired {}s)",
            p[i].label,
            ["a", "b", "c"][[a, b, c].iter().position(|u| *u == gone).unwrap()],
            ev.map_or("-".into(), secs),
            secs(ex),
            t.expired
        );
        assert!(ex <= t.expired() + REAP, "EXIT after {ex:?}");
        assert!(ev.is_some(), "EVASIVE before EXIT: {seen:?}");
    }
    // a and b stay together.
    assert_eq!(p[0].peers(), vec![b]);
    assert_eq!(p[1].peers(), vec![a]);
    assert_eq!(p[2].peers(), Vec::<Uuid>::new());
    for (i, evs) in all.iter().enumerate() {
        let mut evs: Vec<Value> = evs.iter().map(|(_, v)| v.clone()).collect();
        evs.extend(p[i].drain_for(Duration::from_millis(300)));
        let unexpected_exit = |v: &Value| {
            let peer = uuid_of(v, "peer");
            v["type"] == "exit" && !gone_from(i).contains(&peer)
        };
        let bad: Vec<&Value> = evs
            .iter()
            .filter(|v| v["type"] == "enter" || unexpected_exit(v))
            .collect();
        assert!(bad.is_empty(), "host {i} during the partition: {bad:?}");
    }

    // Heal: everyone enters again, exactly once.
    let t1 = Instant::now();
    lab.link_up(&hosts[2]);
    let mut last = Duration::ZERO;
    for (i, back) in [(0, c), (1, c), (2, a), (2, b)] {
        p[i].expect("ENTER after heal", js("enter", back));
        last = last.max(t1.elapsed());
    }
    figure!("s3 heal: all ENTER again within {}", secs(last));
    p[0].expect("JOIN c G after heal", jsg("join", c, "G"));
    p[2].expect("JOIN a G after heal", jsg("join", a, "G"));
    // Messages flow both ways.
    p[2].whisper(a, &[b"c back".to_vec()]);
    let e = p[0].expect("WHISPER c->a", js("whisper", c));
    assert_eq!(frames_of(&e), vec![b"c back".to_vec()]);
    p[0].shout("G", &[b"welcome".to_vec()]);
    p[2].expect("SHOUT a->G at c", js("shout", a));
    p[1].expect("SHOUT a->G at b", js("shout", a));
    // No duplicate or ghost peers: no further ENTER or EXIT, exact peer lists.
    for x in p.iter_mut() {
        let rest = x.drain_for(Duration::from_secs(2));
        let churn = of_kind(&rest, &["enter", "exit"]);
        assert!(churn.is_empty(), "{}: after heal {churn:?}", x.label);
    }
    let all = sorted(vec![a, b, c]);
    for x in p.iter_mut() {
        let others: Vec<Uuid> = all.iter().copied().filter(|u| *u != x.uuid).collect();
        assert_eq!(x.peers(), others, "{}", x.label);
    }
}
