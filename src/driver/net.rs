//! The network a node beacons on: IPv4 broadcast on its interface's network, or IPv6
//! multicast to ff02::1 on its interface, as CZMQ's zbeacon does with `ZSYS_IPV6=1`.
//!
//! IPv6, as zbeacon (CZMQ 4.2.1, src/zbeacon.c) sets it up: two UDP sockets on the beacon
//! port. One is bound to `[::]` and joins ff02::1 on the interface: on Linux a socket
//! bound to one address never sees multicast. The other is bound to the interface's
//! address and sends, so a beacon's source address is the address our mailbox is bound
//! to, the one peers connect to. Beacons leave by the interface (IPV6_MULTICAST_IF) with a
//! hop limit of 1 (ff02::1 is link-scoped anyway). The payload is the same 22 bytes.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{io_err, Error};
use crate::iface::{Interface, Interface6};
use crate::proto::endpoint;

/// The link-local all-nodes group, CZMQ's default `ZSYS_IPV6_MCAST_ADDRESS`.
pub(crate) const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The interface and address family a node runs on.
pub(crate) enum Net {
    V4(Interface),
    V6(Interface6),
}

/// The beacon sockets: the one that hears, the one that sends, and where beacons go.
pub(crate) struct BeaconSockets {
    pub hear: UdpSocket,
    pub send: UdpSocket,
    pub to: SocketAddr,
}

impl Net {
    /// IPv6 mode: the interface's name, the zone of link-local endpoints.
    pub fn ipv6_zone(&self) -> Option<String> {
        match self {
            Net::V4(_) => None,
            Net::V6(i) => Some(i.name.clone()),
        }
    }

    /// Where the mailbox binds, port `port` (a number or `*`), as libzmq takes it (see
    /// [`Net::for_libzmq`]).
    pub fn mailbox_bind(&self, port: &str) -> String {
        match self {
            Net::V4(i) => format!("tcp://{}:{port}", i.ip),
            Net::V6(i) => {
                let index = i.index.to_string();
                format!("tcp://{}:{port}", endpoint::host(i.ip.into(), &index))
            }
        }
    }

    /// An endpoint as our libzmq takes it: in IPv6 mode a zone becomes our interface's
    /// index ([`endpoint::with_zone_index`]); a link-local address is reached through our
    /// interface whatever zone it was written with. Otherwise unchanged.
    pub fn for_libzmq(&self, ep: &str) -> String {
        match self {
            Net::V4(_) => ep.to_string(),
            Net::V6(i) => endpoint::with_zone_index(ep, i.index),
        }
    }

    /// The interface index link-local endpoints get for libzmq (0 for IPv4: none).
    pub fn zone_index(&self) -> u32 {
        match self {
            Net::V4(_) => 0,
            Net::V6(i) => i.index,
        }
    }

    /// Our mailbox endpoint on `port` in IPv6 mode, written as Zyre writes it; None for
    /// IPv4, whose endpoint is libzmq's own.
    pub fn endpoint(&self, port: u16) -> Option<String> {
        match self {
            Net::V4(_) => None,
            Net::V6(i) => Some(format!(
                "tcp://{}:{port}",
                endpoint::host(i.ip.into(), &i.name)
            )),
        }
    }

    /// Opens the beacon sockets on UDP `port`.
    pub fn beacon_sockets(&self, port: u16) -> Result<BeaconSockets, Error> {
        let ctx = || format!("beacon socket on UDP port {port}");
        // Several nodes on one host share the beacon port: each socket takes it with both
        // options.
        let socket = |domain| -> Result<Socket, Error> {
            let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(io_err(ctx()))?;
            s.set_reuse_address(true).map_err(io_err(ctx()))?;
            s.set_reuse_port(true).map_err(io_err(ctx()))?;
            s.set_nonblocking(true).map_err(io_err(ctx()))?;
            Ok(s)
        };
        match self {
            Net::V4(i) => {
                // Bound to 0.0.0.0: a broadcast reaches every node's socket.
                let s = socket(Domain::IPV4)?;
                s.set_broadcast(true).map_err(io_err(ctx()))?;
                let any = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, port);
                s.bind(&SocketAddr::from(any).into())
                    .map_err(io_err(ctx()))?;
                let hear: UdpSocket = s.into();
                let send = hear.try_clone().map_err(io_err("beacon socket"))?;
                let to = SocketAddrV4::new(i.broadcast, port).into();
                Ok(BeaconSockets { hear, send, to })
            }
            Net::V6(i) => {
                let on = |what: &str| format!("IPv6 beacon socket on {} ({what})", i.name);
                let hear = socket(Domain::IPV6)?;
                hear.set_only_v6(true).map_err(io_err(ctx()))?;
                hear.join_multicast_v6(&ALL_NODES, i.index)
                    .map_err(io_err(on("join ff02::1")))?;
                let any = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
                hear.bind(&SocketAddr::from(any).into())
                    .map_err(io_err(ctx()))?;
                let send = socket(Domain::IPV6)?;
                send.set_only_v6(true).map_err(io_err(ctx()))?;
                send.set_multicast_if_v6(i.index)
                    .map_err(io_err(on("multicast interface")))?;
                send.set_multicast_hops_v6(1)
                    .map_err(io_err(on("hop limit")))?;
                // Other nodes on this host hear us too.
                send.set_multicast_loop_v6(true)
                    .map_err(io_err(on("multicast loop")))?;
                let scope = if endpoint::is_link_local(&i.ip) {
                    i.index
                } else {
                    0
                };
                let from = SocketAddrV6::new(i.ip, port, 0, scope);
                send.bind(&SocketAddr::from(from).into())
                    .map_err(io_err(on(&format!("bind [{}]:{port}", i.ip))))?;
                let to = SocketAddrV6::new(ALL_NODES, port, 0, i.index).into();
                Ok(BeaconSockets {
                    hear: hear.into(),
                    send: send.into(),
                    to,
                })
            }
        }
    }

    /// The address of a beacon's sender, if it is on our network: IPv4, in our
    /// interface's network; IPv6, link-local and heard on our interface, or in one of our
    /// interface's networks. Acting on others would connect out of the network we were
    /// told to use (the IPv6 socket hears ff02::1 on every interface).
    pub fn accepts(&self, from: SocketAddr) -> Option<IpAddr> {
        match (self, from) {
            (Net::V4(i), SocketAddr::V4(a)) => i.contains(*a.ip()).then(|| (*a.ip()).into()),
            (Net::V6(i), SocketAddr::V6(a)) => {
                let ip = *a.ip();
                let ours = if endpoint::is_link_local(&ip) {
                    a.scope_id() == i.index
                } else {
                    i.contains(ip)
                };
                ours.then_some(ip.into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth() -> Net {
        let ula: Ipv6Addr = "fd77:1::1".parse().unwrap();
        Net::V6(Interface6 {
            name: "eth0".into(),
            index: 4,
            ip: "fe80::1".parse().unwrap(),
            networks: vec![(ula, 64), ("fe80::1".parse().unwrap(), 64)],
        })
    }

    #[test]
    fn ipv6_beacons_count_only_from_our_link() {
        let net = eth();
        let ll = |scope| SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 1, 0, scope));
        assert_eq!(net.accepts(ll(4)), Some("fe80::2".parse().unwrap()));
        assert_eq!(net.accepts(ll(5)), None, "another interface");
        let g = |ip: &str| SocketAddr::V6(SocketAddrV6::new(ip.parse().unwrap(), 1, 0, 0));
        assert!(net.accepts(g("fd77:1::9")).is_some());
        assert_eq!(net.accepts(g("fd77:2::9")), None);
        assert_eq!(net.accepts(g("::ffff:10.0.0.1")), None);
        assert_eq!(net.accepts("10.0.0.1:1".parse().unwrap()), None);
    }

    #[test]
    fn ipv6_beacons_leave_by_the_interface_with_hop_limit_1() {
        // On lo (nothing is sent): the options as the sockets carry them.
        let Some(lo) = crate::iface::find_in_v6(&crate::iface::list_v6().unwrap(), "lo") else {
            eprintln!("SKIPPED: no IPv6 address on lo");
            return;
        };
        let index = lo.index;
        let s = Net::V6(lo).beacon_sockets(47952).unwrap();
        let send = socket2::SockRef::from(&s.send);
        assert_eq!(send.multicast_hops_v6().unwrap(), 1);
        assert_eq!(send.multicast_if_v6().unwrap(), index);
        assert!(send.multicast_loop_v6().unwrap());
        assert_eq!(
            s.send.local_addr().unwrap(),
            "[::1]:47952".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            s.hear.local_addr().unwrap(),
            "[::]:47952".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(s.to, SocketAddrV6::new(ALL_NODES, 47952, 0, index).into());
    }

    #[test]
    fn ipv6_mailbox_binds_with_zone_and_is_written_as_zyre_does() {
        let net = eth();
        assert_eq!(net.mailbox_bind("*"), "tcp://fe80::1%4:*");
        assert_eq!(net.for_libzmq("tcp://fe80::2%eth0:5"), "tcp://fe80::2%4:5");
        assert_eq!(net.endpoint(49152).unwrap(), "tcp://fe80::1%eth0:49152");
        assert_eq!(net.ipv6_zone().as_deref(), Some("eth0"));
    }
}
