//! Leader election in a group: Zyre's draft ELECT (id 8) and LEADER (id 9), an echo wave
//! with extinction in which the lowest challenger id wins. Pure: no sockets, no clock; the
//! node feeds it what happened and carries out the [`Action`]s it returns, in order.
//!
//! The wire rules are Zyre's (`zyre_node.c`, `zyre_election.c` in Zyre 2.0.1):
//! - A challenger id is the challenger's UUID as Zyre prints it (32 upper-case hex
//!   digits); ids compare as C strings (`strcmp`), which for such ids is the order of the
//!   UUIDs' bytes.
//! - A contester starts a wave: ELECT(own id) to every member of the group.
//! - ELECT(c) from p, c better than the current wave (or no wave): adopt it (p is the
//!   father) and pass ELECT(c) to every member but p. ELECT of the current wave counts;
//!   once every member has sent one, the wave's owner sends LEADER(own id) to every
//!   member, anyone else echoes ELECT(c) to its father. A worse challenger is ignored.
//! - LEADER(l): the first one is passed on, as LEADER(current wave), to every member
//!   (not by the leader itself); once every member has sent one, the election is over and
//!   the application hears who leads.
//!
//! Where this module goes beyond Zyre (none of it sends anything Zyre would not send in
//! some run; see README, "Where we differ from Zyre"):
//! - Who has sent is a set, not a count: a repeated message is not counted twice, a
//!   member that leaves is not waited for, and completion is looked at again when the
//!   group shrinks (Zyre looks only when a message arrives, and hangs).
//! - A second ELECT from a wave's own challenger, once its first was counted, is that
//!   challenger's new wave (it restarted: the group grew): adopted afresh. Zyre counts it
//!   on top of the old wave's and never completes.
//! - A contester never adopts a wave worse than its own id: it starts its own wave
//!   instead, so the lowest contester wins also when it was idle when the worse wave
//!   began (Zyre's idle contester adopts it, and the worse one leads).
//! - A contester that has adopted a better wave keeps it when the group grows (the better
//!   challenger restarts for that); Zyre restarts its own, losing the better wave.
//! - Our own id from someone else, with no wave of ours running, is stale and ignored
//!   (Zyre adopts it, and the group elects us a second time).
//! - The wave's challenger leaving the group ends the wave everywhere, and contesters
//!   start theirs (Zyre keeps the dead wave and ignores every worse one, for ever).
//! - A peer that drops us for our ELECT or LEADER (pyre does: ids 8 to 10 are unknown to
//!   it, so it sees a sequence gap, forgets us and says HELLO again) is marked
//!   non-electing: it is no longer sent election messages nor waited for.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use uuid::Uuid;

use super::codec::Body;
use super::event::uuid_hex;

/// At most this many peers are remembered as non-electing (the oldest is forgotten).
const MAX_NON_ELECTING: usize = 1024;

/// What the election decided, for the node to carry out in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this ELECT or LEADER to the peer.
    Send {
        /// The peer.
        to: Uuid,
        /// `Body::Elect` or `Body::Leader`.
        body: Body,
    },
    /// The group's election is over: `leader` leads it (our own UUID when we do). The
    /// node reports it only for us or a peer it knows, as Zyre does.
    Leader {
        /// The group.
        group: String,
        /// The leader.
        leader: Uuid,
    },
}

/// One wave we take part in: Zyre's `zyre_election_t`.
#[derive(Debug, Clone)]
struct Wave {
    /// The current active wave: the challenger's id as it came on the wire.
    caw: String,
    /// Who brought us the wave (None: it is ours).
    father: Option<Uuid>,
    /// Members that sent ELECT(caw) since we adopted it.
    erec: BTreeSet<Uuid>,
    /// Our echo (or, for our own wave, our LEADER) went out.
    echoed: bool,
    /// Members that sent LEADER since we adopted the wave.
    lrec: BTreeSet<Uuid>,
    /// The leader id of the last LEADER received.
    leader: Option<String>,
}

impl Wave {
    fn new(caw: String, father: Option<Uuid>) -> Self {
        Wave {
            caw,
            father,
            erec: BTreeSet::new(),
            echoed: false,
            lrec: BTreeSet::new(),
            leader: None,
        }
    }
}

/// A group's election state: Zyre's `zyre_group_t` contest flag, leader and election.
#[derive(Debug, Clone, Default)]
struct Group {
    /// We contest its leadership.
    contest: bool,
    /// We are in the group: only then do we take part.
    joined: bool,
    /// Its members as the election last saw them (see [`Elections::sync`]).
    members: BTreeSet<Uuid>,
    /// Who won its last election (ours when we did).
    leader: Option<Uuid>,
    /// The wave we take part in, if any.
    wave: Option<Wave>,
}

impl Group {
    /// Nothing to remember: not contested, no wave, no leader.
    fn idle(&self) -> bool {
        !self.contest && self.wave.is_none() && self.leader.is_none()
    }
}

/// Whether we sent a peer election messages, and whether it ever sent us one.
#[derive(Debug, Clone, Copy, Default)]
struct Contact {
    sent: bool,
    heard: bool,
}

/// Every group's election, and what we learned about peers that do not elect.
#[derive(Debug, Clone)]
pub struct Elections {
    own: Uuid,
    /// Our challenger id: our UUID as Zyre prints it.
    own_id: String,
    groups: BTreeMap<String, Group>,
    contacts: HashMap<Uuid, Contact>,
    /// Peers that dropped us for an election message, oldest first (bounded).
    non_electing: VecDeque<Uuid>,
}

/// `s` as C sees it: up to its first NUL (Zyre's strings are C strings).
fn c_str(s: &str) -> &[u8] {
    let b = s.as_bytes();
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// `a` is a better challenger than `b`: `strcmp(a, b) < 0`.
fn better(a: &str, b: &str) -> bool {
    c_str(a) < c_str(b)
}

/// `streq(a, b)`.
fn same(a: &str, b: &str) -> bool {
    c_str(a) == c_str(b)
}

/// A UUID written as Zyre writes it (32 upper-case hex digits), else None: Zyre finds the
/// leader by that exact string among its peers.
pub fn parse_id(id: &str) -> Option<Uuid> {
    let ok = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'));
    if ok {
        Uuid::try_parse(id).ok()
    } else {
        None
    }
}

impl Elections {
    /// The elections of the node `own`.
    pub fn new(own: Uuid) -> Self {
        Elections {
            own,
            own_id: uuid_hex(&own),
            groups: BTreeMap::new(),
            contacts: HashMap::new(),
            non_electing: VecDeque::new(),
        }
    }

    /// True if we contest the group's leadership.
    pub fn contests(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|g| g.contest)
    }

    /// Who won the group's last election, if it is still in the group (our UUID if we
    /// did); None while an election runs.
    pub fn leader(&self, group: &str) -> Option<Uuid> {
        self.groups
            .get(group)
            .filter(|g| g.wave.is_none())
            .and_then(|g| g.leader)
    }

    /// The challenger id of the wave we take part in, if any (for tests and logs).
    pub fn wave(&self, group: &str) -> Option<&str> {
        self.groups
            .get(group)
            .and_then(|g| g.wave.as_ref())
            .map(|w| w.caw.as_str())
    }

    /// The groups whose members the node must keep us told of ([`Elections::sync`]):
    /// those we contest, or have a wave or a leader in.
    pub fn tracked(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.joined && !g.idle())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// True if `peer` dropped us for an election message: it is not a member for us.
    pub fn is_non_electing(&self, peer: &Uuid) -> bool {
        self.non_electing.contains(peer)
    }

    /// We contest the group's leadership from now on (Zyre's `zyre_set_contest_in_group`).
    /// If we are in the group (`joined`) and it has members, our wave starts now, unless
    /// a better wave is under way or a better leader is known (Zyre waits for the next
    /// member to come: a running node would never start).
    pub fn contest(
        &mut self,
        group: &str,
        joined: bool,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
        let g = self.groups.entry(group.to_string()).or_default();
        if g.contest {
            return;
        }
        g.contest = true;
        if !joined {
            return;
        }
        if g.idle() || !g.joined {
            g.members = members.clone();
        }
        g.joined = true;
        let better_wave = g
            .wave
            .as_ref()
            .is_some_and(|w| better(&w.caw, &self.own_id));
        let better_leader = g
            .leader
            .is_some_and(|l| l != self.own && better(&uuid_hex(&l), &self.own_id));
        if !members.is_empty() && !better_wave && !better_leader {
            self.start(group, out);
        }
    }

    /// We joined the group. If we contest it and it has members, our wave starts (Zyre
    /// starts only when another member comes).
    pub fn joined(&mut self, group: &str, members: &BTreeSet<Uuid>, out: &mut Vec<Action>) {
        // Only a contested group has state before its first message.
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.joined = true;
        g.members = members.clone();
        if g.contest && !members.is_empty() {
            self.start(group, out);
        }
    }

    /// We left the group: we take no part in its elections any more (we stay a
    /// contester, for when we join again).
    pub fn left(&mut self, group: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            g.joined = false;
            g.wave = None;
            g.leader = None;
            g.members.clear();
            if !g.contest {
                self.groups.remove(group);
            }
        }
    }

    /// The group's members now (peers that said HELLO, are linked and in the group, not
    /// non-electing), after anything that may have changed them. A member gone: not
    /// waited for; if it led, or its wave was the one under way, contesters start theirs
    /// (and one left alone leads). A member come: a contester that is idle or runs its own
    /// wave starts it again, so the newcomer takes part (Zyre restarts on every HELLO and
    /// JOIN of the group).
    pub fn sync(&mut self, group: &str, members: &BTreeSet<Uuid>, out: &mut Vec<Action>) {
        let own_id = self.own_id.clone();
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if !g.joined || *members == g.members {
            return;
        }
        let added: Vec<Uuid> = members.difference(&g.members).copied().collect();
        let removed: Vec<Uuid> = g.members.difference(members).copied().collect();
        g.members = members.clone();
        let mut leader_left = false;
        for r in &removed {
            if g.leader == Some(*r) {
                g.leader = None;
                leader_left = true;
            }
            if g.wave.as_ref().is_some_and(|w| same(&w.caw, &uuid_hex(r))) {
                // Its LEADER can never come: the wave is over for everyone.
                g.wave = None;
                leader_left = true;
            }
        }
        if !removed.is_empty() {
            self.check(group, out);
        }
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let ours_or_none = g.wave.as_ref().is_none_or(|w| same(&w.caw, &own_id));
        if !ours_or_none && !added.is_empty() {
            // Someone else's wave, and members we did not pass it to when we adopted it:
            // they need our ELECT to complete (Zyre's passive member never sends one, and
            // the newcomer waits for ever unless a contester restarts).
            let w = g.wave.as_ref().expect("not ours_or_none");
            let body = Body::Elect {
                group: group.to_string(),
                challenger_id: w.caw.clone(),
            };
            let father = w.father;
            let to: Vec<Uuid> = added.into_iter().filter(|m| Some(*m) != father).collect();
            self.send_all(&to, body, out);
            return;
        }
        if !g.contest {
            self.drop_if_idle(group);
            return;
        }
        if !added.is_empty() && ours_or_none {
            self.start(group, out);
        } else if leader_left && g.wave.is_none() {
            if members.is_empty() {
                // Left alone after the leader went: we lead, as in Zyre.
                g.leader = Some(self.own);
                out.push(Action::Leader {
                    group: group.to_string(),
                    leader: self.own,
                });
            } else {
                self.start(group, out);
            }
        }
    }

    /// ELECT(group, challenger) from `from`, with the group's members now. Only for a
    /// group we are in (the node checks).
    pub fn on_elect(
        &mut self,
        group: &str,
        from: Uuid,
        challenger: &str,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
        self.heard(from);
        let own_id = self.own_id.clone();
        let g = self.require(group, members);
        let caw = g.wave.as_ref().map(|w| w.caw.clone());
        if same(challenger, &own_id) {
            // Only our own running wave takes our id; anything else is a stale echo.
            if caw.is_some_and(|c| same(&c, &own_id)) {
                self.count(group, from, out);
            }
            return;
        }
        let superior = caw.as_deref().is_none_or(|c| better(challenger, c));
        if superior && g.contest && better(&own_id, challenger) {
            // A wave worse than our id (and we run none, or a worse one): ours instead.
            // Zyre's idle contester adopts the worse one.
            self.start(group, out);
            return;
        }
        let restarted = !superior
            && g.wave.as_ref().is_some_and(|w| {
                same(&w.caw, challenger)
                    && same(&uuid_hex(&from), challenger)
                    && w.erec.contains(&from)
            });
        if superior || restarted {
            g.wave = Some(Wave::new(challenger.to_string(), Some(from)));
            g.leader = None;
            let body = Body::Elect {
                group: group.to_string(),
                challenger_id: challenger.to_string(),
            };
            let to: Vec<Uuid> = members.iter().copied().filter(|m| *m != from).collect();
            self.send_all(&to, body, out);
            self.count(group, from, out);
        } else if caw.is_some_and(|c| same(&c, challenger)) {
            self.count(group, from, out);
        }
        // A worse challenger is ignored.
    }

    /// LEADER(group, leader) from `from`, with the group's members now.
    pub fn on_leader(
        &mut self,
        group: &str,
        from: Uuid,
        leader: &str,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
        self.heard(from);
        let own_id = self.own_id.clone();
        let g = self.require(group, members);
        let Some(w) = g.wave.as_mut() else {
            // Zyre logs "election has been reset" and ignores it too.
            self.drop_if_idle(group);
            return;
        };
        let first = w.lrec.is_empty();
        w.lrec.insert(from);
        w.leader = Some(leader.to_string());
        if first && !same(leader, &own_id) {
            // Passed on as LEADER(our wave), to every member, the sender too (Zyre).
            let body = Body::Leader {
                group: group.to_string(),
                leader_id: w.caw.clone(),
            };
            let to: Vec<Uuid> = members.iter().copied().collect();
            self.send_all(&to, body, out);
        }
        self.check(group, out);
    }

    /// A ready peer said HELLO again: it forgot us. If we had sent it ELECT or LEADER and
    /// it never sent us one, that is why (pyre drops a peer that sends ids 8 to 10): it is
    /// non-electing from now on. True if so.
    pub fn rehello(&mut self, peer: Uuid) -> bool {
        let c = self.contacts.remove(&peer).unwrap_or_default();
        if c.sent && !c.heard && !self.is_non_electing(&peer) {
            if self.non_electing.len() >= MAX_NON_ELECTING {
                self.non_electing.pop_front();
            }
            self.non_electing.push_back(peer);
            return true;
        }
        false
    }

    /// The peer is gone: forget what we sent it (not whether it elects).
    pub fn forget(&mut self, peer: &Uuid) {
        self.contacts.remove(peer);
    }

    // ---- internals ---------------------------------------------------------------------

    /// The group's state for a message about it (we are in it). Members of a group we
    /// did not track ([`Elections::tracked`]) are taken as they are now; a tracked one's
    /// are current already, and its changes are [`Elections::sync`]'s to act on.
    fn require(&mut self, group: &str, members: &BTreeSet<Uuid>) -> &mut Group {
        let g = self.groups.entry(group.to_string()).or_default();
        if !g.joined || g.idle() {
            g.joined = true;
            g.members = members.clone();
        }
        g
    }

    fn drop_if_idle(&mut self, group: &str) {
        if self.groups.get(group).is_some_and(Group::idle) {
            self.groups.remove(group);
        }
    }

    fn heard(&mut self, from: Uuid) {
        self.contacts.entry(from).or_default().heard = true;
        // It elects after all (a restarted node, not pyre).
        self.non_electing.retain(|p| *p != from);
    }

    fn send_all(&mut self, to: &[Uuid], body: Body, out: &mut Vec<Action>) {
        for peer in to {
            self.contacts.entry(*peer).or_default().sent = true;
            out.push(Action::Send {
                to: *peer,
                body: body.clone(),
            });
        }
    }

    /// Our wave: ELECT(own id) to every member (nothing goes when there is none).
    fn start(&mut self, group: &str, out: &mut Vec<Action>) {
        let own_id = self.own_id.clone();
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.wave = Some(Wave::new(own_id.clone(), None));
        g.leader = None;
        let to: Vec<Uuid> = g.members.iter().copied().collect();
        let body = Body::Elect {
            group: group.to_string(),
            challenger_id: own_id,
        };
        self.send_all(&to, body, out);
    }

    /// ELECT of the current wave from `from`.
    fn count(&mut self, group: &str, from: Uuid, out: &mut Vec<Action>) {
        if let Some(w) = self.groups.get_mut(group).and_then(|g| g.wave.as_mut()) {
            w.erec.insert(from);
        }
        self.check(group, out);
    }

    /// Completion: every member sent ELECT (echo, or LEADER for our own wave), or every
    /// member sent LEADER (the election is over).
    fn check(&mut self, group: &str, out: &mut Vec<Action>) {
        let own_id = self.own_id.clone();
        let own = self.own;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.members.is_empty() {
            // Nobody to hear from: Zyre completes only on a message, never alone.
            return;
        }
        let members = g.members.clone();
        let Some(w) = g.wave.as_mut() else {
            return;
        };
        if !w.echoed && members.is_subset(&w.erec) {
            w.echoed = true;
            let caw = w.caw.clone();
            let father = w.father;
            if same(&caw, &own_id) {
                let body = Body::Leader {
                    group: group.to_string(),
                    leader_id: caw,
                };
                let to: Vec<Uuid> = members.iter().copied().collect();
                self.send_all(&to, body, out);
            } else if let Some(father) = father {
                let body = Body::Elect {
                    group: group.to_string(),
                    challenger_id: caw,
                };
                self.send_all(&[father], body, out);
            }
        }
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some(w) = g.wave.as_ref() else {
            return;
        };
        if !w.lrec.is_empty() && members.is_subset(&w.lrec) {
            let leader = w.leader.clone().unwrap_or_default();
            g.wave = None;
            let leader = if same(&leader, &own_id) {
                Some(own)
            } else {
                std::str::from_utf8(c_str(&leader)).ok().and_then(parse_id)
            };
            g.leader = leader;
            if let Some(leader) = leader {
                out.push(Action::Leader {
                    group: group.to_string(),
                    leader,
                });
            }
            self.drop_if_idle(group);
        }
    }
}
