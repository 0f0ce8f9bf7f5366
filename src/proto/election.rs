//! Leader election in a group: Zyre's draft ELECT (id 8) and LEADER (id 9), an echo wave
//! with extinction in which the lowest challenger id wins. Pure: no sockets, no clock
//! (time comes in as `now`); the node feeds it what happened and carries out the
//! [`Action`]s it returns, in order.
//!
//! The wire rules are Zyre's (`zyre_node.c` and `zyre_election.c` in Zyre 2.0.1):
//! - A challenger id is the challenger's UUID as Zyre prints it (32 upper-case hex
//!   digits). Ids compare as C strings (`strcmp`), which for such ids is the order of the
//!   UUIDs' bytes: the lowest UUID wins.
//! - A contester starts a wave: ELECT(own id) to every member of the group. It does so
//!   when a member comes (its HELLO lists the group, or it JOINs), and when the leader
//!   leaves the group or exits (alone, it leads at once).
//! - ELECT(c) from p, c better than the current wave (or no wave): adopt it (p is the
//!   father) and pass ELECT(c) to every member but p. ELECT of the current wave counts;
//!   once every member has sent one, the wave's owner sends LEADER(own id) to every
//!   member, anyone else echoes ELECT(c) to its father. A worse challenger is ignored.
//! - LEADER: the first one is passed on, as LEADER(current wave), to every member (not by
//!   the leader itself); once every member has sent one, the election is over and the
//!   application hears who leads (for a peer, only if it is known).
//!
//! Zyre's election stalls for ever whenever a member misses a message or gets one twice
//! (it counts messages, with no timeout, and a restarted wave has the same id as the
//! old one). We send nothing Zyre would not send in some run, and add:
//! - Who has sent is a set, not a count: a message repeated is not counted twice, a member
//!   that leaves is not waited for, and completion is looked at again when one leaves.
//! - A member that comes while a wave runs is sent what the others had from us (ELECT,
//!   and LEADER once we sent it), so the wave goes on with it; Zyre restarts (its
//!   contester) or sends it nothing (its passive member; the newcomer then waits).
//! - A member that sends a wave's ELECT (or LEADER) a second time adopted the wave again,
//!   having dropped it (Zyre's contester drops its election whenever a member comes): it
//!   gets ours again, once. A second ELECT from the wave's own challenger is its new wave:
//!   our part goes again. Zyre counts either on top and never completes.
//! - With the election over, a member still in it (it met us late) is answered once with
//!   ELECT and LEADER of the leader's id, which is what it waits for; Zyre ignores it.
//! - The challenger's own LEADER decides the wave (Zyre waits for every member's, and one
//!   may never come). LEADER of another id than the wave's is ignored (Zyre counts it,
//!   and can name an extinct challenger leader). An ELECT of our own id with no wave of
//!   ours running is stale and ignored (Zyre adopts it, and elects us again).
//! - A wave quiet for [`STALL`] sends again, to the members that have not answered, our
//!   ELECT (or LEADER), after 1, 2 and 4 s; one that had a LEADER is then done. Zyre
//!   has no timeout; after the third try, neither have we.
//! - A contester never adopts a wave worse than its own id while no better leader is
//!   known: it starts its own instead (Zyre's idle contester adopts it: the worse one
//!   leads). With the election over and a better leader known, a newcomer is the
//!   leader's to welcome (it restarts): we do not restart too, and worse waves are held
//!   until the leader goes.
//! - A contester's wave for a newcomer starts once the group's election traffic has been
//!   quiet for [`SETTLE`] (at once if it is): a wave restarted while a member is still
//!   finishing the last one, with the same id, is what stalls Zyre.
//! - The wave's challenger leaving ends the wave everywhere, and contesters start theirs
//!   (Zyre keeps the dead wave and ignores every worse one, for ever).
//! - A peer that drops us for our ELECT or LEADER (pyre does: ids 8 to 10 are unknown to
//!   it, so it sees a sequence gap, forgets us and says HELLO again) is non-electing
//!   from then on: never sent election messages again, nor waited for.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::codec::Body;
use super::event::uuid_hex;
use super::node::later;

/// How long a group's election traffic must have been quiet before a contester starts a
/// wave for a newcomer: longer than any member takes to finish the last wave (a few
/// message delays).
pub const SETTLE: Duration = Duration::from_millis(500);

/// A wave that has seen no ELECT or LEADER for this long is stalled: what members have
/// not answered is sent to them again (see [`Elections::handle_timeout`]), after this,
/// twice this and four times this, then never again.
pub const STALL: Duration = Duration::from_secs(1);

/// How many times a stalled wave's messages are sent again.
const STALL_RETRIES: u32 = 3;

/// At most this many peers are remembered as non-electing (the oldest is forgotten).
const MAX_NON_ELECTING: usize = 1024;

/// At most this many worse challengers are held while a leader is known.
const MAX_WORSE: usize = 64;

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
    /// We sent LEADER to every member (ours, or the first one passed on).
    leader_sent: bool,
    /// Members that sent LEADER (of this wave) since we adopted it.
    lrec: BTreeSet<Uuid>,
    /// Members we sent our ELECT, or our LEADER, again (see [`Elections::count`]).
    resent: BTreeSet<Uuid>,
    lresent: BTreeSet<Uuid>,
    /// Times the wave stalled and its messages went again.
    retries: u32,
}

impl Wave {
    fn new(caw: String, father: Option<Uuid>) -> Self {
        Wave {
            caw,
            father,
            erec: BTreeSet::new(),
            echoed: false,
            leader_sent: false,
            lrec: BTreeSet::new(),
            resent: BTreeSet::new(),
            lresent: BTreeSet::new(),
            retries: 0,
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
    /// Who won its last election (we, when we did).
    leader: Option<Uuid>,
    /// The wave we take part in, if any.
    wave: Option<Wave>,
    /// The election over (no wave, a leader known): members that passed us an ELECT of
    /// the leader's id (counted if the leader's own ELECT comes: a new wave of it), and
    /// those we answered with ELECT, and with LEADER.
    held: BTreeSet<Uuid>,
    answered: BTreeSet<Uuid>,
    lanswered: BTreeSet<Uuid>,
    /// The election over: ELECTs of challengers worse than the leader (challenger id ->
    /// senders), taken up if the leader goes (bounded by [`MAX_WORSE`]).
    worse: BTreeMap<String, BTreeSet<Uuid>>,
    /// When the last ELECT or LEADER of this group went out or came in.
    active_at: Option<Instant>,
    /// A contester's wave waits for the group to be quiet for [`SETTLE`].
    restart: bool,
}

impl Group {
    /// Nothing to remember: not contested, no wave, no leader.
    fn idle(&self) -> bool {
        !self.contest && self.wave.is_none() && self.leader.is_none()
    }

    /// When its timer is due: a wave waiting for quiet, or a wave that may stall.
    fn deadline(&self) -> Option<Instant> {
        let active = self.active_at?;
        if self.restart {
            return Some(later(active, SETTLE));
        }
        let w = self.wave.as_ref().filter(|w| w.retries < STALL_RETRIES)?;
        Some(later(active, STALL.saturating_mul(1 << w.retries)))
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
    /// those we are in and contest, or have a wave or a leader in.
    pub fn tracked(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.joined && !g.idle())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// When [`Elections::handle_timeout`] is due next (a contester's wave waiting for
    /// quiet).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.groups.values().filter_map(Group::deadline).min()
    }

    /// The groups whose timer is due at `now`.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.deadline().is_some_and(|t| t <= now))
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
        now: Instant,
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
        if !members.is_empty() && !better_wave && !self.better_leader(group) {
            self.start(group, now, out);
        }
    }

    /// We joined the group. If we contest it and it has members, our wave starts (Zyre
    /// starts only when another member comes).
    pub fn joined(
        &mut self,
        group: &str,
        now: Instant,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
        // Only a contested group has state before its first message.
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.joined = true;
        g.members = members.clone();
        if g.contest && !members.is_empty() {
            self.start(group, now, out);
        }
    }

    /// We left the group: we take no part in its elections any more (we stay a
    /// contester, for when we join again).
    pub fn left(&mut self, group: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            let contest = g.contest;
            *g = Group {
                contest,
                ..Group::default()
            };
            if !contest {
                self.groups.remove(group);
            }
        }
    }

    /// The group's members now (peers that said HELLO, are linked and in the group, not
    /// non-electing), after anything that may have changed them.
    ///
    /// A member gone is not waited for. If it led, or its wave was the one under way,
    /// contesters start theirs (one left alone leads, as in Zyre).
    ///
    /// A member come while a wave runs is sent what every member had from us in this
    /// wave. With no wave, a contester starts one (once the group is quiet), as in Zyre,
    /// so that the newcomer learns who leads or wins; not when it knows a better leader,
    /// whose job that is.
    pub fn sync(
        &mut self,
        group: &str,
        now: Instant,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
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
                g.held.clear();
                g.answered.clear();
                g.lanswered.clear();
                leader_left = true;
            }
            if g.wave.as_ref().is_some_and(|w| same(&w.caw, &uuid_hex(r))) {
                // Its LEADER can never come: the wave is over for everyone.
                g.wave = None;
                leader_left = true;
            }
        }
        if !removed.is_empty() {
            self.check(group, now, out);
        }
        let own = self.own;
        let better_leader = self.better_leader(group);
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if let Some(w) = &g.wave {
            let to: Vec<Uuid> = added.into_iter().filter(|m| Some(*m) != w.father).collect();
            let caw = w.caw.clone();
            let leader_sent = w.leader_sent;
            self.catch_up(group, now, &to, &caw, leader_sent, out);
            return;
        }
        if leader_left {
            // Waves that started while we still held the leader: taken up now, as if
            // their ELECTs came now, best first (the challenger's own ELECT first). A
            // contester better than all of them starts its own, counting what came of it.
            let worse = std::mem::take(&mut g.worse);
            let own_id = uuid_hex(&own);
            let ours = g.contest
                && !members.is_empty()
                && worse.keys().next().is_none_or(|b| !better(b, &own_id));
            if ours {
                self.start(group, now, out);
                let senders = worse.get(&own_id).cloned().unwrap_or_default();
                for s in senders.into_iter().filter(|s| members.contains(s)) {
                    self.count(group, now, s, out);
                }
            } else {
                for (c, senders) in worse {
                    let (own, others): (Vec<Uuid>, Vec<Uuid>) = senders
                        .into_iter()
                        .filter(|s| members.contains(s))
                        .partition(|s| same(&uuid_hex(s), &c));
                    for s in own.into_iter().chain(others) {
                        self.on_elect(group, now, s, &c, members, out);
                    }
                }
            }
        }
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.wave.is_some() {
            return;
        }
        if !g.contest {
            self.drop_if_idle(group);
            return;
        }
        if leader_left {
            if members.is_empty() {
                // Left alone after the leader went: we lead, as in Zyre.
                g.leader = Some(own);
                g.restart = false;
                out.push(Action::Leader {
                    group: group.to_string(),
                    leader: own,
                });
            } else {
                self.start(group, now, out);
            }
        } else if !added.is_empty() && !better_leader {
            self.start_when_quiet(group, now, out);
        }
    }

    /// A contester's wave waiting for quiet: started if the group has been quiet for
    /// [`SETTLE`] and no wave runs (one that runs takes newcomers in).
    pub fn handle_timeout(
        &mut self,
        group: &str,
        now: Instant,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
        self.sync(group, now, members, out);
        let better_leader = self.better_leader(group);
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.deadline().is_none_or(|t| now < t) {
            return;
        }
        if g.restart {
            g.restart = false;
            if g.joined && g.contest && g.wave.is_none() && !g.members.is_empty() && !better_leader
            {
                self.start(group, now, out);
            }
            return;
        }
        self.resend(group, now, out);
    }

    /// ELECT(group, challenger) from `from`, with the group's members now. Only for a
    /// group we are in (the node checks).
    pub fn on_elect(
        &mut self,
        group: &str,
        now: Instant,
        from: Uuid,
        challenger: &str,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
        self.heard(from);
        let own_id = self.own_id.clone();
        let better_leader = self.better_leader(group);
        let own = self.own;
        let g = self.require(group, members);
        g.active_at = Some(now);
        let from_challenger = same(&uuid_hex(&from), challenger);
        if let (None, Some(leader)) = (&g.wave, g.leader) {
            // The election is over for us.
            let leader_id = uuid_hex(&leader);
            if same(challenger, &leader_id) {
                // A member still in a wave of the leader (it met us late, or the leader
                // started one for a newcomer): it waits for our ELECT and LEADER. Zyre
                // adopts the wave again, which only its challenger can finish.
                if from_challenger {
                    // The leader's wave (a new one, maybe): everyone who passed it on
                    // to us is answered again, for it.
                    g.answered.clear();
                    g.lanswered.clear();
                    let held: Vec<Uuid> = std::mem::take(&mut g.held).into_iter().collect();
                    for m in held {
                        self.answer(group, now, m, true, false, out);
                    }
                    self.answer(group, now, from, true, true, out);
                } else {
                    g.held.insert(from);
                    self.answer(group, now, from, true, false, out);
                }
                return;
            }
            if !better(challenger, &leader_id) {
                // Worse than the leader: a contester starting for a newcomer (the leader
                // does too, or counters), or because it saw the leader go before we did.
                // Held: Zyre adopts it, and it leads until the leader's wave comes.
                if g.worse.len() < MAX_WORSE || g.worse.contains_key(challenger) {
                    g.worse
                        .entry(challenger.to_string())
                        .or_default()
                        .insert(from);
                }
                if leader == own {
                    // Ours to answer, once the group is quiet.
                    self.start_when_quiet(group, now, out);
                }
                return;
            }
        }
        let g = self.groups.get_mut(group).expect("required above");
        let caw = g.wave.as_ref().map(|w| w.caw.clone());
        if same(challenger, &own_id) {
            // Only our own running wave takes our id; anything else is a stale echo.
            if caw.is_some_and(|c| same(&c, &own_id)) {
                self.count(group, now, from, out);
            }
            return;
        }
        let superior = caw.as_deref().is_none_or(|c| better(challenger, c));
        if superior && g.contest && better(&own_id, challenger) && !better_leader {
            // A wave worse than our id (and we run none, or a worse one): ours instead.
            // Zyre's idle contester adopts the worse one, which then leads.
            self.start(group, now, out);
            return;
        }
        // A second ELECT from the wave's own challenger, after its first: its new wave
        // (it restarted, as Zyre's contester does when a member comes), which needs our
        // part again. Zyre counts it on top of the old one and never completes.
        let restarted = !superior
            && from_challenger
            && g.wave
                .as_ref()
                .is_some_and(|w| same(&w.caw, challenger) && w.erec.contains(&from));
        if superior || restarted {
            g.held.clear();
            g.answered.clear();
            g.lanswered.clear();
            g.worse.clear();
            g.restart = false;
            let mut wave = Wave::new(challenger.to_string(), Some(from));
            if let (true, Some(old)) = (restarted, g.wave.take()) {
                // What members sent stays counted (a message of the old wave cannot be
                // told from one of the new); what we owe the new one goes again: our
                // ELECT to every member, our echo, our LEADER.
                wave.erec = old.erec;
                wave.lrec = old.lrec;
            }
            g.wave = Some(wave);
            g.leader = None;
            let body = Body::Elect {
                group: group.to_string(),
                challenger_id: challenger.to_string(),
            };
            let to: Vec<Uuid> = members.iter().copied().filter(|m| *m != from).collect();
            self.send_all(&to, body, out);
            self.count(group, now, from, out);
        } else if caw.is_some_and(|c| same(&c, challenger)) {
            self.count(group, now, from, out);
        }
        // A worse challenger is ignored.
    }

    /// LEADER(group, leader) from `from`, with the group's members now.
    pub fn on_leader(
        &mut self,
        group: &str,
        now: Instant,
        from: Uuid,
        leader: &str,
        members: &BTreeSet<Uuid>,
        out: &mut Vec<Action>,
    ) {
        self.heard(from);
        let own_id = self.own_id.clone();
        let g = self.require(group, members);
        g.active_at = Some(now);
        if g.wave.is_none() && g.leader.is_some_and(|l| same(&uuid_hex(&l), leader)) {
            // Over for us; the sender, still in it, waits for our part.
            self.answer(group, now, from, false, true, out);
            return;
        }
        let Some(w) = g.wave.as_mut().filter(|w| same(&w.caw, leader)) else {
            // No wave: Zyre logs "election has been reset" and ignores it too. Another
            // wave's LEADER is that of a wave ours put out (its sender had not adopted
            // ours yet; it will, and send LEADER of ours): Zyre counts it as one of ours,
            // and may name the extinct wave's challenger leader.
            self.drop_if_idle(group);
            return;
        };
        let first = !w.leader_sent;
        let again = !w.lrec.insert(from) && w.leader_sent && w.lresent.insert(from);
        // From the challenger itself: it had every member's ELECT, so the wave is decided.
        let decided = same(&uuid_hex(&from), leader);
        if again && members.contains(&from) {
            // It adopted the wave again (see `count`): our LEADER again.
            let body = Body::Leader {
                group: group.to_string(),
                leader_id: w.caw.clone(),
            };
            self.send_all(&[from], body, out);
            self.check(group, now, out);
            return;
        }
        if first && !same(leader, &own_id) {
            w.leader_sent = true;
            // Passed on as LEADER(our wave), to every member, the sender too (Zyre).
            let body = Body::Leader {
                group: group.to_string(),
                leader_id: w.caw.clone(),
            };
            let to: Vec<Uuid> = members.iter().copied().collect();
            self.send_all(&to, body, out);
        }
        if decided {
            // Done without waiting for every member's LEADER: a Zyre member that counted
            // a LEADER of an earlier wave as this one's first never passes one on, and
            // would keep us waiting for ever.
            self.finish(group, now, out);
        } else {
            self.check(group, now, out);
        }
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

    /// A leader other than us, better than our id, is known: it starts the waves.
    fn better_leader(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|g| {
            g.leader
                .is_some_and(|l| l != self.own && better(&uuid_hex(&l), &self.own_id))
        })
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

    /// Sends `to` what every member had from us in the wave `caw`: ELECT, and LEADER if
    /// we sent it.
    fn catch_up(
        &mut self,
        group: &str,
        now: Instant,
        to: &[Uuid],
        caw: &str,
        leader_sent: bool,
        out: &mut Vec<Action>,
    ) {
        if to.is_empty() {
            return;
        }
        if let Some(g) = self.groups.get_mut(group) {
            g.active_at = Some(now);
        }
        let elect = Body::Elect {
            group: group.to_string(),
            challenger_id: caw.to_string(),
        };
        self.send_all(to, elect, out);
        if leader_sent {
            let leader = Body::Leader {
                group: group.to_string(),
                leader_id: caw.to_string(),
            };
            self.send_all(to, leader, out);
        }
    }

    /// The election over, `from` still in it: sent ELECT (`elect`) and LEADER (`leader`)
    /// of the leader's id, each once. A member that is not the challenger gets what it
    /// sent us (it waits for that, in the phase it is in), not more: Zyre counts a LEADER
    /// whatever its id, so a LEADER sent ahead to a member that moved on to another wave
    /// would be counted there, and may even be the leader it reports.
    fn answer(
        &mut self,
        group: &str,
        now: Instant,
        from: Uuid,
        elect: bool,
        leader: bool,
        out: &mut Vec<Action>,
    ) {
        let own = self.own;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let (Some(id), true) = (g.leader, g.members.contains(&from)) else {
            return;
        };
        // From the challenger, an ELECT would read as its new wave (and restart the
        // member's count): LEADER only. The member completes without our ELECT, its
        // LEADERs all in (see `check`).
        let elect = elect && id != own && g.answered.insert(from);
        let leader = leader && g.lanswered.insert(from);
        g.active_at = Some(now);
        let id = uuid_hex(&id);
        if elect {
            let body = Body::Elect {
                group: group.to_string(),
                challenger_id: id.clone(),
            };
            self.send_all(&[from], body, out);
        }
        if leader {
            let body = Body::Leader {
                group: group.to_string(),
                leader_id: id,
            };
            self.send_all(&[from], body, out);
        }
    }

    /// The wave stalled (nothing came for [`STALL`], or twice or four times that): each
    /// member we have not had ELECT from gets ours again, and, once we sent LEADER, each
    /// one we have not had LEADER from gets that again, and, having had a LEADER, we are
    /// done with the wave (see [`Elections::finish`]). Zyre's members count messages: one
    /// that dropped its election when a member came, and adopted the wave again from the
    /// next ELECT, lost one and waits for ever; ours again completes it. Ours ask theirs
    /// back (see [`Elections::count`]).
    fn resend(&mut self, group: &str, now: Instant, out: &mut Vec<Action>) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.active_at = Some(now);
        let members = g.members.clone();
        let Some(w) = g.wave.as_mut() else {
            return;
        };
        w.retries += 1;
        let caw = w.caw.clone();
        let elect: Vec<Uuid> = members.difference(&w.erec).copied().collect();
        let leader: Vec<Uuid> = if w.leader_sent {
            members.difference(&w.lrec).copied().collect()
        } else {
            Vec::new()
        };
        let decided = !w.lrec.is_empty();
        let body = Body::Elect {
            group: group.to_string(),
            challenger_id: caw.clone(),
        };
        self.send_all(&elect, body, out);
        let body = Body::Leader {
            group: group.to_string(),
            leader_id: caw,
        };
        self.send_all(&leader, body, out);
        if decided {
            // A LEADER of the wave came: only its challenger starts one, once it had
            // every member's ELECT, so the wave was decided. A LEADER that never comes
            // (a Zyre challenger that counted others' LEADERs as its own and was done
            // without sending one) leaves it at that.
            self.finish(group, now, out);
        }
    }

    /// Our wave: ELECT(own id) to every member (nothing goes when there is none).
    fn start(&mut self, group: &str, now: Instant, out: &mut Vec<Action>) {
        let own_id = self.own_id.clone();
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.wave = Some(Wave::new(own_id.clone(), None));
        g.leader = None;
        g.held.clear();
        g.answered.clear();
        g.lanswered.clear();
        g.worse.clear();
        g.restart = false;
        g.active_at = Some(now);
        let to: Vec<Uuid> = g.members.iter().copied().collect();
        let body = Body::Elect {
            group: group.to_string(),
            challenger_id: own_id,
        };
        self.send_all(&to, body, out);
    }

    /// Our wave, now if the group's election traffic has been quiet for [`SETTLE`], else
    /// once it has ([`Elections::poll_timeout`]).
    fn start_when_quiet(&mut self, group: &str, now: Instant, out: &mut Vec<Action>) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.active_at.is_some_and(|t| now < later(t, SETTLE)) {
            g.restart = true;
        } else {
            self.start(group, now, out);
        }
    }

    /// ELECT of the current wave from `from`.
    ///
    /// A second one from the same member (not the challenger: that is its new wave) means
    /// it adopted the wave again, having dropped it: Zyre's contester drops its election
    /// whenever a member comes, and re-adopts the wave from the next ELECT, losing ours.
    /// It gets ours again (once a wave), or it waits for ever.
    fn count(&mut self, group: &str, now: Instant, from: Uuid, out: &mut Vec<Action>) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let member = g.members.contains(&from);
        let Some(w) = g.wave.as_mut() else {
            return;
        };
        let again = !w.erec.insert(from)
            && member
            && !same(&uuid_hex(&from), &w.caw)
            && w.resent.insert(from);
        if again {
            let body = Body::Elect {
                group: group.to_string(),
                challenger_id: w.caw.clone(),
            };
            self.send_all(&[from], body, out);
        }
        self.check(group, now, out);
    }

    /// Completion: every member sent ELECT (echo, or LEADER for our own wave), or every
    /// member sent LEADER (the election is over).
    fn check(&mut self, group: &str, now: Instant, out: &mut Vec<Action>) {
        let own_id = self.own_id.clone();
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
                w.leader_sent = true;
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
        if w.lrec.is_empty() || !members.is_subset(&w.lrec) {
            return;
        }
        self.finish(group, now, out);
    }

    /// The wave is over: what we owe goes out, then the LEADER event, and the election is
    /// done.
    fn finish(&mut self, group: &str, now: Instant, out: &mut Vec<Action>) {
        let own_id = self.own_id.clone();
        let own = self.own;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let members = g.members.clone();
        let Some(w) = g.wave.as_ref() else {
            return;
        };
        let caw = w.caw.clone();
        if !w.echoed {
            // Every member had LEADER before we had every member's ELECT (the leader had
            // ours by another way, or a member that was done answered it): what we owe
            // goes before we are done. Our father counts on our echo; for our own wave,
            // every member on our LEADER.
            match w.father {
                Some(father) => {
                    let body = Body::Elect {
                        group: group.to_string(),
                        challenger_id: caw.clone(),
                    };
                    self.send_all(&[father], body, out);
                }
                None => {
                    let body = Body::Leader {
                        group: group.to_string(),
                        leader_id: caw.clone(),
                    };
                    let to: Vec<Uuid> = members.iter().copied().collect();
                    self.send_all(&to, body, out);
                }
            }
        }
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.wave = None;
        g.active_at = Some(now);
        let leader = if same(&caw, &own_id) {
            Some(own)
        } else {
            std::str::from_utf8(c_str(&caw)).ok().and_then(parse_id)
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

#[cfg(test)]
mod tests {
    use super::*;

    const G: &str = "G";

    /// The one instant the unit tests need (their waves never wait).
    fn t0() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now)
    }

    fn u(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn set(ids: &[u128]) -> BTreeSet<Uuid> {
        ids.iter().map(|n| u(*n)).collect()
    }

    fn elect(c: u128) -> Body {
        Body::Elect {
            group: G.into(),
            challenger_id: uuid_hex(&u(c)),
        }
    }

    fn leader(l: u128) -> Body {
        Body::Leader {
            group: G.into(),
            leader_id: uuid_hex(&u(l)),
        }
    }

    fn sends(out: &[Action]) -> Vec<(u128, Body)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send { to, body } => Some((to.as_u128(), body.clone())),
                _ => None,
            })
            .collect()
    }

    /// A passive member (not contesting) of G with these members.
    fn passive(own: u128) -> Elections {
        Elections::new(u(own))
    }

    #[test]
    fn ids_are_zyre_strings_compared_as_c_strings() {
        assert_eq!(uuid_hex(&u(0xAB)), "000000000000000000000000000000AB");
        // strcmp: digits before upper-case letters, byte by byte; for Zyre's ids that is
        // the order of the UUIDs.
        assert!(better(
            "0000000000000000000000000000000A",
            "0000000000000000000000000000000B"
        ));
        assert!(better("9", "A"));
        assert!(!better("A", "A"));
        // A C string ends at its NUL.
        assert!(same("AB\0CD", "AB"));
        assert!(better("AB\0Z", "AC"));
        assert_eq!(parse_id(&uuid_hex(&u(0xAB))), Some(u(0xAB)));
        assert_eq!(parse_id("000000000000000000000000000000ab"), None);
        assert_eq!(parse_id("00000000-0000-0000-0000-0000000000AB"), None);
    }

    #[test]
    fn a_passive_member_adopts_relays_counts_and_echoes_to_its_father() {
        let mut e = passive(0x50);
        let members = set(&[0x10, 0x20, 0x30]);
        let mut out = Vec::new();
        // ELECT(0x10) relayed by 0x20: adopted, passed to every member but 0x20.
        e.on_elect(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x10, elect(0x10)), (0x30, elect(0x10))]);
        assert_eq!(e.wave(G), Some(uuid_hex(&u(0x10)).as_str()));
        out.clear();
        // A worse challenger is ignored.
        e.on_elect(G, t0(), u(0x30), &uuid_hex(&u(0x30)), &members, &mut out);
        assert!(out.is_empty());
        // The wave from the two others completes it: the echo goes to the father, 0x20.
        e.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        assert!(out.is_empty());
        e.on_elect(G, t0(), u(0x30), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x20, elect(0x10))]);
        out.clear();
        // A repeated ELECT (not from the challenger) is not counted twice: its sender
        // adopted the wave again (a Zyre contester does, restarting), and gets ours again,
        // once.
        e.on_elect(G, t0(), u(0x30), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x30, elect(0x10))]);
        out.clear();
        e.on_elect(G, t0(), u(0x30), &uuid_hex(&u(0x10)), &members, &mut out);
        assert!(out.is_empty());
        // The first LEADER is passed on as LEADER(our wave) to every member, the sender
        // too; every member's LEADER ends the election.
        e.on_leader(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(
            sends(&out),
            vec![
                (0x10, leader(0x10)),
                (0x20, leader(0x10)),
                (0x30, leader(0x10))
            ]
        );
        out.clear();
        // LEADER of another wave is not counted.
        e.on_leader(G, t0(), u(0x30), &uuid_hex(&u(0x20)), &members, &mut out);
        assert!(out.is_empty());
        e.on_leader(G, t0(), u(0x30), &uuid_hex(&u(0x10)), &members, &mut out);
        assert!(out.is_empty());
        e.on_leader(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(
            out,
            vec![Action::Leader {
                group: G.into(),
                leader: u(0x10)
            }]
        );
        assert_eq!(e.leader(G), Some(u(0x10)));
        assert_eq!(e.wave(G), None);
        // Tracked while it knows a leader (to forget it when it goes).
        assert_eq!(e.tracked(), vec![G.to_string()]);
    }

    #[test]
    fn a_contester_starts_its_wave_and_sends_leader_when_every_member_answered() {
        let mut e = Elections::new(u(0x10));
        let members = set(&[0x20, 0x30]);
        let mut out = Vec::new();
        e.contest(G, true, t0(), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x20, elect(0x10)), (0x30, elect(0x10))]);
        out.clear();
        e.on_elect(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert!(out.is_empty());
        e.on_elect(G, t0(), u(0x30), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(
            sends(&out),
            vec![(0x20, leader(0x10)), (0x30, leader(0x10))]
        );
        out.clear();
        // The leader does not pass LEADER on; every member's LEADER ends it.
        e.on_leader(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert!(out.is_empty());
        e.on_leader(G, t0(), u(0x30), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(
            out,
            vec![Action::Leader {
                group: G.into(),
                leader: u(0x10)
            }]
        );
        assert_eq!(e.leader(G), Some(u(0x10)));
        // A contester stays tracked.
        assert_eq!(e.tracked(), vec![G.to_string()]);
    }

    #[test]
    fn a_contester_answers_a_worse_wave_with_its_own_and_adopts_a_better_one() {
        let mut e = Elections::new(u(0x20));
        let members = set(&[0x10, 0x30]);
        let mut out = Vec::new();
        e.contest(G, true, t0(), &BTreeSet::new(), &mut out);
        e.sync(G, t0(), &members, &mut out);
        out.clear();
        // Idle (its wave completed elsewhere, say): a worse wave starts ours.
        let mut idle = Elections::new(u(0x20));
        idle.contest(G, false, t0(), &members, &mut out);
        idle.on_elect(G, t0(), u(0x30), &uuid_hex(&u(0x30)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x10, elect(0x20)), (0x30, elect(0x20))]);
        out.clear();
        // A better one is adopted and relayed.
        e.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x30, elect(0x10))]);
        assert_eq!(e.wave(G), Some(uuid_hex(&u(0x10)).as_str()));
        out.clear();
        // Growing, it keeps the better wave and passes it to the newcomer.
        let grown = set(&[0x10, 0x30, 0x40]);
        e.sync(G, t0(), &grown, &mut out);
        assert_eq!(sends(&out), vec![(0x40, elect(0x10))]);
    }

    #[test]
    fn a_second_elect_from_the_challenger_itself_is_its_new_wave() {
        let mut e = passive(0x50);
        let members = set(&[0x10, 0x20]);
        let mut out = Vec::new();
        e.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        e.on_elect(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x20, elect(0x10)), (0x10, elect(0x10))]);
        out.clear();
        // 0x20 passes the old wave's LEADER on: we pass it on.
        e.on_leader(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(
            sends(&out),
            vec![(0x10, leader(0x10)), (0x20, leader(0x10))]
        );
        out.clear();
        // 0x10 restarted (Zyre's contester does when a member comes): its ELECT again.
        // Our part goes again (relay, echo; what members sent stays counted, as it cannot
        // be told from the new wave's), and 0x20's of the new wave gets ours again.
        e.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x20, elect(0x10)), (0x10, elect(0x10))]);
        out.clear();
        e.on_elect(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(sends(&out), vec![(0x20, elect(0x10))]);
        out.clear();
        // The challenger's own LEADER: passed on (ours goes again, for the new wave), and
        // the wave is decided.
        e.on_leader(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(
            out,
            vec![
                Action::Send {
                    to: u(0x10),
                    body: leader(0x10)
                },
                Action::Send {
                    to: u(0x20),
                    body: leader(0x10)
                },
                Action::Leader {
                    group: G.into(),
                    leader: u(0x10)
                }
            ]
        );
    }

    #[test]
    fn a_stalled_wave_sends_again_what_members_have_not_answered_then_gives_up() {
        let mut e = Elections::new(u(0x10));
        let members = set(&[0x20, 0x30]);
        let mut out = Vec::new();
        e.contest(G, true, t0(), &members, &mut out);
        e.on_elect(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        out.clear();
        // 0x30 never answers: ours goes again to it after STALL, twice and four times that.
        let mut t = t0();
        for wait in [STALL, STALL * 2, STALL * 4] {
            assert_eq!(e.poll_timeout(), Some(t + wait));
            assert!(e.due(t + wait - Duration::from_millis(1)).is_empty());
            t += wait;
            assert_eq!(e.due(t), vec![G.to_string()]);
            e.handle_timeout(G, t, &members, &mut out);
            assert_eq!(sends(&out), vec![(0x30, elect(0x10))]);
            out.clear();
        }
        // Then it waits, as Zyre does, for ever.
        assert_eq!(e.poll_timeout(), None);
        assert_eq!(e.wave(G), Some(uuid_hex(&u(0x10)).as_str()));
        // Any message of the group puts the next try off.
        let mut e = Elections::new(u(0x10));
        e.contest(G, true, t0(), &members, &mut out);
        e.on_elect(
            G,
            t0() + STALL / 2,
            u(0x20),
            &uuid_hex(&u(0x10)),
            &members,
            &mut out,
        );
        assert_eq!(e.poll_timeout(), Some(t0() + STALL / 2 + STALL));
    }

    #[test]
    fn a_wave_with_a_leader_in_is_done_at_its_challengers_leader_or_when_it_stalls() {
        // The challenger's own LEADER decides it, before every member's.
        let mut e = passive(0x50);
        let members = set(&[0x10, 0x20]);
        let mut out = Vec::new();
        e.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        out.clear();
        e.on_leader(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(
            out,
            vec![
                Action::Send {
                    to: u(0x10),
                    body: leader(0x10)
                },
                Action::Send {
                    to: u(0x20),
                    body: leader(0x10)
                },
                // Our echo, owed to the father, goes before we are done.
                Action::Send {
                    to: u(0x10),
                    body: elect(0x10)
                },
                Action::Leader {
                    group: G.into(),
                    leader: u(0x10)
                },
            ]
        );
        // Another member's LEADER, then silence: done at the stall, after sending our
        // LEADER again to the one that did not send one.
        let mut e = passive(0x50);
        let members = set(&[0x10, 0x20, 0x30]);
        for m in [0x10, 0x20, 0x30] {
            e.on_elect(G, t0(), u(m), &uuid_hex(&u(0x10)), &members, &mut out);
        }
        e.on_leader(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        out.clear();
        e.handle_timeout(G, t0() + STALL, &members, &mut out);
        assert_eq!(
            out,
            vec![
                Action::Send {
                    to: u(0x10),
                    body: leader(0x10)
                },
                Action::Send {
                    to: u(0x30),
                    body: leader(0x10)
                },
                Action::Leader {
                    group: G.into(),
                    leader: u(0x10)
                },
            ]
        );
        assert_eq!(e.leader(G), Some(u(0x10)));
    }

    #[test]
    fn our_own_id_from_someone_else_is_stale_without_our_wave() {
        let mut e = passive(0x10);
        let members = set(&[0x20]);
        let mut out = Vec::new();
        e.on_elect(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        assert!(out.is_empty());
        assert_eq!(e.wave(G), None);
        // LEADER with no wave: ignored, as in Zyre.
        e.on_leader(G, t0(), u(0x20), &uuid_hex(&u(0x20)), &members, &mut out);
        assert!(out.is_empty());
        assert!(e.tracked().is_empty());
    }

    #[test]
    fn members_leaving_are_not_waited_for_and_the_challenger_leaving_ends_its_wave() {
        let mut e = passive(0x50);
        let members = set(&[0x10, 0x20, 0x30]);
        let mut out = Vec::new();
        e.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        e.on_elect(G, t0(), u(0x20), &uuid_hex(&u(0x10)), &members, &mut out);
        out.clear();
        // 0x30 leaves before its ELECT: the wave is complete without it.
        e.sync(G, t0(), &set(&[0x10, 0x20]), &mut out);
        assert_eq!(sends(&out), vec![(0x10, elect(0x10))]);
        out.clear();
        // The challenger leaves: its wave is over, nothing is sent (we do not contest).
        e.sync(G, t0(), &set(&[0x20]), &mut out);
        assert!(out.is_empty());
        assert_eq!(e.wave(G), None);
        // A contester holding it starts its own instead.
        let mut c = Elections::new(u(0x40));
        c.contest(G, false, t0(), &members, &mut out);
        c.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        out.clear();
        c.sync(G, t0(), &set(&[0x20, 0x30]), &mut out);
        assert_eq!(sends(&out), vec![(0x20, elect(0x40)), (0x30, elect(0x40))]);
    }

    #[test]
    fn the_leader_leaving_brings_a_new_wave_and_a_contester_left_alone_leads() {
        let mut e = Elections::new(u(0x20));
        let mut out = Vec::new();
        let members = set(&[0x10]);
        e.contest(G, true, t0(), &members, &mut out);
        e.on_elect(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        e.on_leader(G, t0(), u(0x10), &uuid_hex(&u(0x10)), &members, &mut out);
        assert_eq!(e.leader(G), Some(u(0x10)));
        out.clear();
        e.sync(G, t0(), &BTreeSet::new(), &mut out);
        assert_eq!(
            out,
            vec![Action::Leader {
                group: G.into(),
                leader: u(0x20)
            }]
        );
        assert_eq!(e.leader(G), Some(u(0x20)));
    }

    #[test]
    fn a_peer_that_forgot_us_after_our_election_message_is_non_electing() {
        let mut e = Elections::new(u(0x10));
        let mut out = Vec::new();
        e.contest(G, true, t0(), &set(&[0x20, 0x30]), &mut out);
        // 0x20 answers; 0x30 (pyre) drops us and says HELLO again.
        e.on_elect(
            G,
            t0(),
            u(0x20),
            &uuid_hex(&u(0x10)),
            &set(&[0x20, 0x30]),
            &mut out,
        );
        assert!(!e.rehello(u(0x20)));
        assert!(e.rehello(u(0x30)));
        assert!(e.is_non_electing(&u(0x30)));
        // Not twice, and a peer we never sent anything is not marked.
        assert!(!e.rehello(u(0x30)));
        assert!(!e.rehello(u(0x40)));
        // Sending us an election message clears the mark.
        e.on_elect(
            G,
            t0(),
            u(0x30),
            &uuid_hex(&u(0x10)),
            &set(&[0x20]),
            &mut out,
        );
        assert!(!e.is_non_electing(&u(0x30)));
    }

    #[test]
    fn leaving_the_group_drops_its_election_but_not_the_contest() {
        let mut e = Elections::new(u(0x10));
        let mut out = Vec::new();
        e.contest(G, true, t0(), &set(&[0x20]), &mut out);
        e.left(G);
        assert_eq!(e.wave(G), None);
        assert!(e.contests(G));
        assert!(e.tracked().is_empty());
        out.clear();
        e.joined(G, t0(), &set(&[0x20]), &mut out);
        assert_eq!(sends(&out), vec![(0x20, elect(0x10))]);
    }

    // ---- random schedules --------------------------------------------------------------

    /// A message between two simulated nodes.
    #[derive(Clone, Debug)]
    enum Msg {
        Hello,
        Election(Body),
    }

    /// Nodes that meet one by one (each discovers each other at a random moment and says
    /// HELLO; a HELLO received makes the sender a member and is answered by ours if we
    /// had not said it), over FIFO links delivered in a random order.
    struct World {
        nodes: Vec<Elections>,
        members: Vec<BTreeSet<Uuid>>,
        said_hello: BTreeSet<(usize, usize)>,
        links: BTreeMap<(usize, usize), VecDeque<Msg>>,
        leaders: Vec<Vec<Uuid>>,
        rng: u64,
        /// A microsecond a step; it jumps to a waiting wave's time only when no message
        /// is on its way (waves wait [`SETTLE`], far longer than a message takes).
        now: Instant,
    }

    impl World {
        fn rand(&mut self, n: usize) -> usize {
            // xorshift64*: deterministic per seed.
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }

        fn id(i: usize) -> Uuid {
            // Node ids not in node order: node 0 is not always the winner.
            u(0x1000 + ((i * 7) % 11) as u128)
        }

        fn apply(&mut self, from: usize, out: Vec<Action>) {
            for a in out {
                match a {
                    Action::Send { to, body } => {
                        let to = (0..self.nodes.len())
                            .find(|j| Self::id(*j) == to)
                            .expect("known node");
                        self.links
                            .entry((from, to))
                            .or_default()
                            .push_back(Msg::Election(body));
                    }
                    Action::Leader { leader, .. } => self.leaders[from].push(leader),
                }
            }
        }

        fn hello(&mut self, from: usize, to: usize) {
            if self.said_hello.insert((from, to)) {
                self.links
                    .entry((from, to))
                    .or_default()
                    .push_back(Msg::Hello);
            }
        }

        fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
            let mut out = Vec::new();
            match msg {
                Msg::Hello => {
                    self.hello(to, from);
                    self.members[to].insert(Self::id(from));
                    let m = self.members[to].clone();
                    self.nodes[to].sync(G, self.now, &m, &mut out);
                }
                Msg::Election(Body::Elect { challenger_id, .. }) => {
                    let m = self.members[to].clone();
                    let now = self.now;
                    self.nodes[to].on_elect(G, now, Self::id(from), &challenger_id, &m, &mut out);
                }
                Msg::Election(Body::Leader { leader_id, .. }) => {
                    let m = self.members[to].clone();
                    let now = self.now;
                    self.nodes[to].on_leader(G, now, Self::id(from), &leader_id, &m, &mut out);
                }
                Msg::Election(_) => unreachable!(),
            }
            self.apply(to, out);
        }

        /// Runs `n` nodes (`contest[i]`) from the moment they all joined G alone, to
        /// quiet; then, if `leave`, the leader goes (each other node notices it at its own
        /// moment), to quiet again. Returns the world and the leader that went.
        fn run(seed: u64, contest: &[bool], leave: bool) -> (World, Option<usize>) {
            let n = contest.len();
            let mut w = World {
                nodes: (0..n).map(|i| Elections::new(Self::id(i))).collect(),
                members: vec![BTreeSet::new(); n],
                said_hello: BTreeSet::new(),
                links: BTreeMap::new(),
                leaders: vec![Vec::new(); n],
                rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                now: t0(),
            };
            for (i, c) in contest.iter().enumerate() {
                let mut out = Vec::new();
                if *c {
                    w.nodes[i].contest(G, true, t0(), &BTreeSet::new(), &mut out);
                }
                w.nodes[i].joined(G, t0(), &BTreeSet::new(), &mut out);
                w.apply(i, out);
            }
            // Who discovers whom (a beacon heard), not yet happened.
            let events: Vec<(usize, usize, bool)> = (0..n)
                .flat_map(|i| (0..n).filter(move |j| *j != i).map(move |j| (i, j, true)))
                .collect();
            w.settle(seed, events);
            if !leave {
                return (w, None);
            }
            let gone = (0..n)
                .find(|i| w.nodes[*i].leader(G) == Some(Self::id(*i)))
                .expect("a leader");
            w.links.retain(|(a, b), _| *a != gone && *b != gone);
            let events = (0..n)
                .filter(|i| *i != gone)
                .map(|i| (i, gone, false))
                .collect();
            w.settle(seed, events);
            (w, Some(gone))
        }

        /// Delivers messages, fires waiting waves (only when nothing is on its way) and
        /// carries out `events` (i discovers j, or i sees j go), in a random order, to
        /// quiet.
        fn settle(&mut self, seed: u64, mut events: Vec<(usize, usize, bool)>) {
            let n = self.nodes.len();
            for step in 0.. {
                assert!(step < 200_000, "seed {seed}: no quiet");
                let busy: Vec<(usize, usize)> = self
                    .links
                    .iter()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(k, _)| *k)
                    .collect();
                let timer = if busy.is_empty() {
                    self.nodes.iter().filter_map(|e| e.poll_timeout()).min()
                } else {
                    None
                };
                let choices = busy.len() + events.len() + usize::from(timer.is_some());
                if choices == 0 {
                    return;
                }
                self.now += Duration::from_micros(1);
                let pick = self.rand(choices);
                if let (Some(t), true) = (timer, pick == choices - 1) {
                    self.now = self.now.max(t);
                    for i in 0..n {
                        let now = self.now;
                        for group in self.nodes[i].due(now) {
                            let m = self.members[i].clone();
                            let mut out = Vec::new();
                            self.nodes[i].handle_timeout(&group, now, &m, &mut out);
                            self.apply(i, out);
                        }
                    }
                } else if pick < busy.len() {
                    let (from, to) = busy[pick];
                    let msg = self
                        .links
                        .get_mut(&(from, to))
                        .unwrap()
                        .pop_front()
                        .unwrap();
                    self.deliver(from, to, msg);
                } else {
                    let (i, j, discover) = events.swap_remove(pick - busy.len());
                    if discover {
                        self.hello(i, j);
                    } else {
                        self.members[i].remove(&Self::id(j));
                        let m = self.members[i].clone();
                        let mut out = Vec::new();
                        let now = self.now;
                        self.nodes[i].sync(G, now, &m, &mut out);
                        self.apply(i, out);
                    }
                }
            }
        }
    }

    fn check_random_schedules(contest: &[bool], seeds: u64) {
        let winner = |among: &[usize]| {
            among
                .iter()
                .filter(|i| contest[**i])
                .map(|i| World::id(*i))
                .min()
        };
        let all: Vec<usize> = (0..contest.len()).collect();
        let lowest = winner(&all).expect("a contester");
        for seed in 0..seeds {
            let (w, gone) = World::run(seed, contest, seed % 2 == 1);
            let (left, expect): (Vec<usize>, Option<Uuid>) = match gone {
                None => (all.clone(), Some(lowest)),
                Some(g) => {
                    let left: Vec<usize> = all.iter().copied().filter(|i| *i != g).collect();
                    let next = winner(&left);
                    (left, next)
                }
            };
            for i in left {
                let what = format!("{contest:?} seed {seed}, node {i}: {:?}", w.leaders[i]);
                if gone.is_none() || expect.is_some() {
                    assert_eq!(w.leaders[i].last().copied(), expect, "{what}");
                }
                assert_eq!(w.nodes[i].leader(G), expect, "{what}");
                assert_eq!(w.nodes[i].wave(G), None, "{what}");
            }
        }
    }

    /// The same, many more runs (about 15 s in a release build):
    /// `cargo test --release --lib election -- --ignored`.
    #[test]
    #[ignore]
    fn random_schedules_many_more() {
        for c in [
            &[true, true][..],
            &[true, true, true],
            &[true, false, false],
            &[false, false, true],
            &[false, true, false, true, false],
            &[true, true, true, true, true, true],
            &[false, true, true, false, true, false, true, false],
        ] {
            check_random_schedules(c, 30_000);
        }
    }

    #[test]
    fn random_schedules_of_nodes_meeting_one_by_one_elect_the_lowest_contester() {
        check_random_schedules(&[true, true], 300);
        check_random_schedules(&[true, true, true], 300);
        check_random_schedules(&[true, false, false], 300);
        check_random_schedules(&[false, true, false, true, false], 300);
        check_random_schedules(&[true; 6], 100);
    }
}
