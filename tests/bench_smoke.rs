//! `zre-bench --quick` on tiny sizes: every result line is one JSON object with the
//! expected name, and nothing sent was lost. Benchmarks are not tests: no figure is
//! checked against a wall-clock bound. zre-bench needs the `bench` feature, which the
//! dev-dependency on this crate turns on, so `cargo test` builds it.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

#[test]
fn quick_bench_prints_every_result_as_ndjson() {
    let out = Command::new(env!("CARGO_BIN_EXE_zre-bench"))
        .args([
            "--quick",
            "--messages",
            "300",
            "--round-trips",
            "30",
            "--enter-runs",
            "2",
            "--nodes",
            "3",
            "--settle",
            "0.2",
            "--idle-secs",
            "0.2",
            "--port",
            "49900",
        ])
        .env_remove("ZRE_INTERFACE")
        .output()
        .expect("run zre-bench");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        out.status.success(),
        "zre-bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names = BTreeSet::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(line.starts_with(r#"{"type":"result","name":"#), "{line}");
        for field in [
            "layout",
            "unit",
            "value",
            "baseline",
            "baseline_kind",
            "ratio",
        ] {
            assert!(v.get(field).is_some(), "no {field}: {line}");
        }
        if let Some(lost) = v.get("lost") {
            assert_eq!(lost, 0, "{line}");
        }
        if let Some(n) = v.get("incomplete") {
            assert_eq!(n, 0, "{line}");
        }
        names.insert(v["name"].as_str().expect("name").to_string());
    }
    let want: BTreeSet<String> = [
        "whisper_16b",
        "whisper_1kib",
        "shout_1",
        "shout_10",
        "rtt_p50",
        "rtt_p99",
        "enter_p50",
        "enter_p99",
        "all_see_all_3",
        "idle_rss_alone",
        "idle_rss_10_peers",
        "idle_cpu_alone",
        "idle_cpu_10_peers",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, want);
}

/// `--curve`: the whisper and round-trip figures again with CURVE, beside plain, each
/// with the plain one as its baseline; on a build without CURVE, a clear error.
#[test]
fn quick_curve_bench_measures_beside_plain() {
    let out = Command::new(env!("CARGO_BIN_EXE_zre-bench"))
        .args([
            "--quick",
            "--curve",
            "--only",
            "whisper,rtt",
            "--messages",
            "300",
        ])
        .args([
            "--round-trips",
            "30",
            "--layout",
            "threads",
            "--port",
            "49950",
        ])
        .env_remove("ZRE_INTERFACE")
        .output()
        .expect("run zre-bench");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !zre::curve::available() {
        assert!(!out.status.success());
        assert!(stderr.contains(".cargo/curve.toml"), "{stderr}");
        return;
    }
    assert!(out.status.success(), "zre-bench failed: {stderr}\n{stdout}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for name in ["whisper_16b", "whisper_1kib", "rtt_p50", "rtt_p99"] {
        let plain = lines.iter().find(|v| v["name"] == name).expect(name);
        let curve_name = format!("{name}_curve");
        let curve = lines.iter().find(|v| v["name"] == curve_name.as_str());
        let curve = curve.unwrap_or_else(|| panic!("no {curve_name}: {stdout}"));
        assert_eq!(curve["baseline_kind"], "plain");
        assert_eq!(curve["baseline"], plain["value"]);
        if name.starts_with("whisper") {
            assert_eq!(curve["lost"], 0, "{curve}");
        }
    }
}
