//! Zyre C scenario 2 (issue 15): Zyre's own zpinger and our zre-ping, the zpinger exchange
//! both ways: each whispers "Hello" to the other when it enters and answers a "Hello"
//! whisper with a "Hello" shout to GLOBAL; zre-ping also times ZRE PINGs that Zyre answers.

use std::path::Path;

use crate::common::cli_support::{Proc, PING};
use crate::support::*;
use crate::zyre::*;

#[test]
fn z2_zyre_zpinger_and_zre_ping_exchange_hellos_both_ways() {
    let Some((_one, z)) = begin_zyre("z2") else {
        return;
    };
    let port = 48120;
    let mut lab = Lab::new("z2", 22);
    let hz = lab.add_host();
    let hr = lab.add_host();
    let mut zp = Zpinger::start(&lab, &hz, z, port, 100);
    // "I: <date> <time> Create Zyre node, uuid=<HEX>, name=<NAME>"
    let line = zp.expect("start", "Create Zyre node, uuid=");
    let hex = line
        .split("uuid=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("zpinger's first line: {line}"))
        .to_string();
    let zname = line.rsplit("name=").next().unwrap().trim().to_string();

    let t0 = Instant::now();
    let mut cmd = lab.command(&hr, Path::new(PING));
    cmd.args(["--interface", netns::IFACE, "--port", &port.to_string()])
        .args(["--beacon-interval", "100ms", "--name", "rsping"])
        .args([
            "--interval",
            "200ms",
            "--count",
            "3",
            "--reply-timeout",
            "5s",
        ])
        .args(["--deadline", "8s"]);
    let mut ping = Proc::command("zre-ping", cmd);
    let status = ping.wait();
    let took = t0.elapsed();
    let lines = ping.rest();
    assert!(status.success(), "zre-ping: {status:?}\n{}", ping.context());
    let of = |kind: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|v| v["type"] == kind && v["peer"] == hex.as_str())
            .collect()
    };
    let enter = of("enter");
    assert_eq!(enter.len(), 1, "{lines:#?}");
    assert_eq!(enter[0]["name"], zname.as_str());
    assert!(
        enter[0]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&format!("tcp://{}:", hz.ip)),
        "{lines:#?}"
    );
    // zpinger whispered "Hello" when we entered, and shouted "Hello" to GLOBAL when our
    // "Hello" whisper came.
    assert!(
        of("whisper").iter().any(|v| v["text"] == "Hello"),
        "{lines:#?}"
    );
    assert!(
        of("shout")
            .iter()
            .any(|v| v["group"] == "GLOBAL" && v["text"] == "Hello"),
        "{lines:#?}"
    );
    // Zyre answered every ZRE PING.
    let rtts: Vec<f64> = of("rtt")
        .iter()
        .map(|v| v["rtt_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(rtts.len(), 3, "{lines:#?}");
    let summary = of("summary");
    assert_eq!(summary.len(), 1, "{lines:#?}");
    assert_eq!(
        (&summary[0]["sent"], &summary[0]["received"]),
        (&json!(3), &json!(3))
    );
    figure!(
        "z2 zre-ping against zpinger: {} in all, RTTs {rtts:?} ms",
        secs(took)
    );

    // zpinger's own log: it saw us enter, our "Hello" whisper, our "Hello" shout (the
    // answer to its whisper), and our goodbye.
    zp.expect("ENTER rsping", "[rsping] peer entered");
    zp.expect("our whisper", "[rsping] received ping (WHISPER)");
    zp.expect("our shout", "[rsping](GLOBAL) received ping (SHOUT)");
    zp.expect("EXIT rsping", "[rsping] peer exited");
}
