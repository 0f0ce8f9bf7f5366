//! The application's peer cache.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::proto::event::Event;
use crate::proto::UuidMap;

/// What the application knows about a peer, kept current by the driver so queries
/// (`peers`, `peer_groups`, ...) answer without a round trip to the driver thread.
#[derive(Debug, Clone)]
pub(crate) struct PeerInfo {
    pub name: Arc<str>,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub groups: BTreeSet<String>,
    /// When the application was told it entered.
    pub since: std::time::SystemTime,
}

/// The peers the application has seen ENTER and not yet EXIT, and our own groups.
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
                        name: name.clone(),
                        endpoint: endpoint.clone(),
                        headers: headers.clone(),
                        groups: BTreeSet::new(),
                        since: std::time::SystemTime::now(),
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
