//! Gossip lab scenario 3 (issue 13): a node behind NAT (nftables DNAT and masquerade in the
//! router, new connections into its subnet refused) is reachable through `--advertise`
//! and `--mailbox-port`; a node behind the same NAT without `--advertise` is not.

use crate::g1_subnets::hub_endpoint;
use crate::netns::Router;
use crate::support::*;

#[test]
fn g3_a_node_behind_nat_is_reached_at_its_advertised_endpoint() {
    let Some(_one) = begin("g3", true) else {
        return;
    };
    let port = 48230;
    let t = Timers::new(0.5, 2.0, 6.0);
    let router = Router::new("g3");
    let mut outside = Lab::new("g3o", 40);
    let mut inside = Lab::new("g3i", 41);
    router.join(&mut outside);
    router.join(&mut inside);
    let public = Router::address(&outside);
    let (out_leg, in_leg) = (Router::leg(&outside), Router::leg(&inside));
    let hi = inside.add_host();
    let hi2 = inside.add_host();
    // The router forwards 10.77.40.254:48250 to the inner node's mailbox 48251, hides the
    // inner subnet behind its own address, and refuses connections from outside that were
    // not forwarded so: as a home router or a cloud NAT does.
    router.nft(&format!(
        "table ip zrenat {{\n\
         \tchain pre {{ type nat hook prerouting priority dstnat; policy accept;\n\
         \t\tiifname \"{out_leg}\" ip daddr {public} tcp dport 48250 dnat to {}:48251\n\
         \t}}\n\
         \tchain post {{ type nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"{out_leg}\" ip saddr 10.77.41.0/24 masquerade\n\
         \t}}\n\
         \tchain forwarded {{ type filter hook forward priority 0; policy accept;\n\
         \t\tiifname \"{out_leg}\" oifname \"{in_leg}\" ct state new ct original ip daddr 10.77.41.0/24 counter drop\n\
         \t}}\n\
         }}\n",
        hi.ip
    ));
    let hub_host = outside.add_host();
    let hub_ep = hub_endpoint(&hub_host, 48231);
    let mut hub = peer(
        &outside,
        &hub_host,
        port,
        "hub",
        t,
        &["--gossip-bind", &hub_ep],
    );
    let ho = outside.add_host();
    let mut o = peer(&outside, &ho, port, "o", t, &["--gossip-connect", &hub_ep]);
    let advertised = format!("tcp://{public}:48250");
    let mut i = peer(
        &inside,
        &hi,
        port,
        "i",
        t,
        &[
            "--gossip-connect",
            &hub_ep,
            "--mailbox-port",
            "48251",
            "--advertise",
            &advertised,
        ],
    );
    let t0 = Instant::now();
    let enter = o.expect("ENTER i", js("enter", i.uuid));
    figure!(
        "g3 NAT: o sees i enter at {} after {}",
        enter["endpoint"],
        secs(t0.elapsed())
    );
    assert_eq!(enter["endpoint"], advertised.as_str());
    i.expect("ENTER o", js("enter", o.uuid));
    hub.expect("ENTER i", js("enter", i.uuid));
    o.whisper(i.uuid, &[b"in".to_vec()]);
    i.expect("whisper through the NAT", js("whisper", o.uuid));
    i.whisper(o.uuid, &[b"out".to_vec()]);
    o.expect("whisper out of the NAT", js("whisper", i.uuid));

    // The control: the same NAT, no --advertise. Its tuple names an address nobody
    // outside can reach, so it never enters there.
    let mut blind = peer(
        &inside,
        &hi2,
        port,
        "blind",
        t,
        &["--gossip-connect", &hub_ep],
    );
    let seen = o.drain_for(Duration::from_secs(3));
    assert!(
        seen.iter().all(|v| !js("enter", blind.uuid)(v)),
        "a node behind NAT without --advertise was reached"
    );
    // It sees i, on its own subnet, by beacon.
    blind.expect("ENTER i", js("enter", i.uuid));
}
