//! The committed man pages and completions are what `zre-gen-docs` renders now.

mod cli_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cli_support::*;

fn files_under(root: &Path, sub: &str) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.join(sub)];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    out
}

#[test]
fn man_pages_and_completions_are_fresh() {
    let tmp = TempDir::new("docs");
    let status = std::process::Command::new(GEN_DOCS)
        .arg(&tmp.0)
        .env_remove("ZRE_INTERFACE")
        .env_remove("ZRE_PORT")
        .output()
        .expect("run zre-gen-docs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hint = "stale: run `cargo run --bin zre-gen-docs` and commit man/ and completions/";
    for sub in ["man", "completions"] {
        let fresh = files_under(&tmp.0, sub);
        let committed = files_under(root, sub);
        assert_eq!(fresh, committed, "{hint}");
        for f in fresh {
            let a = std::fs::read(tmp.0.join(&f)).expect("fresh file");
            let b = std::fs::read(root.join(&f)).expect("committed file");
            assert!(a == b, "{} differs; {hint}", f.display());
        }
    }
}

#[test]
fn man_pages_document_the_formats() {
    let page = String::from_utf8(
        zre::cli::docs::man_page(zre::cli::docs::commands().remove(0)).expect("render"),
    )
    .expect("utf-8");
    for needle in [
        "OUTPUT FORMAT",
        "base64",
        "EXIT STATUS",
        "ZRE_PORT",
        "ZRE_INTERFACE",
    ] {
        assert!(page.contains(needle), "{needle} missing from zre-listen(1)");
    }
}

#[test]
fn zsys_interface_is_documented_and_works() {
    // Before (issue 11, item 14): it worked, but help, man pages and README named only
    // ZRE_INTERFACE.
    let (code, help, _) = run(LISTEN, &["--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("ZSYS_INTERFACE"), "{help}");
    for cmd in zre::cli::docs::commands() {
        let name = cmd.get_name().to_string();
        let page = String::from_utf8(zre::cli::docs::man_page(cmd).expect("render")).unwrap();
        assert!(page.contains("ZSYS_INTERFACE"), "{name}(1)");
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    assert!(readme.contains("ZSYS_INTERFACE"));
    // A node started with only ZSYS_INTERFACE=lo runs on lo: a peer there meets it.
    let port = 46140;
    let mut peer = Proc::spawn(
        LISTEN,
        &["--interface", "lo", "--port", "46140", "--name", "peer"],
    );
    let out = std::process::Command::new(LISTEN)
        .args([
            "--port",
            &port.to_string(),
            "--interval",
            "100ms",
            "--name",
            "zsys",
        ])
        .args(["--type", "enter", "--count", "1", "--timeout", "10s"])
        .env_remove("ZRE_INTERFACE")
        .env("ZSYS_INTERFACE", "lo")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""name":"peer""#));
    peer.expect("zsys", |v| kind(v) == "enter" && v["name"] == "zsys");
}

#[test]
fn completions_suggest_interfaces_and_directories() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for tool in [
        "zre-listen",
        "zre-shout",
        "zre-whisper",
        "zre-ping",
        "zre-dir",
    ] {
        let zsh = std::fs::read_to_string(root.join(format!("completions/zsh/_{tool}"))).unwrap();
        assert!(zsh.contains(":NAME|IP:_net_interfaces'"), "{tool} zsh");
        let fish =
            std::fs::read_to_string(root.join(format!("completions/fish/{tool}.fish"))).unwrap();
        assert!(fish.contains("-l interface") && fish.contains("(__fish_print_interfaces)"));
    }
    let zsh = std::fs::read_to_string(root.join("completions/zsh/_zre-dir")).unwrap();
    assert!(
        zsh.contains(":dir -- The directory to keep:_files -/'"),
        "DIR: directories"
    );
    // bash, for real: complete `zre-listen --interface ` and find lo among the answers.
    let script = root.join("completions/bash/zre-listen");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=(zre-listen --interface ''); COMP_CWORD=2; \
             COMP_LINE='zre-listen --interface '; COMP_POINT=${{#COMP_LINE}}; \
             _zre__listen zre-listen '' --interface; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output();
    let Ok(out) = out else {
        eprintln!("SKIPPED bash completion check: no bash");
        return;
    };
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(
        words.lines().any(|w| w == "lo"),
        "{words}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
