//! Election lab scenario (issue 15): Zyre C's draft leader election against ours. Zyre
//! contesters wait, with no timeout, for an echo from every member of the group, so a
//! member that ignored ELECT would leave them hanging for ever: here our node is such a
//! member (passive), then a contester beside Zyre C ones, and all agree on the leader,
//! the contester with the lowest UUID.

use crate::support::*;
use crate::zyre::{begin_zyre, zyre_peer};

fn leader_of(p: &mut Peer, group: &'static str) -> Uuid {
    let v = p.expect("LEADER", move |v| {
        v["type"] == "leader" && v["group"] == group
    });
    uuid_of(&v, "peer")
}

/// The last leader `p` reports for `group`: Zyre holds an election at every member's
/// coming and reports LEADER after each, so the first may predate the last contester.
/// Waits for one, then takes what comes within `settle`.
fn last_leader(p: &mut Peer, group: &'static str, settle: Duration) -> Uuid {
    let mut last = leader_of(p, group);
    for v in p.drain_for(settle) {
        if v["type"] == "leader" && v["group"] == group {
            last = uuid_of(&v, "peer");
        }
    }
    last
}

#[test]
fn e1_zyre_c_contesters_elect_a_leader_with_zre_passive_and_contesting() {
    let Some((_one, z)) = begin_zyre("e1") else {
        return;
    };
    let t = Timers::new(0.5, 2.0, 6.0);
    let mut lab = Lab::new("e1", 47);
    let (h0, h1, h2) = (lab.add_host(), lab.add_host(), lab.add_host());

    // Two Zyre C contesters and our node, a member of C that does not contest.
    let port = 48290;
    let t0 = Instant::now();
    let mut ours = peer(&lab, &h2, port, "passive", t, &["--group", "C"]);
    let contest = ["--group", "C", "--contest", "C"];
    let mut z0 = zyre_peer(&lab, &h0, z, port, "z0", t, &contest);
    let mut z1 = zyre_peer(&lab, &h1, z, port, "z1", t, &contest);
    let settle = Duration::from_secs(2);
    let (l0, l1) = (
        last_leader(&mut z0, "C", settle),
        last_leader(&mut z1, "C", settle),
    );
    figure!(
        "e1 passive: both Zyre C contesters agreed on a leader (checked {} after the start)",
        secs(t0.elapsed())
    );
    assert_eq!(l0, l1, "Zyre's contesters disagree");
    assert_eq!(l0, z0.uuid.min(z1.uuid), "the lowest contester leads");
    let _ = &mut ours;

    // Our node contests D with two Zyre C contesters: one leader for all three.
    let port = 48291;
    let t1 = Instant::now();
    let contest = ["--group", "D", "--contest", "D"];
    let mut r = peer(&lab, &h2, port, "zre", t, &["--contest", "D"]);
    let mut y0 = zyre_peer(&lab, &h0, z, port, "y0", t, &contest);
    let mut y1 = zyre_peer(&lab, &h1, z, port, "y1", t, &contest);
    let want = r.uuid.min(y0.uuid).min(y1.uuid);
    for p in [&mut y0, &mut y1] {
        let last = last_leader(p, "D", Duration::from_secs(2));
        assert_eq!(last, want, "{}: Zyre's last leader", p.label);
    }
    let mut ours_last = None;
    for v in r.drain_for(Duration::from_millis(100)) {
        if v["type"] == "leader" && v["group"] == "D" {
            ours_last = Some(uuid_of(&v, "peer"));
        }
    }
    figure!(
        "e1 contesting: zre and 2 Zyre C agree on the leader within {}",
        secs(t1.elapsed())
    );
    assert_eq!(ours_last, Some(want), "our leader event");
}
