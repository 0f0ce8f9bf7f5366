//! The committed man pages and completions are what each command's `--generate` prints
//! now, and `--generate` is what the man pages and README say.

mod cli_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cli_support::*;
use zre::cli::args::Generate;
use zre::cli::docs::committed_path;

const KINDS: [(Generate, &str); 4] = [
    (Generate::Man, "man"),
    (Generate::Bash, "bash"),
    (Generate::Zsh, "zsh"),
    (Generate::Fish, "fish"),
];

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

/// A user command's binary: beside zre-listen in the target directory.
fn binary(name: &str) -> PathBuf {
    Path::new(LISTEN).with_file_name(name)
}

/// The shell loop that regenerates man/ and completions/ from the commands themselves.
fn regenerate_hint(names: &[String]) -> String {
    format!(
        "stale: regenerate and commit man/ and completions/ with\n  cargo build && \
         for t in {}; do target/debug/$t --generate man > man/$t.1; \
         target/debug/$t --generate bash > completions/bash/$t; \
         target/debug/$t --generate zsh > completions/zsh/_$t; \
         target/debug/$t --generate fish > completions/fish/$t.fish; done",
        names.join(" ")
    )
}

#[test]
fn man_pages_and_completions_are_fresh() {
    // Before (issue 11, item 4): a separate zre-gen-docs wrote them, into any directory
    // its first argument named (`zre-gen-docs --version` wrote 20 files under ./--version/).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<String> = zre::cli::docs::commands()
        .iter()
        .map(|c| c.get_name().to_string())
        .collect();
    let hint = regenerate_hint(&names);
    let mut expected = BTreeSet::new();
    for name in &names {
        for (kind, arg) in KINDS {
            let path = committed_path(name, kind);
            let out = std::process::Command::new(binary(name))
                .args(["--generate", arg])
                .env_remove("ZRE_INTERFACE")
                .env_remove("ZRE_PORT")
                .output()
                .unwrap_or_else(|e| panic!("run {name}: {e}"));
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name} --generate {arg}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stderr.is_empty(), "{name} --generate {arg}: stderr");
            let committed =
                std::fs::read(root.join(&path)).unwrap_or_else(|e| panic!("{path}: {e}; {hint}"));
            assert!(out.stdout == committed, "{path} differs; {hint}");
            expected.insert(PathBuf::from(path));
        }
    }
    // Nothing committed that no command generates (a removed command's page).
    let committed: BTreeSet<PathBuf> = files_under(root, "man")
        .into_iter()
        .chain(files_under(root, "completions"))
        .collect();
    assert_eq!(committed, expected, "{hint}");
}

/// Runs `bin args` in `dir` (no node starts: these fail or print before one would).
fn output_in(dir: &Path, bin: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("ZRE_INTERFACE")
        .env_remove("ZRE_PORT")
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

#[test]
fn generate_takes_no_other_argument_and_rejects_a_bad_kind() {
    let tmp = TempDir::new("generate");
    // zre-whisper, zre-shout and zre-dir print their docs without PEER, GROUP or DIR.
    for bin in [WHISPER, SHOUT, DIR] {
        let (code, out, err) = output_in(&tmp.0, bin, &["--generate", "man"]);
        assert_eq!(code, Some(0), "{bin}: {err}");
        assert!(out.starts_with(".ie \\n(.g .ds Aq"), "{bin}: {out}");
    }
    // A bad kind is a usage error in one line, naming the kinds; no file is written
    // (before: `zre-gen-docs --version` wrote 20 files under ./--version/).
    for bad in ["--version", "pdf", ""] {
        let (code, out, err) = output_in(&tmp.0, LISTEN, &["--generate", bad]);
        assert_eq!(code, Some(2), "--generate {bad:?}: {err}");
        assert_eq!(out, "", "--generate {bad:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("zre-listen: error: --generate"),
            "--generate {bad:?}: {err}"
        );
        assert!(err.contains("man, bash, zsh, fish"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&tmp.0).expect("tmp").count(), 0);
    // Without --generate the required arguments are still required.
    let (code, _, err) = output_in(&tmp.0, WHISPER, &["--interface", "lo"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("PEER"), "{err}");
    // The flag is in the help.
    let (_, help, _) = output_in(&tmp.0, LISTEN, &["--help"]);
    assert!(help.contains("--generate <KIND>"), "{help}");
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
