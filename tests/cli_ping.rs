//! zre-ping against another zre-ping: zpinger's exchange, round-trip times, summaries.

mod cli_support;

use cli_support::*;

fn ping_args(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--interface",
        "lo",
        "--port",
        &port.to_string(),
        "--beacon-interval",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn ping_against_ping_reports_round_trips() {
    let port = 46040;
    let mut b = Proc::spawn(
        PING,
        &ping_args(port, &["--name", "b", "--interval", "200ms"]),
    );
    let mut a = Proc::spawn(
        PING,
        &ping_args(
            port,
            &["--name", "a", "--interval", "200ms", "--count", "3"],
        ),
    );
    let enter = a.expect("b enters", |v| kind(v) == "enter" && v["name"] == "b");
    let b_uuid = enter["peer"].as_str().unwrap().to_string();
    a.assert_exit(0);
    let out: Vec<_> = a.rest();
    let all: Vec<_> = a.seen.clone();
    // Round trips follow b's enter, so expect() above consumed none of them.
    let rtts: Vec<_> = out.iter().filter(|v| kind(v) == "rtt").collect();
    assert_eq!(rtts.len(), 3, "{all:?}");
    for (i, r) in rtts.iter().enumerate() {
        assert_eq!(r["peer"], b_uuid.as_str());
        assert_eq!(r["seq"], i as u64 + 1);
        assert!(r["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{r}");
    }
    // zpinger: b whispered "Hello" on our enter, we answered with a "Hello" shout.
    assert!(
        out.iter()
            .any(|v| kind(v) == "whisper" && v["text"] == "Hello"),
        "{all:?}"
    );
    let summary = out.iter().find(|v| kind(v) == "summary").expect("summary");
    assert_eq!(summary["peer"], b_uuid.as_str());
    assert_eq!(summary["sent"], 3);
    assert_eq!(summary["received"], 3);
    assert_eq!(summary["loss"], 0.0);
    let (min, avg, max) = (
        summary["min_ms"].as_f64().unwrap(),
        summary["avg_ms"].as_f64().unwrap(),
        summary["max_ms"].as_f64().unwrap(),
    );
    assert!(min <= avg && avg <= max, "{summary}");
    assert_eq!(out.last().map(kind), Some("summary"));

    // b saw a leave at once, kept pinging until Ctrl-C, and sums up.
    b.expect("a exits", |v| kind(v) == "exit" && v["name"] == "a");
    b.signal("INT");
    b.assert_exit(0);
    let rest = b.rest();
    let s = rest
        .iter()
        .find(|v| kind(v) == "summary")
        .expect("b's summary");
    assert_eq!(s["name"], "a");
    assert!(s["received"].as_u64().unwrap() >= 1, "{s}");
}
