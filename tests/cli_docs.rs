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
