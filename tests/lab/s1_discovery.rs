//! Lab scenario 1 (issue 4): three hosts.

use crate::support::*;

#[test]
fn s1_three_hosts_discover_join_whisper_and_shout() {
    let Some(_one) = begin("s1", false) else {
        return;
    };
    let port = 48010;
    let t = Timers::new(0.1, 1.0, 3.0);
    let mut lab = Lab::new("s1", 1);
    let hosts: Vec<Host> = (0..3).map(|_| lab.add_host()).collect();
    let t0 = Instant::now();
    let mut p: Vec<Peer> = ["a", "b", "c"]
        .iter()
        .zip(&hosts)
        .map(|(n, h)| peer(&lab, h, port, n, t, &["--header", &format!("X-Host={n}")]))
        .collect();

    // Every host sees the two others, with the endpoint on that host's address.
    for i in 0..3 {
        for j in 0..3 {
            if i == j {
                continue;
            }
            let (uj, ep, name) = (
                p[j].uuid,
                p[j].ready["endpoint"].clone(),
                p[j].label.clone(),
            );
            let e = p[i].expect("ENTER", js("enter", uj));
            assert_eq!(e["endpoint"], ep);
            assert!(ep
                .as_str()
                .unwrap()
                .starts_with(&format!("tcp://{}:", hosts[j].ip)));
            assert_eq!(e["name"], name.as_str());
            assert_eq!(e["headers"], json!({"X-Host": name}));
        }
    }
    figure!("s1 three hosts all see all after {}", secs(t0.elapsed()));
    let all = sorted(p.iter().map(|x| x.uuid).collect());
    for x in p.iter_mut() {
        let others: Vec<Uuid> = all.iter().copied().filter(|u| *u != x.uuid).collect();
        assert_eq!(x.peers(), others);
    }

    // a and b join G; everyone hears it.
    let (a, b, c) = (p[0].uuid, p[1].uuid, p[2].uuid);
    p[0].join("G");
    p[1].join("G");
    for (i, who) in [(1, a), (2, a), (0, b), (2, b)] {
        p[i].expect("JOIN G", jsg("join", who, "G"));
    }

    // Whisper across the bridge, multi-frame binary content (one frame over 64 KiB).
    let content = tricky_content();
    p[0].whisper(c, &content);
    let e = p[2].expect("WHISPER a->c", js("whisper", a));
    assert_eq!(frames_of(&e), content);
    assert_eq!(e["name"], "a");
    p[2].whisper(b, &[b"c to b".to_vec()]);
    let e = p[1].expect("WHISPER c->b", js("whisper", c));
    assert_eq!(frames_of(&e), vec![b"c to b".to_vec()]);

    // Shout to G: b (in G) hears a, a hears b; c (not in G) hears neither; no echo.
    let small = tricky_content_small();
    p[0].shout("G", &small);
    let e = p[1].expect("SHOUT a->G", js("shout", a));
    assert_eq!(e["group"], "G");
    assert_eq!(frames_of(&e), small);
    p[1].shout("G", &[b"from b".to_vec()]);
    let e = p[0].expect("SHOUT b->G", js("shout", b));
    assert_eq!(frames_of(&e), vec![b"from b".to_vec()]);
    for (i, x) in p.iter_mut().enumerate() {
        let rest = x.drain_for(Duration::from_millis(800));
        let shouts = of_kind(&rest, &["shout"]);
        assert!(shouts.is_empty(), "host {i}: unexpected shouts {shouts:?}");
        let churn = of_kind(&rest, &["exit", "enter", "evasive"]);
        assert!(churn.is_empty(), "host {i}: unexpected {churn:?}");
    }
}
