//! Zyre C scenario 8 (issue 15): a smoke check of each zyre_peer option the later suites
//! (gossip, elections, CURVE, IPv6) build on, so that they start from a double that works:
//! `--beacon-peer-port` (seen by our node), `--contest` (both Zyre nodes name the same
//! leader), `--gossip-bind`/`--gossip-connect`/`--endpoint`/`--advertise` (two Zyre nodes
//! meet without beacons, one by its advertised endpoint), `--curve` (two Zyre nodes meet
//! over CURVE; our node counts their v3 beacons and ignores them) and `--ipv6` (two Zyre
//! nodes meet over IPv6 link-local addresses).

use crate::support::*;
use crate::zyre::*;

/// Waits until `h`'s veth0 has an IPv6 link-local address past duplicate detection.
fn ipv6_ready(h: &Host) {
    let end = Instant::now() + DEADLINE;
    loop {
        let out = netns::run(&[
            "ip",
            "-n",
            &h.ns,
            "-6",
            "addr",
            "show",
            "dev",
            netns::IFACE,
            "scope",
            "link",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("inet6 fe80") && !text.contains("tentative") {
            return;
        }
        assert!(
            Instant::now() < end,
            "{}: no IPv6 link-local address: {text}",
            h.ns
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `public-key` of a CZMQ certificate file.
fn public_key(cert: &Path) -> String {
    let text = std::fs::read_to_string(cert).expect("read certificate");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("public-key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no public-key in {text}"))
        .to_string()
}

use std::path::Path;

#[test]
fn z8_zyre_peer_options_for_the_later_suites_work() {
    let Some((_one, z)) = begin_zyre("z8") else {
        return;
    };
    let t = Timers::new(0.1, 3.0, 10.0);
    let mut lab = Lab::new("z8", 28);
    let (h0, h1, h2) = (lab.add_host(), lab.add_host(), lab.add_host());
    let (a, b) = (h0.ip.to_string(), h1.ip.to_string());

    // --beacon-peer-port: Zyre's mailbox on a fixed port, as our node sees it.
    let mut fixed = zyre_peer(
        &lab,
        &h0,
        z,
        48180,
        "fixed",
        t,
        &["--beacon-peer-port", "48181"],
    );
    let mut rs = peer(&lab, &h2, 48180, "rusty", t, &[]);
    let e = rs.expect("ENTER fixed", js("enter", fixed.uuid));
    assert_eq!(e["endpoint"], format!("tcp://{a}:48181"));
    fixed.expect("ENTER rusty", js("enter", rs.uuid));

    // --contest: two Zyre nodes contest C and agree on its leader.
    let contest = ["--group", "C", "--contest", "C"];
    let mut c0 = zyre_peer(&lab, &h0, z, 48182, "contest-0", t, &contest);
    let mut c1 = zyre_peer(&lab, &h1, z, 48182, "contest-1", t, &contest);
    let first: Vec<Value> = [&mut c0, &mut c1]
        .into_iter()
        .map(|c| c.expect("LEADER C", |v| v["type"] == "leader" && v["group"] == "C"))
        .collect();

    // Gossip: no beacons; one node binds the gossip hub, the other connects to it, binds
    // its mailbox on every address and advertises one.
    let hub = format!("tcp://{a}:48185");
    let mut g0 = zyre_peer(
        &lab,
        &h0,
        z,
        48184,
        "gossip-0",
        t,
        &[
            "--gossip-bind",
            &hub,
            "--endpoint",
            &format!("tcp://{a}:48186"),
        ],
    );
    let advertised = format!("tcp://{b}:48187");
    let mut g1 = zyre_peer(
        &lab,
        &h1,
        z,
        48184,
        "gossip-1",
        t,
        &[
            "--gossip-connect",
            &hub,
            "--endpoint",
            "tcp://*:48187",
            "--advertise",
            &advertised,
        ],
    );
    let e = g0.expect("ENTER gossip-1", js("enter", g1.uuid));
    assert_eq!(e["endpoint"], advertised.as_str());
    let e = g1.expect("ENTER gossip-0", js("enter", g0.uuid));
    assert_eq!(e["endpoint"], format!("tcp://{a}:48186"));

    // CURVE: certificates made by zyre_peer itself; the nodes announce their keys in
    // v3 beacons and their X-PUBLICKEY header, and talk over CURVE.
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let certs: Vec<PathBuf> = (0..2)
        .map(|i| dir.join(format!("zre-z8-{pid}-{i}.cert")))
        .collect();
    let _cleanup: Vec<TempFile> = certs
        .iter()
        .flat_map(|c| {
            [
                TempFile(c.clone()),
                TempFile(PathBuf::from(format!("{}_secret", c.display()))),
            ]
        })
        .collect();
    for c in &certs {
        let ok = std::process::Command::new(&z.peer)
            .arg("--make-cert")
            .arg(c)
            .status()
            .expect("zyre_peer --make-cert");
        assert!(ok.success());
    }
    let cert0 = certs[0].to_string_lossy().into_owned();
    let cert1 = certs[1].to_string_lossy().into_owned();
    let mut k0 = zyre_peer(&lab, &h0, z, 48183, "curve-0", t, &["--curve", &cert0]);
    let mut k1 = zyre_peer(&lab, &h1, z, 48183, "curve-1", t, &["--curve", &cert1]);
    let mut plain = peer(&lab, &h2, 48183, "plain", t, &[]);
    let e = k0.expect("ENTER curve-1", js("enter", k1.uuid));
    assert_eq!(e["headers"]["X-PUBLICKEY"], public_key(&certs[1]).as_str());
    let e = k1.expect("ENTER curve-0", js("enter", k0.uuid));
    assert_eq!(e["headers"]["X-PUBLICKEY"], public_key(&certs[0]).as_str());
    k0.whisper(k1.uuid, &[b"over CURVE".to_vec()]);
    let e = k1.expect("WHISPER over CURVE", js("whisper", k0.uuid));
    assert_eq!(frames_of(&e), vec![b"over CURVE".to_vec()]);
    let base = stats(&mut plain);
    let s = stats_until(&mut plain, &base, &[("beacons_curve", 2)]);
    assert!(stat(&s, "beacons_curve") >= 2, "{s}");

    // IPv6: two Zyre nodes beacon and connect over link-local addresses.
    ipv6_ready(&h0);
    ipv6_ready(&h1);
    let mut v0 = zyre_peer(&lab, &h0, z, 48188, "ipv6-0", t, &["--ipv6"]);
    let mut v1 = zyre_peer(&lab, &h1, z, 48188, "ipv6-1", t, &["--ipv6"]);
    let e = v0.expect("ENTER ipv6-1", js("enter", v1.uuid));
    let ep = e["endpoint"].as_str().unwrap().to_string();
    assert!(ep.starts_with("tcp://fe80:"), "{ep}");
    v1.expect("ENTER ipv6-0", js("enter", v0.uuid));
    figure!("z8 IPv6: Zyre endpoint {ep}");

    // Elections restart as peers come and go: by now each has had its time, and the
    // last word of each node counts.
    let last: Vec<Value> = [&mut c0, &mut c1]
        .into_iter()
        .zip(first)
        .map(|(c, first)| {
            let later = c.drain_for(Duration::from_millis(100));
            later
                .into_iter()
                .rfind(|v| v["type"] == "leader")
                .unwrap_or(first)
        })
        .collect();
    figure!("z8 contest: leaders {} / {}", last[0], last[1]);
    assert_eq!(last[0]["peer"], last[1]["peer"], "one leader");
    let leader = uuid_of(&last[0], "peer");
    assert!([c0.uuid, c1.uuid].contains(&leader), "{}", last[0]);
    // Our node never heard the CURVE pair as peers.
    let seen = plain.drain_for(Duration::from_millis(100));
    assert!(of_kind(&seen, &["enter"]).is_empty(), "{seen:?}");
}
