//! zre-gen-docs: regenerate `man/` and `completions/` from the clap definitions.
//!
//! Run from the project root: `cargo run --bin zre-gen-docs` (or pass another root).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    zre::cli::run("zre-gen-docs", || {
        for path in zre::cli::docs::write_all(&root)? {
            eprintln!("wrote {}", path.display());
        }
        Ok(())
    })
}
