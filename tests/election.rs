//! Leader election with real nodes on loopback (beacon ports 47700-47719): three nodes
//! contest a group and a fourth only joins it; every one is told the lowest contester
//! leads; when it stops, the next one does. With a pyre member (pyre from `ZRE_PYTHON` or
//! `.venv/bin/python`; skipped without it unless `ZRE_REQUIRE_PYRE=1`): pyre drops each of
//! our nodes that sends it ELECT or LEADER once, and is left out of elections after.

mod common;

use std::time::Duration;

use common::*;
use zre::{Event, Uuid};

fn is_leader(group: &str, leader: Uuid) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::Leader { peer, group: g, .. } if *peer == leader && g == group)
}

#[test]
fn contesting_nodes_elect_the_lowest_uuid_and_again_when_it_stops() {
    let port = 47700;
    let uuid = |n: u128| Uuid::from_u128(0xE1EC_0000 + n);
    // Started highest first: the order they meet in does not decide.
    let nodes: Vec<_> = [3u128, 2, 1]
        .into_iter()
        .map(|n| {
            let node = builder(port, &format!("c{n}"))
                .uuid(uuid(n))
                .start()
                .unwrap();
            node.contest("G").unwrap();
            node.join("G").unwrap();
            node
        })
        .collect();
    let passive = builder(port, "p").uuid(uuid(0)).start().unwrap();
    passive.join("G").unwrap();
    let mut inboxes: Vec<_> = nodes
        .iter()
        .map(|n| inbox(n, n.name()))
        .chain([inbox(&passive, "p")])
        .collect();
    // uuid(0) does not contest: uuid(1) leads, and is told so too, with its own name.
    for inbox in inboxes.iter_mut() {
        let e = inbox.expect("LEADER c1", is_leader("G", uuid(1)));
        assert_eq!(e.name(), "c1");
    }

    // The leader stops (its port-0 beacon): the others elect uuid(2).
    nodes[2].stop();
    for i in [0, 1, 3] {
        inboxes[i].expect("LEADER c2", is_leader("G", uuid(2)));
    }
}

/// pyre 0.3.4 knows no ELECT or LEADER: it reads one as a lost message and drops the
/// sender, then meets it again at its next beacon. Each of our nodes is dropped once; from
/// then on pyre is left out, our nodes elect among themselves, and pyre keeps them.
#[test]
fn a_pyre_member_drops_each_of_us_once_and_is_left_out_after() {
    let test = "a_pyre_member_drops_each_of_us_once_and_is_left_out_after";
    let Some(py) = require_pyre(test) else {
        return;
    };
    let port = 47710;
    let uuid = |n: u128| Uuid::from_u128(0xE1EC_0000 + n);
    let mut p = pyre_peer(&py, port, "pyro", &["--group", "G"]);
    let nodes: Vec<_> = [2u128, 1]
        .into_iter()
        .map(|n| {
            builder(port, &format!("c{n}"))
                .uuid(uuid(n))
                .start()
                .unwrap()
        })
        .collect();
    let mut inboxes: Vec<_> = nodes.iter().map(|n| inbox(n, n.name())).collect();
    for i in inboxes.iter_mut() {
        i.expect("pyro in G", is_join(p.uuid, "G"));
    }
    // Each contests once pyre is there: each sends it ELECT, and is dropped.
    for n in &nodes {
        n.contest("G").unwrap();
        n.join("G").unwrap();
    }
    for i in inboxes.iter_mut() {
        i.expect("LEADER c1", is_leader("G", uuid(1)));
        // pyre's HELLO again: it forgot us. We report EXIT and ENTER too.
        i.expect("EXIT pyro", is_exit(p.uuid));
        i.expect("ENTER pyro", is_enter(p.uuid));
    }
    // pyre saw each of us leave once (its EXIT), and come back.
    for n in &nodes {
        p.expect("EXIT (dropped)", js("exit", n.uuid()));
        p.expect("ENTER again", js("enter", n.uuid()));
    }
    // And no more: the leader's wave for a newcomer sends pyre nothing from us.
    let late = builder(port, "c0").uuid(uuid(3)).start().unwrap();
    late.join("G").unwrap();
    inbox(&late, "c0").expect("LEADER c1", is_leader("G", uuid(1)));
    let after = p.drain_for(Duration::from_secs(2));
    let exits = |u: Uuid| {
        let hex = zre::uuid_hex(&u);
        after
            .iter()
            .filter(|v| v["type"] == "exit" && v["peer"] == hex.as_str())
            .count()
    };
    assert_eq!(exits(uuid(1)) + exits(uuid(2)), 0, "{after:?}");
    // The newcomer, if it passed pyre the wave, was dropped once.
    assert!(exits(uuid(3)) <= 1, "{after:?}");
    // pyre still takes our messages.
    nodes[0]
        .whisper(p.uuid, vec![b"still there".to_vec()])
        .unwrap();
    p.expect("WHISPER", js("whisper", nodes[0].uuid()));
    assert!(p.stop().success());
}
