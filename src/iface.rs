//! Choosing the network interface a node beacons on and binds its mailbox to.
//!
//! By name (`lo`, `eth0`) or by one of its IPv4 addresses; with none given,
//! `ZRE_INTERFACE`, then `ZSYS_INTERFACE` (what Zyre users already set), then the first
//! interface that is up, can broadcast and is not loopback. In IPv6 mode
//! ([`choose_v6`]) the same order, among interfaces that can multicast, by name or by one
//! of their IPv6 addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::Error;

/// The interface a node uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name, e.g. `lo`.
    pub name: String,
    /// Its IPv4 address: the mailbox binds here.
    pub ip: Ipv4Addr,
    /// Its netmask: beacons from outside this network are ignored.
    pub netmask: Ipv4Addr,
    /// Where beacons go: the interface's broadcast address (127.255.255.255 on `lo`).
    pub broadcast: Ipv4Addr,
}

impl Interface {
    /// True when `ip` lies in this interface's network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask);
        u32::from(ip) & mask == u32::from(self.ip) & mask
    }
}

/// Every IPv4 interface of this host, in the order the system lists them.
pub fn list() -> Result<Vec<Interface>, Error> {
    let all = if_addrs::get_if_addrs().map_err(|e| Error::Interface(e.to_string()))?;
    Ok(all
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) => {
                // Loopback has no broadcast flag, yet on Linux a datagram to its
                // network's broadcast address (127.255.255.255) reaches every socket on
                // `lo`: derive the address from the netmask. An address added without
                // `brd` reports 0.0.0.0 although the link can broadcast: derive it too.
                let derived = Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask));
                let broadcast = v4
                    .broadcast
                    .filter(|b| !b.is_unspecified())
                    .unwrap_or(derived);
                Some(Interface {
                    name: i.name,
                    ip: v4.ip,
                    netmask: v4.netmask,
                    broadcast,
                })
            }
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect())
}

fn is_up(name: &str) -> bool {
    // IFF_UP is bit 0 of the flags Linux shows in sysfs; elsewhere assume up.
    has_flags(name, 1)
}

/// True if the interface has every flag in `mask` (as Linux shows them in sysfs), or if
/// its flags cannot be read (not Linux).
fn has_flags(name: &str, mask: u32) -> bool {
    match std::fs::read_to_string(format!("/sys/class/net/{name}/flags")) {
        Ok(s) => u32::from_str_radix(s.trim().trim_start_matches("0x"), 16)
            .map(|f| f & mask == mask)
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// Finds an interface by name or IPv4 address among `candidates`.
pub fn find_in(candidates: &[Interface], wanted: &str) -> Option<Interface> {
    let ip: Option<Ipv4Addr> = wanted.parse().ok();
    candidates
        .iter()
        .find(|i| i.name == wanted || Some(i.ip) == ip)
        .cloned()
}

/// Resolves the interface to use: `wanted` if given, else the environment, else the
/// first up, broadcast-capable, non-loopback IPv4 interface.
pub fn choose(wanted: Option<&str>) -> Result<Interface, Error> {
    let all = list()?;
    let from_env = || {
        ["ZRE_INTERFACE", "ZSYS_INTERFACE"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|v| !v.trim().is_empty())
    };
    let wanted = wanted.map(str::to_string).or_else(from_env);
    match wanted {
        Some(w) => find_in(&all, w.trim()).ok_or_else(|| {
            let names: Vec<String> = all
                .iter()
                .map(|i| format!("{} ({})", i.name, i.ip))
                .collect();
            Error::Interface(format!(
                "no IPv4 interface named or addressed {w:?}; have: {}",
                names.join(", ")
            ))
        }),
        None => all
            .iter()
            .find(|i| !i.ip.is_loopback() && is_up(&i.name) && has_broadcast(i))
            .cloned()
            .ok_or_else(|| {
                Error::Interface(
                    "no usable interface (up, broadcast, not loopback); choose one, e.g. lo".into(),
                )
            }),
    }
}

fn has_broadcast(i: &Interface) -> bool {
    // A /32 or /31 has no room for a broadcast address.
    u32::from(i.netmask) < 0xFFFF_FFFE
}

/// The interface an IPv6 node uses (see [`choose_v6`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface6 {
    /// Its name, e.g. `eth0`: also the zone of link-local addresses reached through it.
    pub name: String,
    /// Its index: beacons go out and are heard on it alone.
    pub index: u32,
    /// The address the mailbox binds and beacons are sent from.
    pub ip: Ipv6Addr,
    /// Every IPv6 network of the interface, (address, prefix length): a beacon from a
    /// global address outside them is ignored (link-local ones are checked by index).
    pub networks: Vec<(Ipv6Addr, u8)>,
}

impl Interface6 {
    /// True when `ip` lies in one of this interface's IPv6 networks.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        self.networks.iter().any(|(net, len)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(*net) & mask
        })
    }
}

/// Every IPv6 address of this host as an [`Interface6`], in the order the system lists
/// them (which decides the address taken when an interface has several, as in CZMQ).
pub fn list_v6() -> Result<Vec<Interface6>, Error> {
    let all = if_addrs::get_if_addrs().map_err(|e| Error::Interface(e.to_string()))?;
    let v6 = |i: &if_addrs::Interface| match &i.addr {
        if_addrs::IfAddr::V6(a) => Some((a.ip, a.prefixlen)),
        _ => None,
    };
    Ok(all
        .iter()
        .filter_map(|i| {
            let (ip, _) = v6(i)?;
            let networks = all.iter().filter(|o| o.name == i.name).filter_map(v6);
            Some(Interface6 {
                name: i.name.clone(),
                index: i.index?,
                ip,
                networks: networks.collect(),
            })
        })
        .collect())
}

/// Finds an interface by name (its first IPv6 address) or by one of its IPv6 addresses,
/// written with or without `%zone`, among `candidates`.
pub fn find_in_v6(candidates: &[Interface6], wanted: &str) -> Option<Interface6> {
    let (addr, zone) = match wanted.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (wanted, None),
    };
    let ip: Option<Ipv6Addr> = addr.parse().ok();
    candidates
        .iter()
        .find(|i| i.name == wanted || (Some(i.ip) == ip && zone.is_none_or(|z| z == i.name)))
        .cloned()
}

/// Resolves the interface of an IPv6 node: `wanted` if given, else `ZRE_INTERFACE`, else
/// `ZSYS_INTERFACE`, else the first address of the first interface that is up, can
/// multicast and is not loopback. CZMQ chooses the same way: it takes the first IPv6
/// address the system lists for the interface, global or link-local.
pub fn choose_v6(wanted: Option<&str>) -> Result<Interface6, Error> {
    let all = list_v6()?;
    let from_env = || {
        ["ZRE_INTERFACE", "ZSYS_INTERFACE"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|v| !v.trim().is_empty())
    };
    match wanted.map(str::to_string).or_else(from_env) {
        Some(w) => find_in_v6(&all, w.trim()).ok_or_else(|| {
            let names: Vec<String> = all
                .iter()
                .map(|i| format!("{} ({})", i.name, i.ip))
                .collect();
            Error::Interface(format!(
                "no IPv6 interface named or addressed {w:?}; have: {}",
                names.join(", ")
            ))
        }),
        // IFF_UP | IFF_MULTICAST; loopback has no multicast flag.
        None => all
            .into_iter()
            .find(|i| !i.ip.is_loopback() && has_flags(&i.name, 0x1001))
            .ok_or_else(|| {
                Error::Interface(
                    "no usable IPv6 interface (up, multicast, not loopback); choose one".into(),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_by_name_and_ip_with_broadcast() {
        let all = list().unwrap();
        let lo = find_in(&all, "lo").expect("lo exists");
        assert_eq!(lo.broadcast, Ipv4Addr::new(127, 255, 255, 255));
        assert_eq!(find_in(&all, "127.0.0.1").unwrap().name, "lo");
        assert!(lo.contains(Ipv4Addr::new(127, 3, 2, 1)));
        assert!(!lo.contains(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(find_in(&all, "no-such-if").is_none());
    }

    #[test]
    fn ipv6_interfaces_are_found_by_name_and_address() {
        let lo = Interface6 {
            name: "lo".into(),
            index: 1,
            ip: Ipv6Addr::LOCALHOST,
            networks: vec![(Ipv6Addr::LOCALHOST, 128)],
        };
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let ula: Ipv6Addr = "fd77:1::1".parse().unwrap();
        let eth = Interface6 {
            name: "eth0".into(),
            index: 2,
            ip: ula,
            networks: vec![(ula, 64), (ll, 64)],
        };
        let eth_ll = Interface6 {
            ip: ll,
            ..eth.clone()
        };
        let all = [lo.clone(), eth.clone(), eth_ll.clone()];
        assert_eq!(find_in_v6(&all, "lo"), Some(lo.clone()));
        assert_eq!(find_in_v6(&all, "::1"), Some(lo));
        // By name: the first address listed.
        assert_eq!(find_in_v6(&all, "eth0"), Some(eth.clone()));
        assert_eq!(find_in_v6(&all, "fe80::1"), Some(eth_ll.clone()));
        assert_eq!(find_in_v6(&all, "fe80::1%eth0"), Some(eth_ll));
        assert_eq!(find_in_v6(&all, "fe80::1%eth1"), None);
        assert_eq!(find_in_v6(&all, "fd77:1::1"), Some(eth.clone()));
        assert!(eth.contains("fd77:1::99".parse().unwrap()));
        assert!(eth.contains("fe80::abcd".parse().unwrap()));
        assert!(!eth.contains("fd77:2::1".parse().unwrap()));
        // The host's own loopback, as the system lists it.
        let lo = find_in_v6(&list_v6().unwrap(), "lo");
        if let Some(lo) = lo {
            assert!(lo.contains(Ipv6Addr::LOCALHOST));
        }
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = choose(Some("nope0")).unwrap_err().to_string();
        assert!(e.contains("nope0"), "{e}");
    }
}
