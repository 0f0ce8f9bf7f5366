//! What `cargo install --path .` installs, and how it is built: exactly the user commands
//! (each with its man page and completions), without debug info. Read from the manifest
//! (`cargo metadata`), not by installing: a release build of everything takes minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo metadata` for this package.
fn package() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(manifest_dir())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    v["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "zre"))
        .cloned()
        .expect("package zre")
}

/// The features a plain build turns on: `default`, and what it enables, transitively.
fn default_features(features: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut on = BTreeSet::new();
    let mut todo = vec!["default".to_string()];
    while let Some(f) = todo.pop() {
        if on.insert(f.clone()) {
            for sub in features.get(&f).into_iter().flatten() {
                if features.contains_key(sub) {
                    todo.push(sub.clone());
                }
            }
        }
    }
    on
}

#[test]
fn cargo_install_installs_exactly_the_user_commands() {
    // Before (issue 11, item 4): seven binaries, zre-bench and zre-gen-docs among them.
    let pkg = package();
    let features: BTreeMap<String, Vec<String>> =
        serde_json::from_value(pkg["features"].clone()).expect("features");
    let on = default_features(&features);
    let mut installed = BTreeSet::new();
    let mut all_bins = BTreeSet::new();
    for t in pkg["targets"].as_array().expect("targets") {
        if !t["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bin"))
        {
            continue;
        }
        let name = t["name"].as_str().expect("name").to_string();
        all_bins.insert(name.clone());
        let needs: Vec<String> =
            serde_json::from_value(t["required-features"].clone()).unwrap_or_default();
        if needs.iter().all(|f| on.contains(f)) {
            installed.insert(name);
        }
    }
    let user: BTreeSet<String> = zre::cli::docs::commands()
        .iter()
        .map(|c| c.get_name().to_string())
        .collect();
    assert_eq!(installed, user, "cargo install would install {installed:?}");
    // zre-bench is still a target, for `cargo run --features bench` and the tests.
    assert!(all_bins.contains("zre-bench"), "{all_bins:?}");
    assert!(!all_bins.contains("zre-gen-docs"), "{all_bins:?}");
}

/// The `key = value` lines of one `[section]` of Cargo.toml.
fn section(toml: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let header = format!("[{name}]");
    let mut lines = toml.lines().skip_while(|l| l.trim() != header);
    lines.next()?;
    Some(
        lines
            .take_while(|l| !l.trim_start().starts_with('['))
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

#[test]
fn release_builds_carry_no_debug_info_and_profiling_builds_do() {
    // Before (issue 11, item 4): `[profile.release] debug = 1`: 33 MB per binary.
    let toml = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).expect("Cargo.toml");
    if let Some(release) = section(&toml, "profile.release") {
        let debug = release.get("debug").map(String::as_str);
        assert!(
            matches!(debug, None | Some("0") | Some("false") | Some("\"none\"")),
            "[profile.release] debug = {debug:?}"
        );
    }
    let profiling = section(&toml, "profile.profiling").expect("[profile.profiling]");
    assert_eq!(
        profiling.get("inherits").map(String::as_str),
        Some("\"release\"")
    );
    assert!(
        profiling
            .get("debug")
            .is_some_and(|d| d != "0" && d != "false"),
        "{profiling:?}"
    );
    // BENCHMARKS.md says how to build with it.
    let bench = std::fs::read_to_string(manifest_dir().join("BENCHMARKS.md")).expect("md");
    assert!(bench.contains("--profile profiling"), "BENCHMARKS.md");
}

#[test]
fn readme_installs_locked_with_man_pages_and_completions() {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README");
    assert!(readme.contains("cargo install --locked --path ."), "README");
    for kind in ["man", "bash", "zsh", "fish"] {
        assert!(
            readme.contains(&format!("--generate {kind}")),
            "README: --generate {kind}"
        );
    }
    assert!(!readme.contains("zre-gen-docs"), "README");
}
