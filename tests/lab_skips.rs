//! A lab scenario that needs a tool the machine lacks skips with a printed reason, and
//! fails instead under ZRE_REQUIRE_LAB=1 (CI): here nftables, hidden from the lab's PATH,
//! for scenario s8 (before, s8 ran `nft` unchecked, and its panic stopped `cargo test`
//! before the later suites). It runs the lab's own test binary, which `cargo test` builds
//! beside this one; no namespace is created.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest `lab-*` test binary beside this test's own.
fn lab_binary() -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    std::fs::read_dir(&deps)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("lab-") && p.extension().is_none()
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

/// A directory whose only program is `ip` (if the machine has it): no `nft`.
fn path_without_nft(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for ip in ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"] {
        if Path::new(ip).exists() {
            let _ = std::os::unix::fs::symlink(ip, dir.join("ip"));
            break;
        }
    }
    dir.to_string_lossy().into_owned()
}

#[test]
fn a_scenario_needing_nft_skips_without_it_and_fails_when_the_lab_is_required() {
    let Some(lab) = lab_binary() else {
        if std::env::var("ZRE_REQUIRE_LAB").as_deref() == Ok("1") {
            panic!("the lab's test binary was not built beside this test");
        }
        eprintln!("SKIPPED lab_skips: the lab's test binary is not built (run `cargo test`)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("zre-lab-skips-{}", std::process::id()));
    let path = path_without_nft(&dir);
    let run = |require: bool| {
        let mut cmd = Command::new(&lab);
        cmd.args(["s8", "--nocapture"]).env("PATH", &path);
        if require {
            cmd.env("ZRE_REQUIRE_LAB", "1");
        } else {
            cmd.env_remove("ZRE_REQUIRE_LAB");
        }
        let out = cmd.output().expect("run the lab binary");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = run(false);
    assert!(ok, "a missing tool is a skip, not a failure:\n{text}");
    assert!(text.contains("SKIPPED s8"), "the skip says so:\n{text}");
    let (ok, text) = run(true);
    assert!(!ok, "with ZRE_REQUIRE_LAB=1 a skip fails:\n{text}");
    assert!(text.contains("the lab is required"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Zyre C scenarios (tests/lab/zyre.rs) skip with a reason without a Zyre C build, and
/// fail instead under ZRE_REQUIRE_ZYRE=1 (CI). The build is hidden by pointing
/// ZRE_ZYRE_PREFIX at an empty directory; no namespace is created.
#[test]
fn a_zyre_c_scenario_skips_without_zyre_c_and_fails_when_zyre_c_is_required() {
    let Some(lab) = lab_binary() else {
        if std::env::var("ZRE_REQUIRE_LAB").as_deref() == Ok("1") {
            panic!("the lab's test binary was not built beside this test");
        }
        eprintln!("SKIPPED lab_skips: the lab's test binary is not built (run `cargo test`)");
        return;
    };
    let empty = std::env::temp_dir().join(format!("zre-lab-nozyre-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let run = |require: bool| {
        let mut cmd = Command::new(&lab);
        cmd.args(["z1_zyre_c_and_zre", "--nocapture"])
            .env("ZRE_ZYRE_PREFIX", &empty);
        if require {
            cmd.env("ZRE_REQUIRE_ZYRE", "1");
        } else {
            cmd.env_remove("ZRE_REQUIRE_ZYRE");
        }
        let out = cmd.output().expect("run the lab binary");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = run(false);
    assert!(ok, "a missing Zyre C is a skip, not a failure:\n{text}");
    assert!(text.contains("SKIPPED z1"), "the skip says so:\n{text}");
    if !text.contains("no Zyre C build") {
        let _ = std::fs::remove_dir_all(&empty);
        // The lab itself is unavailable here (not root): that skip came first.
        eprintln!("SKIPPED lab_skips (Zyre C): the lab cannot run here:\n{text}");
        return;
    }
    assert!(
        text.contains("build.sh"),
        "the skip says how to get it:\n{text}"
    );
    let (ok, text) = run(true);
    let _ = std::fs::remove_dir_all(&empty);
    assert!(!ok, "with ZRE_REQUIRE_ZYRE=1 a skip fails:\n{text}");
    assert!(text.contains("Zyre C is required"), "{text}");
}
