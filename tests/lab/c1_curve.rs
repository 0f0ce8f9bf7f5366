//! Lab scenario c1 (issue 14): CURVE between hosts.
//!
//! Three CURVE nodes with an allow-list (a directory of their public certificates) talk:
//! whisper, shout, groups. A capture on the bridge (tcpdump on `br0`, every host's
//! traffic) holds none of the secret messages, yet does hold a plain pair's message (so
//! it would have seen plaintext) and the CURVE nodes' v3 beacons. A plain node and a
//! node with an unlisted key, on the same LAN, never enter anywhere. Key rotation: one
//! node restarts with the same UUID and a new key whose certificate replaced its old
//! one in the allow-list; the others, still running, see it leave and come back.
//!
//! Needs a CURVE build (`--config .cargo/curve.toml`) and tcpdump; without them it prints
//! SKIPPED, unless ZRE_REQUIRE_CURVE (no CURVE) or ZRE_REQUIRE_LAB (no tcpdump) is set.

use std::path::Path;
use std::process::Stdio;

use crate::support::*;
use zre::curve::{self, Cert};

fn requirements(tag: &str) -> bool {
    if !curve::available() {
        assert!(
            std::env::var_os("ZRE_REQUIRE_CURVE").is_none(),
            "{tag}: ZRE_REQUIRE_CURVE is set but this build has no CURVE"
        );
        println!("SKIPPED {tag}: this build's libzmq has no CURVE (--config .cargo/curve.toml)");
        return false;
    }
    let tcpdump = std::process::Command::new("tcpdump")
        .arg("--version")
        .output();
    if !tcpdump.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("ZRE_REQUIRE_LAB").is_none(),
            "{tag}: ZRE_REQUIRE_LAB is set but tcpdump is not installed"
        );
        println!("SKIPPED {tag}: tcpdump is not installed");
        return false;
    }
    true
}

/// A new key pair as `dir/name` and `dir/name_secret`.
fn keypair(dir: &Path, name: &str) -> (Cert, PathBuf) {
    let cert = curve::generate().unwrap();
    let path = dir.join(name);
    cert.save(&path, "lab").unwrap();
    (cert, path)
}

/// The capture: killed (by PID) and reaped when dropped, also when the test fails.
struct Capture(std::process::Child);

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn c1_curve_hosts_talk_encrypted_and_keep_strangers_out() {
    let Some(_one) = begin("c1", false) else {
        return;
    };
    if !requirements("c1") {
        return;
    }
    let port = 48300;
    let t = Timers::new(0.2, 1.0, 4.0);
    let dir = std::env::temp_dir().join(format!("zre-lab-c1-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let allowed = dir.join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    let mut keys = Vec::new();
    for n in ["a", "b", "c", "stranger", "a2"] {
        keys.push(keypair(&dir, n));
    }
    for i in 0..3 {
        std::fs::copy(&keys[i].1, allowed.join(["a", "b", "c"][i])).unwrap();
    }
    let mut lab = Lab::new("c1", 60);
    let hosts: Vec<Host> = (0..6).map(|_| lab.add_host()).collect();

    // The capture, on the bridge, from before the first beacon.
    let pcap = dir.join("bridge.pcap");
    let dump = lab
        .bridge_command("tcpdump")
        .args(["-i", "br0", "-n", "-U", "-s", "0", "-w"])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run tcpdump");
    let mut dump = Capture(dump);
    let t0 = Instant::now();
    while !pcap.exists() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));

    let allow = allowed.to_str().unwrap().to_string();
    let identity = dir.join("a.uuid");
    let curve_args = |i: usize| {
        vec![
            "--curve".to_string(),
            keys[i].1.to_str().unwrap().to_string(),
            "--allow".to_string(),
            allow.clone(),
        ]
    };
    let spawn = |h: &Host, name: &str, extra: Vec<String>| {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        peer(&lab, h, port, name, t, &extra)
    };
    let mut a_args = curve_args(0);
    a_args.extend(["--identity".into(), identity.to_str().unwrap().into()]);
    let t_start = Instant::now();
    let mut a = spawn(&hosts[0], "a", a_args);
    let mut b = spawn(&hosts[1], "b", curve_args(1));
    let mut c = spawn(&hosts[2], "c", curve_args(2));
    let mut plain = spawn(&hosts[3], "plain", vec![]);
    let mut plain2 = spawn(&hosts[5], "plain2", vec![]);
    // The stranger accepts anyone; nobody lists its key.
    let stranger_cert = keys[3].1.to_str().unwrap().to_string();
    let mut stranger = spawn(&hosts[4], "stranger", vec!["--curve".into(), stranger_cert]);
    let (ua, ub, uc) = (a.uuid, b.uuid, c.uuid);
    for (x, others) in [(&mut a, [ub, uc]), (&mut b, [ua, uc]), (&mut c, [ua, ub])] {
        for o in others {
            x.expect("ENTER", js("enter", o));
        }
    }
    figure!(
        "c1 three CURVE hosts (of six) all see all {} after the first start",
        secs(t_start.elapsed())
    );
    plain.expect("ENTER plain2", js("enter", plain2.uuid));

    // Whisper, shout and groups, with secrets the capture must not hold.
    let mark = uuid_hex(&Uuid::new_v4());
    let whisper = format!("WHISPER-SECRET-{mark}").into_bytes();
    let shout = format!("SHOUT-SECRET-{mark}").into_bytes();
    let group = format!("GROUP-{mark}");
    for x in [&mut b, &mut c] {
        x.join(&group);
    }
    a.expect("JOIN b", jsg("join", ub, &group));
    a.expect("JOIN c", jsg("join", uc, &group));
    a.whisper(ub, std::slice::from_ref(&whisper));
    assert_eq!(
        frames_of(&b.expect("WHISPER a->b", js("whisper", ua))),
        vec![whisper.clone()]
    );
    a.shout(&group, std::slice::from_ref(&shout));
    for x in [&mut b, &mut c] {
        assert_eq!(
            frames_of(&x.expect("SHOUT a->G", js("shout", ua))),
            vec![shout.clone()]
        );
    }
    c.whisper(ua, std::slice::from_ref(&whisper));
    a.expect("WHISPER c->a", js("whisper", uc));
    // The control: a plain pair's message is in the clear on the same bridge.
    let clear = format!("PLAIN-VISIBLE-{mark}").into_bytes();
    plain.whisper(plain2.uuid, std::slice::from_ref(&clear));
    plain2.expect("WHISPER plain->plain2", js("whisper", plain.uuid));

    // Nobody met the plain nodes or the stranger, nor they anyone of the three.
    let outsiders = [plain.uuid, plain2.uuid, stranger.uuid];
    for x in [&mut a, &mut b, &mut c] {
        let seen = x.drain_for(Duration::from_millis(500));
        assert!(
            !seen
                .iter()
                .any(|v| outsiders.iter().any(|u| js("enter", *u)(v))),
            "{}: {seen:?}",
            x.label
        );
    }
    for x in [&mut plain, &mut stranger] {
        let seen = x.drain_for(Duration::from_millis(200));
        assert!(
            !seen
                .iter()
                .any(|v| [ua, ub, uc].iter().any(|u| js("enter", *u)(v))),
            "{}: {seen:?}",
            x.label
        );
    }
    assert!(stranger.peers().is_empty());
    assert_eq!(sorted(a.peers()), sorted(vec![ub, uc]));
    let s = stats(&mut a);
    assert!(stat(&s, "keys_refused") > 0, "{s}");
    assert!(stat(&s, "beacons_plain") > 0, "{s}");
    figure!(
        "c1 a refused {} stranger beacons/HELLOs and ignored {} plain beacons",
        stat(&s, "keys_refused"),
        stat(&s, "beacons_plain")
    );

    // The capture.
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &dump.0.id().to_string()])
        .status();
    let _ = dump.0.wait();
    let bytes = std::fs::read(&pcap).unwrap();
    assert!(
        contains(&bytes, &clear),
        "the control message is not in the capture"
    );
    let mut beacon = b"ZRE\x03".to_vec();
    beacon.extend_from_slice(ua.as_bytes());
    assert!(
        contains(&bytes, &beacon),
        "a's v3 beacon is not in the capture"
    );
    assert!(
        !contains(&bytes, &whisper),
        "the whisper is in the capture in plaintext"
    );
    assert!(
        !contains(&bytes, &shout),
        "the shout is in the capture in plaintext"
    );
    assert!(
        !contains(&bytes, group.as_bytes()),
        "the group name is in the capture"
    );
    figure!(
        "c1 capture: {} bytes; no secret in it, the plain pair's message is",
        bytes.len()
    );

    // Rotation: a gets a new key, whose certificate replaces its old one in the list;
    // it restarts with the same UUID. b and c keep running.
    std::fs::copy(&keys[4].1, allowed.join("a2")).unwrap();
    std::fs::remove_file(allowed.join("a")).unwrap();
    a.stop();
    for x in [&mut b, &mut c] {
        x.expect("EXIT a", js("exit", ua));
    }
    let t_rot = Instant::now();
    let mut a2_args = curve_args(4);
    a2_args.extend(["--identity".into(), identity.to_str().unwrap().into()]);
    let mut a2 = spawn(&hosts[0], "a2", a2_args);
    assert_eq!(a2.uuid, ua);
    let new_key = keys[4].0.public.to_string();
    for x in [&mut b, &mut c] {
        let e = x.expect("ENTER a with its new key", js("enter", ua));
        assert_eq!(e["headers"]["X-PUBLICKEY"], new_key.as_str());
    }
    figure!(
        "c1 rotated key: a back at b and c {}",
        secs(t_rot.elapsed())
    );
    a2.whisper(ub, &[b"after rotation".to_vec()]);
    b.expect("WHISPER a2->b", js("whisper", ua));
    // The old key is off the list: a process still holding it is refused.
    let mut old = spawn(&hosts[3], "old-a", curve_args(0));
    let seen = old.drain_for(Duration::from_secs(1));
    assert!(
        !seen
            .iter()
            .any(|v| [ub, uc].iter().any(|u| js("enter", *u)(v))),
        "{seen:?}"
    );
    drop(old);
    let _ = std::fs::remove_dir_all(&dir);
}
