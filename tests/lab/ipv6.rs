//! IPv6 in the lab (the `i*` scenarios): hosts made IPv6-only, their addresses.
//!
//! A lab host starts with an IPv4 address on `veth0`; [`ipv6_only`] removes it, so nothing
//! but IPv6 (link-local, and a ULA in fd77::/16 when asked for) is left on the lab's
//! network. The bridge floods ff02::1 to every port, so beacons reach every host.

use std::net::Ipv6Addr;

use crate::support::*;

/// Makes `h` IPv6-only: its IPv4 address on veth0 removed and, if given, `ula`/64 added
/// (without duplicate address detection). Waits until its link-local address has passed
/// duplicate address detection (a tentative address cannot be bound) and returns it.
pub fn ipv6_only(h: &Host, ula: Option<Ipv6Addr>) -> Ipv6Addr {
    netns::run(&[
        "ip",
        "-n",
        &h.ns,
        "-4",
        "addr",
        "flush",
        "dev",
        netns::IFACE,
    ]);
    if let Some(ula) = ula {
        let cidr = format!("{ula}/64");
        netns::run(&[
            "ip",
            "-n",
            &h.ns,
            "-6",
            "addr",
            "add",
            &cidr,
            "dev",
            netns::IFACE,
            "nodad",
        ]);
    }
    let end = Instant::now() + DEADLINE;
    loop {
        let out = netns::run(&[
            "ip",
            "-n",
            &h.ns,
            "-6",
            "addr",
            "show",
            "dev",
            netns::IFACE,
            "scope",
            "link",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let ready = text
            .lines()
            .filter(|l| !l.contains("tentative"))
            .find_map(|l| l.trim().strip_prefix("inet6 fe80"))
            .and_then(|l| l.split('/').next())
            .and_then(|rest| format!("fe80{rest}").parse().ok());
        if let Some(ip) = ready {
            let v4 = netns::run(&["ip", "-n", &h.ns, "-4", "addr", "show", "dev", netns::IFACE]);
            assert!(v4.stdout.is_empty(), "{}: IPv4 left on veth0", h.ns);
            return ip;
        }
        assert!(
            Instant::now() < end,
            "{}: no IPv6 link-local address: {text}",
            h.ns
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The endpoint prefix of a mailbox on `ip` as Zyre writes it on veth0 (port to follow).
pub fn on_veth(ip: Ipv6Addr) -> String {
    if ip.segments()[0] & 0xffc0 == 0xfe80 {
        format!("tcp://{ip}%{}:", netns::IFACE)
    } else {
        format!("tcp://{ip}:")
    }
}

/// Like [`peer`], on the interface (name or address) `iface` instead of veth0.
pub fn peer_on(
    lab: &Lab,
    h: &Host,
    port: u16,
    name: &str,
    t: Timers,
    iface: &str,
    extra: &[&str],
) -> Peer {
    let mut cmd = lab.command(h, std::path::Path::new(RUST_PEER));
    cmd.args(["--interface", iface, "--port", &port.to_string()])
        .args(["--name", name])
        .args(t.args())
        .args(extra);
    Peer::spawn(name, cmd)
}
