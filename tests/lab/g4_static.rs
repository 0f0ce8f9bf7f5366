//! Gossip lab scenario 4 (issue 13): nodes with no beacon and no hub, on two subnets, find
//! each other from `--peer` lists alone; one restarted (kill -9) with `--identity` keeps
//! its UUID and is met again.

use crate::netns::Router;
use crate::support::*;

#[test]
fn g4_no_beacon_nodes_meet_by_peer_lists_and_an_identity_survives_a_restart() {
    let Some(_one) = begin("g4", false) else {
        return;
    };
    let port = 48240;
    let t = Timers::new(0.5, 2.0, 6.0);
    let router = Router::new("g4");
    let mut left = Lab::new("g4l", 42);
    let mut right = Lab::new("g4r", 43);
    router.join(&mut left);
    router.join(&mut right);
    let hosts = [left.add_host(), right.add_host(), right.add_host()];
    let mailbox = 48241;
    // The same list for everyone (a node skips its own endpoint).
    let list: Vec<String> = hosts
        .iter()
        .flat_map(|h| ["--peer".to_string(), format!("tcp://{}:{mailbox}", h.ip)])
        .collect();
    let id_file = TempFile(std::env::temp_dir().join(format!("zre-g4-{}.id", std::process::id())));
    let _ = std::fs::remove_file(&id_file.0);
    let args = |with_id: bool| {
        let mut v: Vec<String> = vec![
            "--no-beacon".into(),
            "--mailbox-port".into(),
            mailbox.to_string(),
        ];
        v.extend(list.iter().cloned());
        if with_id {
            v.extend(["--identity".to_string(), id_file.0.display().to_string()]);
        }
        v
    };
    let start = |i: usize, name: &str, with_id: bool| {
        let lab = if i == 0 { &left } else { &right };
        let a = args(with_id);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        peer(lab, &hosts[i], port, name, t, &a)
    };
    let t0 = Instant::now();
    let mut all = vec![
        start(0, "a", false),
        start(1, "b", false),
        start(2, "c", true),
    ];
    converge(&mut all, DEADLINE);
    figure!(
        "g4 3 nodes, 2 subnets, --peer lists only: all met {} after the first start",
        secs(t0.elapsed())
    );

    let c_uuid = all[2].uuid;
    all[2].kill();
    let t1 = Instant::now();
    let c = start(2, "c", true);
    assert_eq!(c.uuid, c_uuid, "the identity file kept the UUID");
    all[2] = c;
    let a_uuid = all[0].uuid;
    // A still held the old C (no goodbye without beacons): its link reconnects to the
    // new process; the new C's HELLO re-creates it (EXIT then ENTER), and it talks.
    all[0].expect("ENTER c again", js("enter", c_uuid));
    figure!(
        "g4 c restarted with --identity: a sees it again {} after",
        secs(t1.elapsed())
    );
    all[0].whisper(c_uuid, &[b"welcome back".to_vec()]);
    all[2].expect("a's whisper", js("whisper", a_uuid));
    assert_eq!(sorted(all[0].peers()), sorted(vec![all[1].uuid, c_uuid]));
}
