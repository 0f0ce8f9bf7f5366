//! `--contest`: zre-listen nodes on lo (beacon ports 46400-46401) elect the lowest UUID
//! among those contesting and print it as one NDJSON `leader` line, also at a member that
//! only joined; when the leader stops, the others print the next one. The commands that
//! join no group refuse the flag.

mod cli_support;

use cli_support::*;
use serde_json::Value;

const G: &str = "G";

fn hex(n: u32) -> String {
    format!("{:032X}", 0xE1EC_0000u128 + n as u128)
}

fn listener(port: u16, n: u32, contest: bool) -> Proc {
    let mut a = node_args(port);
    a.extend(["--name".into(), format!("n{n}"), "--uuid".into(), hex(n)]);
    a.extend([
        if contest { "--contest" } else { "--group" }.into(),
        G.into(),
    ]);
    a.extend(["--type".into(), "leader,stop".into()]);
    Proc::spawn(LISTEN, &a)
}

/// The next leader line, with exactly the fields the NDJSON format gives it, in order.
fn leader_line(p: &mut Proc) -> Value {
    let v = p.expect("leader", |v| kind(v) == "leader");
    let line = p.seen.last().unwrap().clone();
    let order = ["\"type\"", "\"time\"", "\"peer\"", "\"name\"", "\"group\""];
    let at: Vec<usize> = order
        .iter()
        .map(|k| line.find(k).unwrap_or(usize::MAX))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "field order: {line}");
    assert_eq!(v.as_object().unwrap().len(), order.len(), "{line}");
    assert_eq!(v["group"], G, "{line}");
    v
}

#[test]
fn listeners_contesting_print_the_lowest_uuid_as_leader_and_the_next_when_it_stops() {
    let port = 46400;
    // The highest first: whoever starts first does not win.
    let mut procs = [
        listener(port, 3, true),
        listener(port, 2, true),
        listener(port, 1, true),
        listener(port, 0, false),
    ];
    // They start one after the other: the first ones may elect among themselves before
    // n1 comes (then n2 leads for a moment), and n1's coming brings another election.
    for p in procs.iter_mut() {
        loop {
            let v = leader_line(p);
            if v["peer"] == hex(1) {
                assert_eq!(v["name"], "n1");
                break;
            }
            assert!(
                v["peer"] == hex(2) || v["peer"] == hex(3),
                "{}",
                p.context()
            );
        }
    }
    // The leader stops (Ctrl-C: a clean stop, its goodbye beacon): n2 is next.
    procs[2].signal("INT");
    let last = procs[2].rest();
    assert_eq!(last.last().map(kind), Some("stop"));
    procs[2].assert_exit(0);
    for i in [0, 1, 3] {
        // (n1 may have announced itself once more, for the member that came last.)
        let p = &mut procs[i];
        loop {
            let v = leader_line(p);
            if v["peer"] == hex(2) {
                break;
            }
            assert_eq!(v["peer"], hex(1), "{}", p.context());
        }
    }
}

#[test]
fn commands_that_join_no_group_refuse_contest() {
    let port = 46401;
    for (bin, extra) in [
        (WHISPER, vec!["somebody", "hi"]),
        (SHOUT, vec!["G", "hi"]),
        (PEERS, vec![]),
    ] {
        let mut a = node_args(port);
        a.extend(["--contest", "G"].map(String::from));
        a.extend(extra.into_iter().map(String::from));
        let (code, out, err) = run(bin, &a);
        assert_eq!(code, Some(2), "{bin}: {err}");
        assert!(out.is_empty(), "{bin}: {out}");
        assert!(
            err.contains("joins no group (--contest 'G')"),
            "{bin}: {err}"
        );
    }
}
