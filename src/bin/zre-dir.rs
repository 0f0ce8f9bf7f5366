//! zre-dir: keep a directory holding one `<UUID>.json` per online peer (see `man zre-dir`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use serde_json::json;
use zre::cli::args::Checked as _;
use zre::cli::args::{DirArgs, DirFormat};
use zre::cli::output::{now_rfc3339, Obj};
use zre::cli::{self};
use zre::{uuid_hex, Event, Uuid};

fn main() -> ExitCode {
    let args = DirArgs::parse_checked();
    cli::run("zre-dir", || keep(&args))
}

#[derive(Debug)]
struct Peer {
    name: String,
    endpoint: String,
    headers: BTreeMap<String, String>,
    groups: BTreeSet<String>,
    since: String,
}

struct Dir<'a> {
    path: &'a Path,
    format: DirFormat,
}

/// `<32 hex digits>.json`: a file this tool writes.
fn is_peer_file(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

const TMP_PREFIX: &str = ".zre-dir.";

impl Dir<'_> {
    fn file(&self, uuid: &Uuid) -> PathBuf {
        self.path.join(format!("{}.json", uuid_hex(uuid)))
    }

    /// Creates DIR if needed, removes what an earlier run left, and checks we can write.
    fn prepare(&self) -> anyhow::Result<()> {
        let p = self.path.display();
        std::fs::create_dir_all(self.path).with_context(|| format!("cannot create {p}"))?;
        for entry in std::fs::read_dir(self.path).with_context(|| format!("cannot read {p}"))? {
            let entry = entry.with_context(|| format!("cannot read {p}"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_peer_file(&name) || name.starts_with(TMP_PREFIX) {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            }
        }
        let probe = self
            .path
            .join(format!("{TMP_PREFIX}probe.{}", std::process::id()));
        std::fs::write(&probe, b"").with_context(|| format!("cannot write to {p}"))?;
        std::fs::remove_file(&probe).with_context(|| format!("cannot write to {p}"))?;
        Ok(())
    }

    /// Writes a temporary file in DIR, then renames it into place: readers see the old
    /// file or the new one, never half of one.
    fn write(&self, uuid: &Uuid, peer: &Peer) -> anyhow::Result<()> {
        let line = match self.format {
            DirFormat::Json => Obj::default()
                .str("uuid", &uuid_hex(uuid))
                .str("name", &peer.name)
                .str("endpoint", &peer.endpoint)
                .field("headers", json!(peer.headers))
                .field("groups", json!(peer.groups))
                .str("since", &peer.since)
                .finish(),
            DirFormat::Zyredir => json!([peer.name, peer.endpoint, peer.headers]).to_string(),
        };
        let bytes = format!("{line}\n");
        let file = self.file(uuid);
        let tmp = self.path.join(format!(
            "{TMP_PREFIX}{}.{}",
            uuid_hex(uuid),
            std::process::id()
        ));
        std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))
    }

    fn remove(&self, uuid: &Uuid) -> anyhow::Result<()> {
        let file = self.file(uuid);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", file.display()))
            }
            _ => Ok(()),
        }
    }
}

fn keep(args: &DirArgs) -> anyhow::Result<()> {
    let stop = cli::stop_flag()?;
    let dir = Dir {
        path: &args.dir,
        format: args.format,
    };
    dir.prepare()?;
    let node = cli::start_node(&args.node)?;
    let mut peers: BTreeMap<Uuid, Peer> = BTreeMap::new();
    let result = (|| -> anyhow::Result<()> {
        while !stop.load(Ordering::SeqCst) {
            let Some(event) = node.recv_timeout(cli::TICK)? else {
                continue;
            };
            match event {
                Event::Enter {
                    peer,
                    name,
                    headers,
                    endpoint,
                } => {
                    let p = Peer {
                        name: name.to_string(),
                        endpoint,
                        headers,
                        groups: BTreeSet::new(),
                        since: now_rfc3339(),
                    };
                    dir.write(&peer, &p)?;
                    peers.insert(peer, p);
                }
                Event::Join { peer, group, .. } => {
                    if let Some(p) = peers.get_mut(&peer) {
                        p.groups.insert(group);
                        dir.write(&peer, p)?;
                    }
                }
                Event::Leave { peer, group, .. } => {
                    if let Some(p) = peers.get_mut(&peer) {
                        p.groups.remove(&group);
                        dir.write(&peer, p)?;
                    }
                }
                Event::Exit { peer, .. } => {
                    peers.remove(&peer);
                    dir.remove(&peer)?;
                }
                _ => {}
            }
        }
        Ok(())
    })();
    node.stop();
    // Ours go with us, on a clean exit and on an error alike.
    for uuid in peers.keys() {
        let _ = dir.remove(uuid);
    }
    result
}
