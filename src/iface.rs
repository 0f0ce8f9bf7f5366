//! Choosing the network interface a node beacons on and binds its mailbox to.
//!
//! By name (`lo`, `eth0`) or by one of its IPv4 addresses; with none given,
//! `ZRE_INTERFACE`, then `ZSYS_INTERFACE` (what Zyre users already set), then the first
//! interface that is up, can broadcast and is not loopback. Only IPv4 is supported.

use std::net::Ipv4Addr;

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
    match std::fs::read_to_string(format!("/sys/class/net/{name}/flags")) {
        Ok(s) => u32::from_str_radix(s.trim().trim_start_matches("0x"), 16)
            .map(|f| f & 1 == 1)
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
    fn unknown_interface_is_a_clear_error() {
        let e = choose(Some("nope0")).unwrap_err().to_string();
        assert!(e.contains("nope0"), "{e}");
    }
}
