//! Zyre C in the lab: the reference implementation, driven by `tests/interop/zyre_peer.c`
//! (the same line protocol as `zre-test-peer` and `pyre_peer.py`, so the scenarios read
//! all three through [`Peer`] with the same predicates), and Zyre's own `bin/zpinger`.
//!
//! Zyre C comes from `ZRE_ZYRE_PREFIX`, else `target/zyre-c` in the checkout, where
//! `../shared/zyre-c/build.sh target/zyre-c` installs it (`.ci/run` does). The C sources
//! in `tests/interop/` are compiled here on first use into the target directory, under a
//! name made from a hash of the source, the prefix and the flags, so an edit rebuilds
//! them and nothing else does. Without a Zyre C build a scenario prints `SKIPPED ...` and
//! passes, unless `ZRE_REQUIRE_ZYRE=1` (CI), which makes it fail.
//!
//! Zyre C cannot beacon on loopback, and its own interface choice would be the host's
//! network: it runs only in the lab's namespaces, on `veth0`, on the scenario's beacon
//! port. zyre_peer refuses an interface outside 10.77.0.0/16 and the port 5670; zpinger,
//! which has no port option, gets its port from an LD_PRELOAD shim
//! (`tests/interop/zpinger_port.c`) that refuses to start without one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{MutexGuard, OnceLock};

use crate::support::*;

/// The programs built against one Zyre C prefix.
pub struct ZyreC {
    /// The install prefix (`bin/zpinger`, `lib/libzyre.so`, `include/zyre.h`).
    pub prefix: PathBuf,
    /// `tests/interop/zyre_peer.c`, compiled.
    pub peer: PathBuf,
    /// `tests/interop/zpinger_port.c`, compiled (a shared object for LD_PRELOAD).
    pub shim: PathBuf,
}

/// Where Zyre C is installed: `ZRE_ZYRE_PREFIX`, else `target/zyre-c`.
fn prefix() -> PathBuf {
    match std::env::var_os("ZRE_ZYRE_PREFIX") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/zyre-c"),
    }
}

/// Why Zyre C cannot be used, if it cannot.
fn missing(prefix: &Path) -> Option<String> {
    for f in ["include/zyre.h", "lib/libzyre.so", "bin/zpinger"] {
        if !prefix.join(f).exists() {
            return Some(format!(
                "no Zyre C build in {} ({f} missing)",
                prefix.display()
            ));
        }
    }
    None
}

/// FNV-1a, 64 bits: a stable name for a build's inputs (std's hasher may change).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The directory for what is built here: `zyre-interop` beside `deps/` in the target
/// directory this test binary runs from.
fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    profile.join("zyre-interop")
}

/// Compiles `tests/interop/<source>` with `cc` and `flags` (`{P}` is the prefix) unless a
/// build of the same inputs is there; returns the output. Panics with cc's messages if it
/// fails: with Zyre C present, a program that does not build is a defect, not a skip.
fn compile(prefix: &Path, source: &str, stem: &str, ext: &str, flags: &[&str]) -> PathBuf {
    let src = interop_script(source);
    let text = std::fs::read(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let p = prefix.to_string_lossy();
    let flags: Vec<String> = flags.iter().map(|f| f.replace("{P}", &p)).collect();
    let joined = flags.join(" ");
    let key = fnv(&[&text, p.as_bytes(), joined.as_bytes()]);
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let out = dir.join(format!("{stem}-{key:016x}{ext}"));
    if out.exists() {
        return out;
    }
    // Built under a name of its own, then renamed: another test process may build the
    // same thing at the same moment, and a half-written program must never be run.
    let tmp = dir.join(format!("{stem}-{key:016x}.{}.tmp", std::process::id()));
    let res = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(&flags)
        .output()
        .unwrap_or_else(|e| panic!("run cc for {source}: {e}"));
    assert!(
        res.status.success(),
        "cc {source} failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("rename to {}: {e}", out.display()));
    // Builds of older sources are left from edits: remove them (a process still running
    // one keeps its file until it exits).
    let keep = out.file_name().unwrap_or_default().to_owned();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let s = name.to_string_lossy();
        if name != keep && s.starts_with(&format!("{stem}-")) && !s.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    out
}

/// Builds the programs once per process, or says why Zyre C is missing.
fn zyre_c() -> &'static Result<ZyreC, String> {
    static ZYRE: OnceLock<Result<ZyreC, String>> = OnceLock::new();
    ZYRE.get_or_init(|| {
        let prefix = prefix();
        if let Some(why) = missing(&prefix) {
            return Err(why);
        }
        let link = ["-L{P}/lib", "-Wl,-rpath,{P}/lib"];
        let mut peer_flags = vec!["-DZYRE_BUILD_DRAFT_API", "-I{P}/include"];
        peer_flags.extend(link);
        peer_flags.extend(["-lzyre", "-lczmq", "-lzmq"]);
        let peer = compile(&prefix, "zyre_peer.c", "zyre_peer", "", &peer_flags);
        let mut shim_flags = vec!["-shared", "-fPIC"];
        shim_flags.extend(link);
        shim_flags.extend(["-lzyre", "-ldl"]);
        let shim = compile(
            &prefix,
            "zpinger_port.c",
            "zpinger_port",
            ".so",
            &shim_flags,
        );
        Ok(ZyreC { prefix, peer, shim })
    })
}

/// `Some` if Zyre C can be used. Otherwise: with `ZRE_REQUIRE_ZYRE=1` the test fails;
/// without, the reason is printed and the test should return (skip).
pub fn require_zyre(test: &str) -> Option<&'static ZyreC> {
    use std::io::Write;
    let why = match zyre_c() {
        Ok(z) => return Some(z),
        Err(why) => why,
    };
    if std::env::var("ZRE_REQUIRE_ZYRE").as_deref() == Ok("1") {
        panic!("{test}: Zyre C is required (ZRE_REQUIRE_ZYRE=1) but {why}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (build it with: ../shared/zyre-c/build.sh target/zyre-c, \
         or set ZRE_ZYRE_PREFIX; CI sets ZRE_REQUIRE_ZYRE=1)"
    );
    None
}

/// The start of a Zyre C scenario: [`begin`], then [`require_zyre`].
pub fn begin_zyre(tag: &str) -> Option<(MutexGuard<'static, ()>, &'static ZyreC)> {
    let one = begin(tag, false)?;
    Some((one, require_zyre(tag)?))
}

/// Starts zyre_peer on `h` (interface veth0, beacon port `port`, timers `t`, which it
/// takes in seconds as the other doubles do).
pub fn zyre_peer(
    lab: &Lab,
    h: &Host,
    z: &ZyreC,
    port: u16,
    name: &str,
    t: Timers,
    extra: &[&str],
) -> Peer {
    let mut cmd = lab.command(h, &z.peer);
    // CZMQ's log to stderr (as zyre_peer also asks); what still reaches stdout is
    // skipped (`Proc::skip_czmq_log`).
    cmd.env("ZSYS_LOGSTREAM", "stderr");
    cmd.args([
        "--interface",
        netns::IFACE,
        "--port",
        &port.to_string(),
        "--name",
        name,
    ])
    .args(t.args())
    .args(extra);
    let mut p = Peer::spawn(&format!("zyre:{name}"), cmd);
    p.proc.skip_czmq_log();
    p
}

/// Zyre's own `bin/zpinger` on a host: its log lines (stdout), read as they come.
/// Dropping it kills (SIGKILL, by PID) and reaps it.
pub struct Zpinger {
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Zpinger {
    /// Starts zpinger on `h` with `-i veth0`, on beacon port `port` (through the shim)
    /// and a beacon interval of `interval_ms`.
    pub fn start(lab: &Lab, h: &Host, z: &ZyreC, port: u16, interval_ms: u32) -> Zpinger {
        Self::start_with(lab, h, z, port, interval_ms, &[])
    }

    /// [`Zpinger::start`] with more of zpinger's flags (`--curve`).
    pub fn start_with(
        lab: &Lab,
        h: &Host,
        z: &ZyreC,
        port: u16,
        interval_ms: u32,
        extra: &[&str],
    ) -> Zpinger {
        let mut cmd = lab.command(h, &z.prefix.join("bin/zpinger"));
        cmd.args(["-i", netns::IFACE])
            .args(extra)
            .env("LD_PRELOAD", &z.shim)
            .env("ZRE_SHIM_PORT", port.to_string())
            .env("ZRE_SHIM_INTERVAL", interval_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn zpinger");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(l) = line else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Zpinger {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits until a line containing `text` was printed (also one printed before).
    pub fn expect(&mut self, what: &str, text: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "zpinger: no {what} ({text:?}) within {DEADLINE:?}; printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Zpinger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The members of `group` as a zyre_peer sees them (`zyre_peers_by_group`), sorted.
pub fn group_peers(p: &mut Peer, group: &str) -> Vec<Uuid> {
    p.send(json!({"cmd": "peers", "group": group}));
    let v = p.expect("peers reply", |v| {
        v["type"] == "peers" && v["group"] == group
    });
    let mut list: Vec<Uuid> = v["peers"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: bad peers reply {v}", p.label))
        .iter()
        .map(|p| uuid_of(&json!({ "u": p }), "u"))
        .collect();
    list.sort();
    list
}
