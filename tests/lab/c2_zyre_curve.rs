//! Lab scenario c2 (issue 14): CURVE against Zyre C (built with drafts, `zyre_set_zcert`),
//! both ways.
//!
//! Two Zyre C nodes, one with a certificate CZMQ wrote (`zyre_peer --make-cert`) and one
//! with a certificate we wrote (zre's `Cert::save`, as zre-keygen); two of ours, one with
//! an allow-list (a directory holding the public certificates of both Zyre nodes, as
//! CZMQ and we wrote them, and of the other node of ours) and one without. All four meet;
//! whispers and shouts go every way; each side sees the other's key in `X-PUBLICKEY`. A
//! plain node of ours on the same LAN meets none of them. Zyre's own `zpinger --curve`
//! (a random key, zauth allowing any) meets our node without an allow-list and
//! exchanges its Hellos; our node with the list never lets it in.
//!
//! Needs a CURVE build and Zyre C (see `zyre.rs`); SKIPPED otherwise, unless
//! ZRE_REQUIRE_CURVE / ZRE_REQUIRE_ZYRE.

use std::path::Path;

use crate::support::*;
use crate::zyre::*;
use zre::curve::{self, Cert};

#[test]
fn c2_curve_with_zyre_c_both_ways() {
    let Some((_one, z)) = begin_zyre("c2") else {
        return;
    };
    if !curve::available() {
        assert!(
            std::env::var_os("ZRE_REQUIRE_CURVE").is_none(),
            "c2: ZRE_REQUIRE_CURVE is set but this build has no CURVE"
        );
        println!("SKIPPED c2: this build's libzmq has no CURVE (--config .cargo/curve.toml)");
        return;
    }
    let port = 48320;
    let t = Timers::new(0.1, 3.0, 10.0);
    let dir = std::env::temp_dir().join(format!("zre-lab-c2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let allowed = dir.join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    // Zyre A's certificate, by CZMQ (again if its key starts with a zero byte, which
    // Zyre's beacon check drops: see zre::curve::generate).
    let cert_a = dir.join("zyre-a.cert");
    let key_a = loop {
        let _ = std::fs::remove_file(&cert_a);
        let _ = std::fs::remove_file(dir.join("zyre-a.cert_secret"));
        let out = std::process::Command::new(&z.peer)
            .arg("--make-cert")
            .arg(&cert_a)
            .output()
            .expect("zyre_peer --make-cert");
        assert!(out.status.success(), "{out:?}");
        let cert = Cert::load_secret(&cert_a).expect("read CZMQ's certificate");
        if cert.public.0[0] != 0 {
            break cert.public;
        }
    };
    // Zyre B's, and ours, by us.
    let ours = |name: &str| {
        let cert = curve::generate().unwrap();
        let path = dir.join(name);
        cert.save(&path, "lab").unwrap();
        (cert.public, path)
    };
    let (key_b, cert_b) = ours("zyre-b.cert");
    let (key_r1, cert_r1) = ours("r1.cert");
    let (key_r2, cert_r2) = ours("r2.cert");
    for (from, to) in [(&cert_a, "a"), (&cert_b, "b"), (&cert_r2, "r2")] {
        std::fs::copy(from, allowed.join(to)).unwrap();
    }
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let mut lab = Lab::new("c2", 62);
    let hosts: Vec<Host> = (0..6).map(|_| lab.add_host()).collect();
    let t0 = Instant::now();
    let mut za = zyre_peer(
        &lab,
        &hosts[0],
        z,
        port,
        "zyre-a",
        t,
        &["--curve", &p(&cert_a), "--group", "G"],
    );
    let mut zb = zyre_peer(
        &lab,
        &hosts[1],
        z,
        port,
        "zyre-b",
        t,
        &["--curve", &p(&cert_b), "--group", "G"],
    );
    let (r1_cert, allow) = (p(&cert_r1), p(&allowed));
    let r1_args = ["--curve", &r1_cert, "--allow", &allow, "--group", "G"];
    let mut r1 = peer(&lab, &hosts[2], port, "r1", t, &r1_args);
    let r2_cert = p(&cert_r2);
    let mut r2 = peer(
        &lab,
        &hosts[3],
        port,
        "r2",
        t,
        &["--curve", &r2_cert, "--group", "G", "--group", "GLOBAL"],
    );
    let mut plain = peer(&lab, &hosts[4], port, "plain", t, &["--group", "G"]);
    let (ua, ub, u1, u2) = (za.uuid, zb.uuid, r1.uuid, r2.uuid);
    let keys = [(ua, key_a), (ub, key_b), (u1, key_r1), (u2, key_r2)];
    for x in [&mut za, &mut zb, &mut r1, &mut r2] {
        let me = x.uuid;
        for (u, key) in keys.iter().filter(|(u, _)| *u != me) {
            let e = x.expect("ENTER", js("enter", *u));
            assert_eq!(
                e["headers"]["X-PUBLICKEY"],
                key.to_string().as_str(),
                "{}",
                x.label
            );
        }
    }
    figure!(
        "c2 two Zyre C and two zre CURVE nodes all see all {}",
        secs(t0.elapsed())
    );
    for x in [&mut za, &mut zb, &mut r1, &mut r2] {
        let me = x.uuid;
        for u in [ua, ub, u1, u2].into_iter().filter(|u| *u != me) {
            x.expect("JOIN G", jsg("join", u, "G"));
        }
    }

    // Whisper both ways, each Zyre node with each of ours.
    for (from, to) in [(0, 2), (2, 0), (1, 3), (3, 1), (0, 3), (2, 1)] {
        let text = format!("whisper {from} to {to}").into_bytes();
        let all = [&mut za, &mut zb, &mut r1, &mut r2];
        let to_uuid = all[to].uuid;
        let from_uuid = all[from].uuid;
        all[from].whisper(to_uuid, std::slice::from_ref(&text));
        let e = all[to].expect("WHISPER", js("whisper", from_uuid));
        assert_eq!(frames_of(&e), vec![text]);
    }
    // Shouts from a Zyre node and from ours reach everyone else in G.
    for from in [0usize, 2] {
        let text = format!("shout from {from}").into_bytes();
        let mut all = [&mut za, &mut zb, &mut r1, &mut r2];
        let from_uuid = all[from].uuid;
        all[from].shout("G", std::slice::from_ref(&text));
        for (i, x) in all.iter_mut().enumerate() {
            if i != from {
                let e = x.expect("SHOUT", js("shout", from_uuid));
                assert_eq!(frames_of(&e), vec![text.clone()], "{}", x.label);
            }
        }
    }

    // Zyre's zpinger --curve: a random key, any key accepted on its side.
    let mut zp = Zpinger::start_with(&lab, &hosts[5], z, port, 100, &["--curve"]);
    let line = zp.expect("start", "Create Zyre node, uuid=");
    let hex = line
        .split("uuid=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("zpinger's first line: {line}"))
        .to_string();
    let zpu: Uuid = hex.parse().unwrap();
    r2.expect("ENTER zpinger", js("enter", zpu));
    let hello = r2.expect("zpinger's Hello", js("whisper", zpu));
    assert_eq!(frames_of(&hello), vec![b"Hello".to_vec()]);
    zp.expect("r2 entered", "[r2] peer entered");
    r2.whisper(zpu, &[b"Hello".to_vec()]);
    zp.expect("r2's whisper", "received ping (WHISPER)");
    r2.expect("zpinger's shout to GLOBAL", js("shout", zpu));

    // Not let in by r1 (allow-list), not met by the plain node.
    for (x, unwanted) in [
        (&mut r1, vec![zpu]),
        (&mut plain, vec![ua, ub, u1, u2, zpu]),
    ] {
        let seen = x.drain_for(Duration::from_millis(500));
        assert!(
            !seen
                .iter()
                .any(|v| unwanted.iter().any(|u| js("enter", *u)(v))),
            "{}: {seen:?}",
            x.label
        );
    }
    for x in [&mut za, &mut zb] {
        let seen = x.drain_for(Duration::from_millis(200));
        assert!(
            !seen.iter().any(js("enter", plain.uuid)),
            "{}: {seen:?}",
            x.label
        );
    }
    let s = stats(&mut r1);
    assert!(stat(&s, "keys_refused") > 0, "{s}");
    drop(zp);
    let _ = std::fs::remove_dir_all(&dir);
}
