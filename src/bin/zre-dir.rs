//! zre-dir: keep a directory holding one `<UUID>.json` per online peer (see `man zre-dir`).
//!
//! One zre-dir at a time keeps a directory: it holds an exclusive lock (flock(2)) on
//! `DIR/.zre-dir.lock` while it runs, and a second one exits 1. It deletes only what it
//! wrote: before it creates a peer file it lists it in `DIR/.zre-dir.written`, so a run
//! that crashed leaves a list the next run cleans up after, and nothing else in DIR (a
//! user's `<hex>.json` included) is ever touched.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use serde_json::json;
use zre::cli::args::Checked as _;
use zre::cli::args::{DirArgs, DirFormat};
use zre::cli::output::Obj;
use zre::cli::{self, UsageError};
use zre::{uuid_hex, Event, Node, PeerInfo, Uuid};

fn main() -> ExitCode {
    let args = DirArgs::parse_checked();
    cli::run("zre-dir", || keep(&args))
}

/// The lock a running zre-dir holds on DIR.
const LOCK: &str = ".zre-dir.lock";
/// The files this run (or a crashed earlier one) may have left in DIR, one name a line.
const WRITTEN: &str = ".zre-dir.written";
/// Where a file is written before it is renamed into place. One zre-dir per DIR (the
/// lock), so one name will do.
const TMP: &str = ".zre-dir.tmp";

struct Dir<'a> {
    path: &'a Path,
    format: DirFormat,
    /// Held for as long as we keep DIR.
    lock: Option<File>,
    /// Our peer files, as listed in [`WRITTEN`].
    written: BTreeSet<String>,
}

fn peer_file(uuid: &Uuid) -> String {
    format!("{}.json", uuid_hex(uuid))
}

/// True for a name [`peer_file`] gives: `WRITTEN` lists nothing else we would delete.
fn is_peer_file(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl<'a> Dir<'a> {
    /// Checks DIR, creates it if needed, locks it, removes what an earlier (crashed) run
    /// listed as written, and checks we can write.
    fn open(path: &'a Path, format: DirFormat) -> anyhow::Result<Self> {
        let p = path.display();
        if path.exists() && !path.is_dir() {
            return Err(UsageError(format!("{p}: not a directory")).into());
        }
        std::fs::create_dir_all(path).with_context(|| format!("cannot create {p}"))?;
        let mut dir = Dir {
            path,
            format,
            lock: None,
            written: BTreeSet::new(),
        };
        dir.lock()?;
        // What a crashed run left: its temporary files and the files it listed.
        for name in [TMP, ".zre-dir.written.tmp"] {
            dir.remove_name(name)?;
        }
        let listed = match std::fs::read_to_string(path.join(WRITTEN)) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {p}/{WRITTEN}")),
        };
        for name in listed.lines().filter(|n| is_peer_file(n)) {
            dir.remove_name(name)?;
        }
        dir.save_written()?;
        Ok(dir)
    }

    /// Takes DIR's lock, or fails when another zre-dir holds it. The lock file is
    /// removed at exit, so a file we opened may have been unlinked by the holder just
    /// before we locked it: we hold the lock only if the path still names our file.
    fn lock(&mut self) -> anyhow::Result<()> {
        let path = self.path.join(LOCK);
        let shown = path.display();
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot write to {}", self.path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                    "{} is kept by another zre-dir (it holds {shown})",
                    self.path.display()
                ),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {shown}"))
                }
            }
            let ours = file
                .metadata()
                .with_context(|| format!("cannot lock {shown}"))?;
            let now = std::fs::metadata(&path);
            if now.is_ok_and(|m| m.dev() == ours.dev() && m.ino() == ours.ino()) {
                self.lock = Some(file);
                return Ok(());
            }
        }
    }

    fn remove_name(&self, name: &str) -> anyhow::Result<()> {
        let file = self.path.join(name);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", file.display()))
            }
            _ => Ok(()),
        }
    }

    /// Writes `bytes` to a temporary file in DIR, then renames it to `name`: readers see
    /// the old file or the new one, never half of one.
    fn put(&self, tmp: &str, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let (tmp, file) = (self.path.join(tmp), self.path.join(name));
        std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))
    }

    fn save_written(&self) -> anyhow::Result<()> {
        let mut list = String::new();
        for name in &self.written {
            list.push_str(name);
            list.push('\n');
        }
        self.put(".zre-dir.written.tmp", WRITTEN, list.as_bytes())
    }

    /// Writes the peer's file, listing it as ours first.
    fn write(&mut self, peer: &PeerInfo) -> anyhow::Result<()> {
        let name = peer_file(&peer.uuid);
        if self.written.insert(name.clone()) {
            self.save_written()?;
        }
        let line = match self.format {
            DirFormat::Json => Obj::default()
                .str("uuid", &uuid_hex(&peer.uuid))
                .str("name", &peer.name)
                .str("endpoint", &peer.endpoint)
                .field("headers", json!(peer.headers))
                .field("groups", json!(peer.groups))
                .str(
                    "since",
                    &humantime::format_rfc3339_millis(peer.since).to_string(),
                )
                .finish(),
            DirFormat::Zyredir => json!([peer.name, peer.endpoint, peer.headers]).to_string(),
        };
        self.put(TMP, &name, format!("{line}\n").as_bytes())
    }

    /// Removes the peer's file, then its line in the list.
    fn remove(&mut self, uuid: &Uuid) -> anyhow::Result<()> {
        let name = peer_file(uuid);
        if self.written.contains(&name) {
            self.remove_name(&name)?;
            self.written.remove(&name);
            self.save_written()?;
        }
        Ok(())
    }

    /// Removes every file of ours, the list, and the lock file (still holding the lock).
    fn clear(&mut self) -> anyhow::Result<()> {
        for name in std::mem::take(&mut self.written) {
            self.remove_name(&name)?;
        }
        self.remove_name(WRITTEN)?;
        self.remove_name(LOCK)?;
        self.lock = None;
        Ok(())
    }
}

/// Rewrites the peer's file from the node's directory (gone: nothing to do; its EXIT
/// follows and removes the file).
fn refresh(dir: &mut Dir, node: &Node, peer: Uuid) -> anyhow::Result<()> {
    match node.peer_info(peer) {
        Some(info) => dir.write(&info),
        None => Ok(()),
    }
}

fn keep(args: &DirArgs) -> anyhow::Result<()> {
    let stop = cli::stop_flag()?;
    let mut dir = Dir::open(&args.dir, args.format)?;
    let node = cli::start_node(&args.node)?;
    let result = (|| -> anyhow::Result<()> {
        while !stop.load(Ordering::SeqCst) {
            let Some(event) = node.recv_timeout(cli::TICK)? else {
                continue;
            };
            match event {
                Event::Enter { peer, .. }
                | Event::Join { peer, .. }
                | Event::Leave { peer, .. } => refresh(&mut dir, &node, peer)?,
                Event::Exit { peer, .. } => dir.remove(&peer)?,
                _ => {}
            }
        }
        Ok(())
    })();
    node.stop();
    // Ours go with us, on a clean exit and on an error alike.
    let cleared = dir.clear();
    result.and(cleared)
}
