//! Mailbox endpoints over IPv6, written and read as Zyre does with `ZSYS_IPV6=1`.
//!
//! Zyre writes an IPv6 endpoint without brackets, `tcp://fe80::1%eth0:49152`: the port is
//! after the last `:`, which is also how libzmq splits it (libzmq 4.3.4 connects to that
//! form and to `tcp://[fe80::1%eth0]:49152` alike). A link-local address needs a zone, the
//! interface it is reached through, and that is a local name: Zyre cuts the zone out of
//! the endpoint its HELLO carries (`tcp://fe80::1:49152`), and a node that connects to a
//! link-local endpoint adds its own interface (zyre_peer.c, zyre_node.c).
//!
//! Here every endpoint of a peer is kept in one canonical form, [`local`], so that
//! endpoints learned from a beacon, a HELLO, gossip or the command line compare equal when
//! they name the same mailbox; [`for_hello`] is the form our HELLO carries. Pure string
//! work: nothing here resolves a name or opens a socket. IPv4 endpoints and host names pass
//! through unchanged.

use std::net::{IpAddr, Ipv6Addr};

/// The parts of `tcp://HOST:PORT` whose host is an IPv6 address, with or without brackets
/// and zone: (address, zone, port). `None` for anything else.
pub fn parse_ipv6(endpoint: &str) -> Option<(Ipv6Addr, Option<&str>, u16)> {
    let (host, port) = endpoint.strip_prefix("tcp://")?.rsplit_once(':')?;
    let port = port.parse().ok()?;
    // Brackets only as a pair, as libzmq strips them.
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None => host,
    };
    let (addr, zone) = match host.split_once('%') {
        Some((a, z)) if !z.is_empty() => (a, Some(z)),
        Some(_) => return None,
        None => (host, None),
    };
    Some((addr.parse().ok()?, zone, port))
}

/// True for fe80::/10, the addresses that mean nothing without a zone.
pub fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// The host part of an endpoint for a peer at `ip` reached through interface `zone`:
/// IPv4 (also an IPv4-mapped IPv6 address) as dotted quad, IPv6 as Zyre writes it, with
/// `%zone` when link-local.
pub fn host(ip: IpAddr, zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None if is_link_local(&v6) => format!("{v6}%{zone}"),
            None => v6.to_string(),
        },
    }
}

/// `endpoint` as this node connects to it and compares it, on interface `zone`: an IPv6
/// host is written without brackets; a link-local one gets `%zone` (replacing any zone
/// the endpoint came with, which named an interface of whoever wrote it); any other loses
/// its zone. Everything else is returned unchanged.
pub fn local(endpoint: &str, zone: &str) -> String {
    match parse_ipv6(endpoint) {
        Some((ip, _, port)) => format!("tcp://{}:{port}", host(IpAddr::V6(ip), zone)),
        None => endpoint.to_string(),
    }
}

/// Our endpoint as our HELLO carries it: an IPv6 host without brackets and without zone
/// (`tcp://fe80::1:49152`), as Zyre sends it and as Zyre's receiver expects before it adds
/// its own interface. Everything else is returned unchanged.
pub fn for_hello(endpoint: &str) -> String {
    match parse_ipv6(endpoint) {
        Some((ip, _, port)) => format!("tcp://{ip}:{port}"),
        None => endpoint.to_string(),
    }
}

/// `endpoint` with its zone, if it has one, written as the interface index `index`: the
/// libzmq the `zmq` crate builds (zeromq-src 4.3.4) is compiled without
/// `HAVE_IF_NAMETOINDEX` and refuses an interface name as zone (EINVAL), where it takes
/// a number. For libzmq only: events and HELLOs keep the name. Everything else unchanged.
pub fn with_zone_index(endpoint: &str, index: u32) -> String {
    match parse_ipv6(endpoint) {
        Some((ip, Some(_), port)) => format!("tcp://{ip}%{index}:{port}"),
        _ => endpoint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LL: &str = "fe80::5c4a:2ff:fe11:22";

    #[test]
    fn every_written_form_is_parsed() {
        let ll: Ipv6Addr = LL.parse().unwrap();
        for (text, zone) in [
            (format!("tcp://{LL}:49152"), None),
            (format!("tcp://{LL}%veth0:49152"), Some("veth0")),
            (format!("tcp://[{LL}]:49152"), None),
            (format!("tcp://[{LL}%7]:49152"), Some("7")),
        ] {
            assert_eq!(parse_ipv6(&text), Some((ll, zone, 49152)), "{text}");
        }
        for not in [
            "tcp://10.0.0.1:5670",
            "tcp://host:5670",
            "tcp://[fe80::1:5670",
            "tcp://fe80::1]:5670",
            "tcp://fe80::1%:5670",
            "tcp://fe80::1",
            "udp://[::1]:5",
            "tcp://[::1]:port",
        ] {
            assert_eq!(parse_ipv6(not), None, "{not}");
        }
    }

    #[test]
    fn link_local_endpoints_get_our_zone_in_zyres_form() {
        // As zyre_peer.c connects: the HELLO's endpoint plus our interface.
        let want = format!("tcp://{LL}%veth0:49152");
        for given in [
            format!("tcp://{LL}:49152"),
            format!("tcp://[{LL}]:49152"),
            format!("tcp://{LL}%eth3:49152"),
            format!("tcp://[{LL}%eth3]:49152"),
            format!("tcp://[{LL}%veth0]:49152"),
            want.clone(),
        ] {
            assert_eq!(local(&given, "veth0"), want, "{given}");
        }
        // Not fe80:: exactly, but in fe80::/10.
        assert_eq!(local("tcp://febf::1:1", "x"), "tcp://febf::1%x:1");
    }

    #[test]
    fn other_endpoints_are_kept_or_lose_brackets_and_zone() {
        assert_eq!(local("tcp://[fd77:1::2]:5", "v"), "tcp://fd77:1::2:5");
        assert_eq!(local("tcp://fd77:1::2%v:5", "v"), "tcp://fd77:1::2:5");
        assert_eq!(local("tcp://[::1]:5", "lo"), "tcp://::1:5");
        // RFC 5952 text, as getnameinfo writes it, whatever came in.
        assert_eq!(
            local("tcp://[FD77:0001:0:0:0:0:0:0002]:5", "v"),
            "tcp://fd77:1::2:5"
        );
        for same in ["tcp://10.77.70.1:5670", "tcp://host.example:1", "junk"] {
            assert_eq!(local(same, "v"), same);
            assert_eq!(for_hello(same), same);
        }
    }

    #[test]
    fn hello_carries_no_zone_and_no_brackets() {
        // What Zyre sends: zyre_node.c cuts from '%' to the last ':'.
        assert_eq!(
            for_hello(&format!("tcp://{LL}%veth0:49152")),
            format!("tcp://{LL}:49152")
        );
        // Where Zyre's cut would leave "tcp://[fe80::..:49152", ours is well formed.
        assert_eq!(
            for_hello(&format!("tcp://[{LL}%veth0]:49152")),
            format!("tcp://{LL}:49152")
        );
        assert_eq!(for_hello("tcp://[fd77:1::2]:5"), "tcp://fd77:1::2:5");
        // And it reads back as the same mailbox.
        let ours = format!("tcp://{LL}%veth0:49152");
        assert_eq!(local(&for_hello(&ours), "veth0"), ours);
    }

    #[test]
    fn libzmq_gets_the_zone_as_a_number() {
        assert_eq!(
            with_zone_index(&format!("tcp://{LL}%veth0:49152"), 7),
            format!("tcp://{LL}%7:49152")
        );
        assert_eq!(
            with_zone_index(&format!("tcp://[{LL}%veth0]:1"), 7),
            format!("tcp://{LL}%7:1")
        );
        for same in ["tcp://fd77:1::2:5", "tcp://10.0.0.1:5", "tcp://[::1]:5"] {
            assert_eq!(with_zone_index(same, 7), same);
        }
    }

    #[test]
    fn beacon_sources_become_hosts() {
        let ll: Ipv6Addr = LL.parse().unwrap();
        assert_eq!(host(ll.into(), "veth0"), format!("{LL}%veth0"));
        let ula: Ipv6Addr = "fd77:1::2".parse().unwrap();
        assert_eq!(host(ula.into(), "veth0"), "fd77:1::2");
        let v4 = Ipv4Addr::new(10, 77, 70, 2);
        assert_eq!(host(v4.into(), "veth0"), "10.77.70.2");
        assert_eq!(host(v4.to_ipv6_mapped().into(), "veth0"), "10.77.70.2");
    }
}
