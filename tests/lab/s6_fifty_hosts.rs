//! Lab scenario 6 (issue 4): 50 hosts.

use crate::support::*;

#[test]
fn s6_fifty_hosts_each_see_all_49_others() {
    let Some(_one) = begin("s6", false) else {
        return;
    };
    let port = 48060;
    let n: usize = std::env::var("ZRE_LAB_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let t = Timers::new(0.5, 3.0, 15.0);
    // Declared before the lab: restored after the hosts are gone.
    let room = NeighbourRoom::at_least((n * n) as u32 + 512);
    if !room.describe().is_empty() {
        figure!(
            "s6 kernel ARP table raised for the test: {}",
            room.describe()
        );
    }
    let setup = Instant::now();
    let mut lab = Lab::new("s6", 6);
    let hosts: Vec<Host> = (0..n).map(|_| lab.add_host()).collect();
    figure!(
        "s6 {n} namespaces + veths set up in {}",
        secs(setup.elapsed())
    );
    let t0 = Instant::now();
    let mut p: Vec<Peer> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| peer(&lab, h, port, &format!("n{i}"), t, &[]))
        .collect();
    let started = t0.elapsed();
    let uuids: Vec<Uuid> = p.iter().map(|x| x.uuid).collect();
    let mut seen: Vec<BTreeSet<Uuid>> = vec![BTreeSet::new(); n];
    let deadline = Duration::from_secs(120);
    let mut converged = None;
    while t0.elapsed() < deadline {
        for (i, x) in p.iter_mut().enumerate() {
            for v in x.drain_for(Duration::ZERO) {
                match v["type"].as_str() {
                    Some("enter") => {
                        seen[i].insert(uuid_of(&v, "peer"));
                    }
                    Some("exit") => panic!("n{i}: EXIT during convergence: {v}"),
                    _ => {}
                }
            }
        }
        if seen.iter().all(|s| s.len() == n - 1) {
            converged = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let least = seen.iter().map(BTreeSet::len).min().unwrap();
    let converged = converged.unwrap_or_else(|| {
        let counts: Vec<usize> = seen.iter().map(BTreeSet::len).collect();
        panic!(
            "not converged within {deadline:?}: the worst host sees {least} of {}; per host: {counts:?}",
            n - 1
        )
    });
    figure!(
        "s6 {n} hosts: all {} ENTERs after {} from the first spawn ({} to start all {n} processes, so {} after the last)",
        n * (n - 1),
        secs(converged),
        secs(started),
        secs(converged.saturating_sub(started))
    );
    let all = sorted(uuids.clone());
    for (i, x) in p.iter_mut().enumerate() {
        let others: Vec<Uuid> = all.iter().copied().filter(|u| *u != uuids[i]).collect();
        assert_eq!(x.peers(), others, "n{i}");
    }
    // Stable: a moment later nobody left.
    std::thread::sleep(Duration::from_secs(1));
    for (i, x) in p.iter_mut().enumerate() {
        let rest = x.drain_for(Duration::ZERO);
        let churn = of_kind(&rest, &["exit", "enter"]);
        assert!(churn.is_empty(), "n{i}: {churn:?}");
    }
}
