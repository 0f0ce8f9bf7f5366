//! Leader election with real nodes on loopback (beacon ports 47700-47709): three nodes
//! contest a group and a fourth only joins it; every one is told the lowest contester
//! leads; when it stops, the next one does.

mod common;

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
