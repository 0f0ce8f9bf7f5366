//! Zyre C scenario 4 (issue 15): the JOIN/LEAVE status byte wraps (over 256 changes) both
//! ways, and a node met after the wrap takes its status from HELLO. Zyre C asserts that
//! every JOIN and LEAVE carries the status it expects (its process aborts otherwise); our
//! node logs a mismatch (verbose), which the test looks for.

use crate::support::*;
use crate::zyre::*;

/// The kinds of `n` JOIN/LEAVE events of `from` in `group`, in the order they arrived.
fn changes(p: &mut Peer, from: Uuid, group: &str, n: usize) -> Vec<String> {
    let hex = uuid_hex(&from);
    (0..n)
        .map(|i| {
            let v = p.expect(&format!("JOIN/LEAVE {i} of {n}"), |v| {
                (v["type"] == "join" || v["type"] == "leave")
                    && v["peer"] == hex.as_str()
                    && v["group"] == group
            });
            v["type"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Lines of our node's verbose log that report a status it did not expect.
fn mismatches(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(text.contains("HELLO"), "the verbose log is empty: {text}");
    text.lines()
        .filter(|l| l.contains(": status ") && l.contains(", expected "))
        .map(str::to_string)
        .collect()
}

use std::path::Path;

#[test]
fn z4_join_leave_status_byte_wraps_both_ways_with_zyre_c() {
    let Some((_one, z)) = begin_zyre("z4") else {
        return;
    };
    let port = 48140;
    let t = Timers::new(0.1, 3.0, 10.0);
    let pairs = 300; // 600 changes: the byte wraps twice
    let mut lab = Lab::new("z4", 24);
    let hz = lab.add_host();
    let hr = lab.add_host();
    let log = TempFile(std::env::temp_dir().join(format!("zre-z4-{}.log", std::process::id())));
    let mut zy = zyre_peer(&lab, &hz, z, port, "zyre-c", t, &[]);
    let mut rs = logged_peer(&hr, port, "rusty", t, &log.0);
    let (zu, ru) = (zy.uuid, rs.uuid);
    zy.expect("ENTER rusty", js("enter", ru));
    rs.expect("ENTER zyre", js("enter", zu));

    // Ours to Zyre: 300 JOIN/LEAVE pairs. A status Zyre did not expect aborts it.
    let t0 = Instant::now();
    for _ in 0..pairs {
        rs.join("W");
        rs.leave("W");
    }
    let seen = changes(&mut zy, ru, "W", 2 * pairs);
    let ours = t0.elapsed();
    assert!(
        seen.chunks(2).all(|c| c == ["join", "leave"]),
        "Zyre saw {seen:?}"
    );
    assert!(alive(zy.pid()), "Zyre C died");
    assert_eq!(group_peers(&mut zy, "W"), Vec::<Uuid>::new());
    rs.join("W");
    zy.expect("JOIN after the wrap", jsg("join", ru, "W"));
    assert_eq!(group_peers(&mut zy, "W"), vec![ru]);

    // Zyre to ours: 300 pairs.
    let t1 = Instant::now();
    for _ in 0..pairs {
        zy.join("V");
        zy.leave("V");
    }
    let seen = changes(&mut rs, zu, "V", 2 * pairs);
    let theirs = t1.elapsed();
    assert!(
        seen.chunks(2).all(|c| c == ["join", "leave"]),
        "we saw {seen:?}"
    );
    zy.join("V");
    rs.expect("JOIN after the wrap", jsg("join", zu, "V"));
    figure!(
        "z4 {pairs} JOIN/LEAVE pairs zre->Zyre in {}, Zyre->zre in {}",
        secs(ours),
        secs(theirs)
    );

    // Nodes met after the wrap take the status from HELLO (ours 601 mod 256, Zyre's 601
    // mod 256) and check the next change against it.
    let hz2 = lab.add_host();
    let hr2 = lab.add_host();
    let log2 = TempFile(std::env::temp_dir().join(format!("zre-z4b-{}.log", std::process::id())));
    let mut zy2 = zyre_peer(&lab, &hz2, z, port, "zyre-late", t, &[]);
    let mut rs2 = logged_peer(&hr2, port, "rusty-late", t, &log2.0);
    zy2.expect("HELLO of rusty, in W", jsg("join", ru, "W"));
    rs2.expect("HELLO of zyre, in V", jsg("join", zu, "V"));
    rs.leave("W");
    zy2.expect("LEAVE after HELLO", jsg("leave", ru, "W"));
    zy.leave("V");
    rs2.expect("LEAVE after HELLO", jsg("leave", zu, "V"));
    assert!(alive(zy.pid()) && alive(zy2.pid()), "Zyre C died");
    assert_eq!(group_peers(&mut zy2, "W"), Vec::<Uuid>::new());

    // Our nodes never saw a status they did not expect, from either Zyre node.
    for l in [&log.0, &log2.0] {
        let bad = mismatches(l);
        assert!(bad.is_empty(), "status mismatches: {bad:#?}");
    }
    for x in [&mut zy, &mut rs, &mut zy2, &mut rs2] {
        let rest = x.drain_for(Duration::from_millis(200));
        let exits = of_kind(&rest, &["exit"]);
        assert!(exits.is_empty(), "{}: {exits:?}", x.label);
    }
}
