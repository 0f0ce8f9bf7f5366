//! The application's peer cache.

use std::collections::BTreeSet;

use crate::node::PeerInfo;
use crate::proto::event::Event;
use crate::proto::UuidMap;

/// The peers the application has seen ENTER and not yet EXIT, kept current by the driver
/// so queries (`peers`, `peer_groups`, ...) answer without a round trip to the driver
/// thread, and our own groups. A peer's `rtt` is the state machine's, read on demand.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub peers: UuidMap<PeerInfo>,
    pub own_groups: BTreeSet<String>,
}

impl Directory {
    pub(super) fn apply(&mut self, event: &Event) {
        match event {
            Event::Enter {
                peer,
                name,
                headers,
                endpoint,
            } => {
                self.peers.insert(
                    *peer,
                    PeerInfo {
                        uuid: *peer,
                        name: name.to_string(),
                        endpoint: endpoint.clone(),
                        headers: headers.clone(),
                        groups: BTreeSet::new(),
                        since: std::time::SystemTime::now(),
                        rtt: None,
                    },
                );
            }
            Event::Exit { peer, .. } => {
                self.peers.remove(peer);
            }
            Event::Join { peer, group, .. } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.groups.insert(group.clone());
                }
            }
            Event::Leave { peer, group, .. } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.groups.remove(group);
                }
            }
            Event::Stop => self.peers.clear(),
            _ => {}
        }
    }
}
