//! The lab's network: Linux network namespaces as hosts, each joined by a veth pair to one
//! bridge that lives in a namespace of its own. Nothing here touches the root namespace's
//! interfaces: veths are created inside the bridge namespace with their peer end moved
//! straight into the host namespace, and every address is in 10.77.0.0/16.
//!
//! Names are `zl<test pid>-<tag>-...`, so parallel runs never collide; [`Lab`]'s Drop
//! deletes every namespace it made (also when a test panics), and [`Lab::new`] deletes
//! namespaces left by test processes that no longer exist (a run that was SIGKILLed).

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, Once};

/// The host side of every veth is called this inside its namespace.
pub const IFACE: &str = "veth0";

/// Runs a command, panicking with its stderr when it fails.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

fn prefix() -> String {
    format!("zl{}-", std::process::id())
}

/// Why the lab cannot run here, or `None` if it can (root, `ip`, namespaces work).
fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_string));
    if uid.as_deref() != Some("0") {
        return Some(format!(
            "not root (uid {}); the lab creates network namespaces",
            uid.unwrap_or_else(|| "?".into())
        ));
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("`ip` (iproute2) is not installed".into()),
    }
    let probe = format!("{}probe", prefix());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip")
                .args(["netns", "delete", &probe])
                .output();
            None
        }
        Ok(o) => Some(format!(
            "cannot create a network namespace: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run ip: {e}")),
    }
}

/// `true` if the lab can run. Otherwise: with `ZRE_REQUIRE_LAB=1` the test fails; without,
/// the reason is printed and the test should return (skip).
pub fn available(test: &str) -> bool {
    let Some(reason) = unavailable() else {
        return true;
    };
    if std::env::var("ZRE_REQUIRE_LAB").as_deref() == Ok("1") {
        panic!("{test}: the lab is required (ZRE_REQUIRE_LAB=1) but {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (run as root with iproute2; CI sets ZRE_REQUIRE_LAB=1)"
    );
    false
}

/// `true` if nftables can be used (for packet loss); with `ZRE_REQUIRE_LAB=1` its absence
/// fails the test.
pub fn nft_available(test: &str) -> bool {
    match Command::new("nft").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            let reason = "nft (apt package nftables) is not installed";
            if std::env::var("ZRE_REQUIRE_LAB").as_deref() == Ok("1") {
                panic!("{test}: the lab is required (ZRE_REQUIRE_LAB=1) but {reason}");
            }
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
            false
        }
    }
}

/// One scenario at a time: they measure timing, and 50 hosts on a 2-core machine next to
/// another scenario would measure the machine instead.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn remove_stale() {
    let out = run(&["ip", "netns", "list"]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("zl") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "delete", name]).output();
        }
    }
}

/// One host: a namespace with `veth0` at `ip`/24 and `lo` up.
#[derive(Debug, Clone)]
pub struct Host {
    /// Namespace name.
    pub ns: String,
    /// Its address on the lab network.
    pub ip: Ipv4Addr,
    /// The bridge-side end of its veth (inside the bridge namespace).
    port: String,
}

/// A lab network: a bridge namespace plus hosts. Dropping it deletes every namespace.
pub struct Lab {
    name: String,
    bridge: String,
    subnet: u8,
    hosts: Vec<Host>,
    /// Set once a [`Router`] joined the lab: hosts route everything else through it.
    gateway: Option<Ipv4Addr>,
}

impl Lab {
    /// A lab named `tag` on 10.77.`subnet`.0/24 with no hosts yet.
    pub fn new(tag: &str, subnet: u8) -> Lab {
        static STALE: Once = Once::new();
        STALE.call_once(remove_stale);
        let name = format!("{}{tag}", prefix());
        let bridge = format!("{name}-br");
        let lab = Lab {
            name,
            bridge: bridge.clone(),
            subnet,
            hosts: Vec::new(),
            gateway: None,
        };
        run(&["ip", "netns", "add", &bridge]);
        run(&["ip", "-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &bridge, "link", "set", "br0", "up"]);
        lab
    }

    /// Adds a host (10.77.subnet.(index + 1)) and returns it.
    pub fn add_host(&mut self) -> Host {
        let i = self.hosts.len();
        assert!(i < 250, "a /24 holds 250 lab hosts");
        let ns = format!("{}-h{i}", self.name);
        let ip = Ipv4Addr::new(10, 77, self.subnet, i as u8 + 1);
        let port = format!("h{i}");
        run(&["ip", "netns", "add", &ns]);
        let host = Host {
            ns: ns.clone(),
            ip,
            port: port.clone(),
        };
        self.hosts.push(host.clone());
        let br = self.bridge.as_str();
        run(&[
            "ip", "-n", br, "link", "add", &port, "type", "veth", "peer", "name", IFACE, "netns",
            &ns,
        ]);
        run(&["ip", "-n", br, "link", "set", &port, "master", "br0", "up"]);
        // `brd +`: an address added without a broadcast address has none.
        let cidr = format!("{ip}/24");
        run(&[
            "ip", "-n", &ns, "addr", "add", &cidr, "brd", "+", "dev", IFACE,
        ]);
        run(&["ip", "-n", &ns, "link", "set", IFACE, "up"]);
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        if let Some(gw) = self.gateway {
            run(&[
                "ip",
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &gw.to_string(),
            ]);
        }
        host
    }

    /// The lab network's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 255)
    }

    /// Cuts a host off: its bridge port goes down (the host sees no carrier).
    pub fn link_down(&self, h: &Host) {
        run(&["ip", "-n", &self.bridge, "link", "set", &h.port, "down"]);
    }

    /// Reconnects a host cut off by [`Lab::link_down`].
    pub fn link_up(&self, h: &Host) {
        run(&["ip", "-n", &self.bridge, "link", "set", &h.port, "up"]);
    }

    /// Sets a sysctl inside a host's namespace (net.* settings are per namespace).
    pub fn sysctl(&self, h: &Host, setting: &str) {
        run(&["ip", "netns", "exec", &h.ns, "sysctl", "-q", "-w", setting]);
    }

    /// Drops `percent`% of the packets a host receives and of those it sends on `veth0`
    /// (nftables, random per packet), and returns the nft ruleset text.
    pub fn loss(&self, h: &Host, percent: u8) -> String {
        let rules = format!(
            "table inet zrelab {{\n\
             \tchain in {{ type filter hook input priority 0; policy accept;\n\
             \t\tiifname \"{IFACE}\" numgen random mod 100 < {percent} counter drop\n\
             \t}}\n\
             \tchain out {{ type filter hook output priority 0; policy accept;\n\
             \t\toifname \"{IFACE}\" numgen random mod 100 < {percent} counter drop\n\
             \t}}\n\
             }}\n"
        );
        self.nft_apply(h, &rules);
        rules
    }

    /// Drops every TCP connection attempt to a host (SYN without ACK): its ports look
    /// unreachable rather than closed.
    pub fn blackhole_tcp(&self, h: &Host) {
        let rules = format!(
            "table inet zrehole {{\n\
             \tchain in {{ type filter hook input priority 0; policy accept;\n\
             \t\tiifname \"{IFACE}\" tcp flags & (syn | ack) == syn counter drop\n\
             \t}}\n\
             }}\n"
        );
        self.nft_apply(h, &rules);
    }

    fn nft_apply(&self, h: &Host, rules: &str) {
        nft_load(&h.ns, rules);
    }

    /// The nft counters of a host (the ruleset as text).
    pub fn nft_counters(&self, h: &Host) -> String {
        let out = run(&["ip", "netns", "exec", &h.ns, "nft", "list", "ruleset"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip netns exec BRIDGE program`: runs in the bridge's namespace, where a capture on
    /// `br0` sees every host's traffic.
    pub fn bridge_command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.bridge, program]);
        c
    }

    /// `ip netns exec NS program args...`: the program runs in the host's namespace with
    /// the same PID as the child (ip execs it), so killing the child kills the program.
    pub fn command(&self, h: &Host, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &h.ns]).arg(program);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends; the bridge goes with its namespace.
        // Processes in them were killed by their guards, which drop before the lab.
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "delete", &h.ns]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.bridge])
            .output();
    }
}

/// Room in the kernel's ARP table, raised for a test and restored when dropped.
///
/// The IPv4 neighbour table is one table for the whole kernel, shared by every namespace,
/// and `gc_thresh3` (default 1024) caps it: 50 hosts talking all-to-all need 50 x 49
/// entries, and past the cap the kernel drops packets ("neighbor table overflow!" in
/// dmesg; beacons fail with ENOBUFS, counted as UdpSndbufErrors). This is the one setting
/// outside the lab's namespaces the lab changes, only upwards, and only while a test needs
/// it.
pub struct NeighbourRoom {
    old: Vec<(String, String)>,
}

impl NeighbourRoom {
    /// Makes sure the table holds at least `entries` (thresholds 2 and 3 raised if lower).
    pub fn at_least(entries: u32) -> NeighbourRoom {
        let mut old = Vec::new();
        for (name, want) in [("gc_thresh2", entries), ("gc_thresh3", entries * 2)] {
            let path = format!("/proc/sys/net/ipv4/neigh/default/{name}");
            let Ok(cur) = std::fs::read_to_string(&path) else {
                continue;
            };
            let cur = cur.trim().to_string();
            if cur.parse::<u32>().is_ok_and(|c| c >= want) {
                continue;
            }
            std::fs::write(&path, want.to_string())
                .unwrap_or_else(|e| panic!("raise {path} to {want}: {e}"));
            old.push((path, cur));
        }
        NeighbourRoom { old }
    }

    /// What was raised, as `name old->new`.
    pub fn describe(&self) -> String {
        self.old
            .iter()
            .map(|(p, v)| {
                let now = std::fs::read_to_string(p).unwrap_or_default();
                format!("{} {v}->{}", p.rsplit('/').next().unwrap_or(p), now.trim())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for NeighbourRoom {
    fn drop(&mut self) {
        // Lower gc_thresh3 last: restore in reverse order.
        for (path, value) in self.old.iter().rev() {
            let _ = std::fs::write(path, value);
        }
    }
}

/// A router: a namespace with one leg on each lab it joins (10.77.N.254), forwarding IP
/// between them and, like any router, no broadcast: nodes on different labs cannot hear
/// each other's beacons. Dropping it deletes its namespace (and so its legs).
pub struct Router {
    /// Namespace name.
    pub ns: String,
}

impl Router {
    /// A router named after `tag`, forwarding, joined to nothing yet.
    pub fn new(tag: &str) -> Router {
        let ns = format!("{}{tag}-rt", prefix());
        run(&["ip", "netns", "add", &ns]);
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]);
        Router { ns }
    }

    /// The name of the router's leg on `lab`.
    pub fn leg(lab: &Lab) -> String {
        format!("s{}", lab.subnet)
    }

    /// The router's address on `lab`.
    pub fn address(lab: &Lab) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, lab.subnet, 254)
    }

    /// Gives the router a leg on `lab`'s bridge; the lab's hosts, present and future,
    /// route through it.
    pub fn join(&self, lab: &mut Lab) {
        let leg = Router::leg(lab);
        let gw = Router::address(lab);
        run(&[
            "ip",
            "-n",
            &lab.bridge,
            "link",
            "add",
            "rt",
            "type",
            "veth",
            "peer",
            "name",
            &leg,
            "netns",
            &self.ns,
        ]);
        run(&[
            "ip",
            "-n",
            &lab.bridge,
            "link",
            "set",
            "rt",
            "master",
            "br0",
            "up",
        ]);
        let cidr = format!("{gw}/24");
        run(&[
            "ip", "-n", &self.ns, "addr", "add", &cidr, "brd", "+", "dev", &leg,
        ]);
        run(&["ip", "-n", &self.ns, "link", "set", &leg, "up"]);
        lab.gateway = Some(gw);
        for h in &lab.hosts {
            run(&[
                "ip",
                "-n",
                &h.ns,
                "route",
                "add",
                "default",
                "via",
                &gw.to_string(),
            ]);
        }
    }

    /// Loads an nftables ruleset into the router's namespace (NAT, say).
    pub fn nft(&self, rules: &str) {
        nft_load(&self.ns, rules);
    }
}

/// Loads an nftables ruleset into namespace `ns` (`nft -f -`), panicking with nft's
/// message and the rules when it refuses them.
fn nft_load(ns: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nft");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .expect("write nft rules");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft -f in {ns}: {}\n{rules}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .output();
    }
}
