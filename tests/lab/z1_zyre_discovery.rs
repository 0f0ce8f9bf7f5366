//! Zyre C scenario 1 (issue 15): discovery, headers and groups, both ways.

use crate::support::*;
use crate::zyre::*;

#[test]
fn z1_zyre_c_and_zre_discover_each_other_with_headers_and_groups() {
    let Some((_one, z)) = begin_zyre("z1") else {
        return;
    };
    let port = 48110;
    let t = Timers::new(0.1, 3.0, 10.0);
    let mut lab = Lab::new("z1", 21);
    let hz = lab.add_host();
    let hr = lab.add_host();
    let t0 = Instant::now();
    let mut zy = zyre_peer(
        &lab,
        &hz,
        z,
        port,
        "zyre-c",
        t,
        &[
            "--header",
            "X-Impl=zyre",
            "--header",
            "X-Unicode=ünï ✓",
            "--group",
            "START",
        ],
    );
    let mut rs = peer(
        &lab,
        &hr,
        port,
        "rusty",
        t,
        &[
            "--header",
            "X-Impl=zre",
            "--header",
            "X-Two=2",
            "--group",
            "START",
        ],
    );
    let (zu, ru) = (zy.uuid, rs.uuid);

    // Each sees the other with its name, headers and endpoint, and its groups from HELLO.
    let e = rs.expect("ENTER zyre", js("enter", zu));
    assert_eq!(e["name"], "zyre-c");
    assert_eq!(
        e["headers"],
        json!({"X-Impl": "zyre", "X-Unicode": "ünï ✓"})
    );
    let zep = e["endpoint"].as_str().unwrap().to_string();
    assert!(zep.starts_with(&format!("tcp://{}:", hz.ip)), "{zep}");
    let e = zy.expect("ENTER rusty", js("enter", ru));
    assert_eq!(e["name"], "rusty");
    assert_eq!(e["headers"], json!({"X-Impl": "zre", "X-Two": "2"}));
    assert_eq!(e["endpoint"], rs.ready["endpoint"]);
    figure!(
        "z1 Zyre C and zre see each other {} after the first start (Zyre at {zep})",
        secs(t0.elapsed())
    );
    rs.expect("JOIN zyre START (at start)", jsg("join", zu, "START"));
    zy.expect("JOIN rusty START (at start)", jsg("join", ru, "START"));
    assert_eq!(zy.peers(), vec![ru]);
    assert_eq!(rs.peers(), vec![zu]);

    // Groups both ways, by JOIN and LEAVE messages.
    zy.join("G");
    rs.expect("JOIN zyre G", jsg("join", zu, "G"));
    rs.join("G");
    zy.expect("JOIN rusty G", jsg("join", ru, "G"));
    assert_eq!(group_peers(&mut zy, "G"), vec![ru]);
    assert_eq!(group_peers(&mut zy, "START"), vec![ru]);
    rs.leave("G");
    zy.expect("LEAVE rusty G", jsg("leave", ru, "G"));
    zy.leave("START");
    rs.expect("LEAVE zyre START", jsg("leave", zu, "START"));
    assert_eq!(group_peers(&mut zy, "G"), Vec::<Uuid>::new());
    // A shout reaches members only: rusty left G, so Zyre's shout to G is not delivered,
    // and its shout to START (which rusty is still in) is.
    zy.shout("G", &[b"to nobody".to_vec()]);
    zy.shout("START", &[b"to rusty".to_vec()]);
    let e = rs.expect("SHOUT zyre START", jsg("shout", zu, "START"));
    assert_eq!(frames_of(&e), vec![b"to rusty".to_vec()]);
    for x in [&mut zy, &mut rs] {
        let rest = x.drain_for(Duration::from_millis(300));
        let odd = of_kind(&rest, &["shout", "exit", "enter"]);
        assert!(odd.is_empty(), "{}: {odd:?}", x.label);
    }
}
