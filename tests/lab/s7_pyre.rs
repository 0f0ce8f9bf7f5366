//! Lab scenario 7 (issue 4): pyre.

use crate::support::*;

#[test]
fn s7_unmodified_pyre_host_interoperates() {
    let Some(_one) = begin("s7", false) else {
        return;
    };
    let Some(py) = require_pyre("s7") else {
        return;
    };
    let port = 48070;
    let t = Timers::new(0.2, 1.0, 4.0);
    let mut lab = Lab::new("s7", 7);
    let hp = lab.add_host();
    let h1 = lab.add_host();
    let h2 = lab.add_host();
    // Stock pyre: no --loopback, so it picks its interface itself (veth0, the only one
    // besides lo in its namespace); only its timers are shortened. `--allow-host-net`:
    // pyre_peer.py's own namespace check reads /proc/1/ns/net, which is not readable from
    // inside a namespace on some machines (EACCES); `ip netns exec` guarantees the
    // namespace here, and the endpoint pyre chose is checked to be on the lab network.
    let script = interop_script("pyre_peer.py");
    let mut cmd = lab.command(&hp, &py);
    cmd.arg("-u")
        .arg(script)
        .args([
            "--port",
            &port.to_string(),
            "--name",
            "pyre",
            "--group",
            "G",
        ])
        .arg("--allow-host-net")
        .args(["--interval", "0.2", "--evasive", "2", "--expired", "4"]);
    let t0 = Instant::now();
    let mut py_peer = Peer::spawn("pyre", cmd);
    let endpoint = py_peer.ready["endpoint"].as_str().unwrap().to_string();
    assert!(
        endpoint.starts_with(&format!("tcp://{}:", hp.ip)),
        "pyre chose {endpoint}"
    );
    let mut r1 = peer(&lab, &h1, port, "r1", t, &["--group", "G"]);
    let mut r2 = peer(&lab, &h2, port, "r2", t, &[]);
    let pu = py_peer.uuid;
    let (u1, u2) = (r1.uuid, r2.uuid);
    for (x, others) in [
        (&mut py_peer, [u1, u2]),
        (&mut r1, [pu, u2]),
        (&mut r2, [pu, u1]),
    ] {
        for o in others {
            x.expect("ENTER", js("enter", o));
        }
    }
    figure!(
        "s7 pyre + 2 Rust hosts all see all {} after the first start",
        secs(t0.elapsed())
    );
    r1.expect("JOIN pyre G", jsg("join", pu, "G"));
    py_peer.expect("JOIN r1 G", jsg("join", u1, "G"));

    let content = tricky_content_small();
    py_peer.whisper(u2, &content);
    assert_eq!(
        frames_of(&r2.expect("WHISPER pyre->r2", js("whisper", pu))),
        content
    );
    r2.whisper(pu, &content);
    assert_eq!(
        frames_of(&py_peer.expect("WHISPER r2->pyre", js("whisper", u2))),
        content
    );
    py_peer.shout("G", &[b"from pyre".to_vec()]);
    let e = r1.expect("SHOUT pyre->G", js("shout", pu));
    assert_eq!(frames_of(&e), vec![b"from pyre".to_vec()]);
    r1.shout("G", &[b"from r1".to_vec()]);
    let e = py_peer.expect("SHOUT r1->G", js("shout", u1));
    assert_eq!(frames_of(&e), vec![b"from r1".to_vec()]);

    // kill -9 of a Rust host: pyre (expired 4 s, reap 1 s) removes it.
    let t1 = Instant::now();
    r2.kill();
    py_peer.expect_within(
        Duration::from_secs(4) + REAP + DEADLINE,
        "pyre EXIT r2",
        js("exit", u2),
    );
    let pyre_exit = t1.elapsed();
    figure!(
        "s7 kill -9 r2: pyre EXIT after {} (pyre expired 4s)",
        secs(pyre_exit)
    );
    assert!(
        pyre_exit <= Duration::from_secs(4) + REAP * 2,
        "pyre EXIT after {pyre_exit:?}"
    );
    // pyre stops gracefully: its port-0 beacon is an EXIT at once.
    let t2 = Instant::now();
    assert!(py_peer.stop().success());
    r1.expect_within(Duration::from_secs(3), "EXIT pyre at once", js("exit", pu));
    figure!(
        "s7 pyre graceful stop: r1 EXIT after {}",
        secs(t2.elapsed())
    );
    let rest = r1.drain_for(Duration::from_millis(300));
    assert!(
        of_kind(&rest, &["exit"])
            .iter()
            .all(|v| v["peer"] == uuid_hex(&u2).as_str()),
        "{rest:?}"
    );
}
