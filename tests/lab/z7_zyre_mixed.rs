//! Zyre C scenario 7 (issue 15): a mixed cluster of Zyre C, pyre and zre nodes, one a host,
//! all in one group: every node sees every other enter and join, and every shout reaches
//! every other member exactly once.

use crate::support::*;
use crate::zyre::*;

#[test]
fn z7_mixed_cluster_of_zyre_c_pyre_and_zre_every_shout_reaches_every_member() {
    let Some((_one, z)) = begin_zyre("z7") else {
        return;
    };
    let Some(py) = require_pyre("z7") else {
        return;
    };
    let port = 48170;
    let t = Timers::new(0.2, 3.0, 10.0);
    let mut lab = Lab::new("z7", 27);
    let hosts: Vec<Host> = (0..5).map(|_| lab.add_host()).collect();
    let g = ["--group", "G"];
    let t0 = Instant::now();
    let mut all = vec![
        zyre_peer(&lab, &hosts[0], z, port, "zyre-1", t, &g),
        zyre_peer(&lab, &hosts[1], z, port, "zyre-2", t, &g),
        pyre_host_peer(&lab, &hosts[2], &py, port, "pyre-1", t, &g),
        peer(&lab, &hosts[3], port, "zre-1", t, &g),
        peer(&lab, &hosts[4], port, "zre-2", t, &g),
    ];
    let uuids: Vec<Uuid> = all.iter().map(|p| p.uuid).collect();
    converge(&mut all, DEADLINE);
    for p in all.iter_mut() {
        for u in &uuids {
            if *u != p.uuid {
                p.expect("JOIN G", jsg("join", *u, "G"));
            }
        }
    }
    figure!(
        "z7 2 Zyre C + 1 pyre + 2 zre: all entered and joined G {} after the first start",
        secs(t0.elapsed())
    );

    let t1 = Instant::now();
    for p in all.iter_mut() {
        let text = format!("from {}", p.label);
        p.shout("G", &[text.into_bytes()]);
    }
    let labels: Vec<String> = all.iter().map(|p| p.label.clone()).collect();
    for (i, p) in all.iter_mut().enumerate() {
        for (j, u) in uuids.iter().enumerate() {
            if i == j {
                continue;
            }
            let e = p.expect(
                &format!("SHOUT {} -> {}", labels[j], labels[i]),
                jsg("shout", *u, "G"),
            );
            assert_eq!(
                frames_of(&e),
                vec![format!("from {}", labels[j]).into_bytes()]
            );
        }
    }
    let took = t1.elapsed();
    for p in all.iter_mut() {
        let rest = p.drain_for(Duration::from_millis(300));
        let odd = of_kind(&rest, &["shout", "exit", "enter"]);
        assert!(odd.is_empty(), "{}: duplicates or churn {odd:?}", p.label);
    }
    figure!(
        "z7 5 shouts, 20 deliveries, each exactly once, in {}",
        secs(took)
    );
}
