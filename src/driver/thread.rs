//! The driver thread.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::gossip::GossipIo;
use super::handoff::Handoff;
use super::retry::Retry;
use super::*;
use crate::error::{io_err, zmq_err, Error};
use crate::proto::event::{uuid_hex, Event};
use crate::proto::node::NodeState;
use crate::queue::{Bell, Queue};

/// Binds the sockets (so setup errors surface to the caller) and starts the thread.
pub(crate) fn start(setup: Setup) -> Result<Running, Error> {
    let ctx = zmq::Context::new();
    // CURVE: the ZAP handler is bound before the mailbox (see `zap`).
    let mut curve = None;
    let mut allow_source = None;
    let mut zap = None;
    let mut allowed_now = None;
    if let Some((cert, allow_path)) = &setup.curve {
        let secret = cert.secret.as_ref().map(|s| *s.as_bytes());
        let secret = secret.ok_or_else(|| Error::Config("CURVE needs a secret key".into()))?;
        super::zap::check_pair(&cert.public.0, &secret)?;
        if let Some(path) = allow_path {
            let (source, list) = super::zap::AllowSource::load(path)?;
            allow_source = Some(source);
            allowed_now = Some(list);
        }
        let shared: super::zap::Shared = Arc::new(std::sync::RwLock::new(allowed_now.clone()));
        let name = format!("zre-zap-{}", &uuid_hex(&setup.config.uuid)[..8]);
        zap = Some(super::zap::Zap::start(&ctx, shared.clone(), name)?);
        curve = Some((cert.public.0, secret, shared));
    }
    let router = ctx.socket(zmq::ROUTER).map_err(zmq_err("create mailbox"))?;
    if let Some((public, secret, _)) = &curve {
        router
            .set_curve_server(true)
            .and_then(|()| router.set_curve_publickey(public))
            .and_then(|()| router.set_curve_secretkey(secret))
            .and_then(|()| router.set_zap_domain(super::zap::DOMAIN))
            .map_err(zmq_err("make the mailbox a CURVE server"))?;
    }
    // A reconnecting peer keeps its identity; handover lets the new connection replace
    // the old one, or its second HELLO would be lost.
    router
        .set_router_handover(true)
        .map_err(zmq_err("set handover"))?;
    router.set_linger(0).map_err(zmq_err("set linger"))?;
    // What the application has not taken yet waits here, then in TCP, so the sender's
    // link backs up (see `Core::event_room`).
    router.set_rcvhwm(RECV_HWM).map_err(zmq_err("set rcvhwm"))?;
    let ipv6 = setup.net.ipv6_zone();
    if ipv6.is_some() {
        router.set_ipv6(true).map_err(zmq_err("set ipv6"))?;
    }
    let port = setup
        .mailbox_port
        .filter(|p| *p != 0)
        .map_or_else(|| "*".to_string(), |p| p.to_string());
    let bind = setup.net.mailbox_bind(&port);
    router
        .bind(&bind)
        .map_err(zmq_err(format!("bind mailbox {bind}")))?;
    let bound = router
        .get_last_endpoint()
        .map_err(zmq_err("read mailbox endpoint"))?
        .map_err(|_| Error::Config("mailbox endpoint is not UTF-8".into()))?;
    let mailbox_port: u16 = bound
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::Config(format!("cannot read the port of {bound}")))?;
    let router_fd = router
        .get_fd()
        .map_err(zmq_err("read mailbox descriptor"))?;

    // No beacon: no UDP socket at all, and a state machine that never beacons (port 0).
    let sockets = setup
        .beacon_port
        .map(|p| setup.net.beacon_sockets(p))
        .transpose()?;
    let (udp, udp_send, beacon_to) = match sockets {
        Some(s) => (Some(s.hear), Some(s.send), s.to),
        None => (
            None,
            None,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0).into(),
        ),
    };

    let mut config = setup.config;
    let own = setup
        .net
        .endpoint(mailbox_port)
        .unwrap_or_else(|| bound.clone());
    config.endpoint = setup.advertised_endpoint.unwrap_or(own);
    if let Some(zone) = &ipv6 {
        config.endpoint = crate::proto::endpoint::local(&config.endpoint, zone);
    }
    config.ipv6_zone = ipv6;
    config.beacon_port = if udp.is_some() { mailbox_port } else { 0 };
    config.curve_key = curve.as_ref().map(|(public, _, _)| *public);
    config.allow = allowed_now;
    let endpoint = config.endpoint.clone();
    // Our tuple lives as long as a peer would wait for us: the expired timeout.
    let zmq_form =
        |eps: &[String]| -> Vec<String> { eps.iter().map(|e| setup.net.for_libzmq(e)).collect() };
    let gossip = GossipIo::start(
        &ctx,
        &zmq_form(&setup.gossip_bind),
        &zmq_form(&setup.gossip_connect),
        &config,
        config.timers.expired,
    )?;

    let queue = Queue::new(COMMAND_QUEUE);
    let bell = Arc::new(Bell::new().map_err(io_err("create doorbell"))?);
    let events = Queue::with_bell(usize::MAX).map_err(io_err("create event queue"))?;
    let stalled = Arc::new(AtomicBool::new(false));
    let directory = Arc::new(Mutex::new(Directory::default()));
    let thread_name = format!("zre-{}", &uuid_hex(&config.uuid)[..8]);

    let core = Arc::new(Mutex::new(Core {
        state: NodeState::new(config, Instant::now()),
        ctx: Some(ctx),
        router: Some(router),
        router_fd,
        handoff: Handoff::new(Instant::now()),
        mail_pending: false,
        links: Default::default(),
        room_waiters: 0,
        event_limit: setup.event_limit.max(1),
        stalled: stalled.clone(),
        stalls: 0,
        stopping: false,
        answer_waiters: 0,
        driver_bell: bell.clone(),
        udp: udp_send,
        beacon_to,
        zone_index: setup.net.zone_index(),
        events: events.clone(),
        outgoing: VecDeque::new(),
        directory: directory.clone(),
        clock: Instant::now(),
        identity: zmq::Message::new(),
        frame: zmq::Message::new(),
        part: zmq::Message::new(),
        curve: curve.as_ref().map(|(p, s, _)| (*p, *s)),
        zap,
        failure: None,
    }));
    let driver = Driver {
        core: core.clone(),
        router_fd,
        udp,
        net: setup.net,
        requests: RequestsEnd(queue.clone()),
        batch: VecDeque::new(),
        bell: bell.clone(),
        _close_events: DriverEnd(events.clone()),
        stop_linger: setup.stop_linger,
        udp_buf: vec![0u8; 2048],
        backlog_fds: Vec::new(),
        retry: Retry::default(),
        allow: allow_source.zip(curve.map(|(_, _, shared)| shared)),
        gossip,
        gossip_ready: Vec::new(),
    };
    let shared = core.clone();
    let thread = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            // A panic (a bug) must not look like a clean stop: record it and say goodbye.
            // The event queue closed as the driver unwound; `Node::recv` waits until the
            // failure is recorded (or this thread ended) before it reports how it ended.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver.run()));
            if let Err(panic) = run {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let end = || fail(&shared, &format!("driver panicked: {why}"));
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(end));
            }
        })
        .map_err(io_err("spawn driver thread"))?;
    Ok(Running {
        thread,
        commands: Commands { queue, bell },
        core,
        events,
        directory,
        endpoint,
        stalled,
    })
}

/// The driver thread's own sockets and buffers; the shared part is `core`.
struct Driver {
    core: Arc<Mutex<Core>>,
    router_fd: RawFd,
    /// None when the node does not beacon.
    udp: Option<UdpSocket>,
    net: Net,
    requests: RequestsEnd,
    /// Requests taken from the queue and not yet carried out.
    batch: VecDeque<Request>,
    bell: Arc<Bell>,
    /// Closes the event queue when the driver ends, however it ends (never read).
    _close_events: DriverEnd<Event>,
    stop_linger: Duration,
    udp_buf: Vec<u8>,
    /// Descriptors of backlogged links to wait on this turn (almost always none).
    backlog_fds: Vec<RawFd>,
    /// When the driver looks at those backlogs again anyway.
    retry: Retry,
    /// CURVE with an allow-list: its files, looked at every second, and the copy the
    /// ZAP handler reads.
    allow: Option<(super::zap::AllowSource, super::zap::Shared)>,
    /// The gossip hub and clients, if the node gossips.
    gossip: Option<GossipIo>,
    /// Which gossip sockets the last poll found readable.
    gossip_ready: Vec<bool>,
}

/// What the poll found ready.
#[derive(Default)]
struct Ready {
    mailbox: bool,
    beacon: bool,
    bell: bool,
}

impl Driver {
    fn run(mut self) {
        let core = self.core.clone();
        // Set when the application asked to stop: the latest moment to give up waiting
        // for peers to acknowledge what we sent.
        let mut stop_by: Option<Instant> = None;
        let mut ready = Ready::default();
        let mut due: Option<Instant> = None;
        loop {
            // One lock per turn: handle what the poll found, flush, plan the next wake-up.
            let (next, watch, mail_pending) = {
                let mut core = lock(&core);
                // The doorbell also rings when an application thread stops watching the
                // mailbox: it may have left news there.
                // Also rung by a thread that took events while mail waited for room.
                if ready.mailbox || ready.bell || core.mail_pending || core.is_stalled() {
                    core.read_mailbox();
                }
                if ready.beacon {
                    self.read_beacons(&mut core);
                }
                let pending = !self.batch.is_empty();
                if (ready.bell || pending) && stop_by.is_none() {
                    if let Some(linger) = self.read_commands(&mut core, ready.bell) {
                        let now = Instant::now();
                        core.state.handle_stop_request(now);
                        core.stopping = true;
                        core.read_mailbox();
                        stop_by = Some(crate::proto::node::later(now, linger));
                    }
                }
                if let Some(g) = &mut self.gossip {
                    g.turn(&mut core, &self.gossip_ready);
                }
                let now = Instant::now();
                core.clock = now;
                if due.is_some_and(|t| t <= now) {
                    core.state.handle_timeout(now);
                }
                self.reload_allow_list(&mut core, now);
                core.flush_backlogs(true);
                core.flush();
                if let Some(deadline) = stop_by {
                    if core.state.is_drained() || Instant::now() >= deadline {
                        core.publish();
                        drop(core);
                        self.shutdown(deadline);
                        return;
                    }
                }
                // Computed once per turn: it looks at every peer. Nothing handled before
                // the next turn makes it earlier than now (a new peer's first deadline is a
                // ping interval away; commands refresh no timer).
                due = core.state.poll_timeout();
                // Who reads the mailbox, and when to look again: see `handoff`.
                let plan = core.handoff.plan(now, stop_by.is_some());
                if plan.read_now {
                    core.read_mailbox();
                    core.flush();
                }
                let look_again = plan.look_again;
                let watch = plan.watch;
                if core.mail_pending && !watch {
                    // We stopped at the batch limit with the rest left to the waiting
                    // thread, whose descriptor will not say so: wake it to read on.
                    core.events.wake_waiters();
                }
                // Last thing under the lock: an application woken by these events and
                // sending at once then rarely finds the lock taken.
                core.publish();
                // Backlogs nobody else waits on are the driver's to move on: it wakes on
                // their descriptors, and looks again soon in case another thread took
                // the signal. While an application thread waits for room, it sends as
                // fast as the links drain (a shout fills many at once); waking on each
                // of their descriptors would only contend with it for the lock, so the
                // driver then just looks every ROOM_WAIT_MS.
                // The look-again backs off while nothing moves (see `retry`).
                core.backlog_fds(true, &mut self.backlog_fds);
                let total = core.backlog_total();
                let retry = self.retry.next(now, !self.backlog_fds.is_empty(), total);
                if core.room_waiters > 0 {
                    self.backlog_fds.clear();
                }
                let allow_check = self.allow.as_ref().map(|(a, _)| a.next_check);
                let gossip_due = self.gossip.as_ref().map(|g| g.deadline());
                let next = [due, stop_by, look_again, retry, gossip_due, allow_check]
                    .into_iter()
                    .flatten()
                    .min();
                core.handoff.driver_sleeps_until(next);
                // The last answers may have been read above, after the check for them.
                let drained = stop_by.is_some() && core.state.is_drained();
                (next, watch, (core.mail_pending && watch) || drained)
            };
            let timeout_ms = match next {
                // Input left over from the last turn, or a stop that may go ahead: look
                // again at once.
                _ if mail_pending || (!self.batch.is_empty() && stop_by.is_none()) => 0,
                Some(t) => {
                    // Round up: waking a millisecond early would spin until the deadline.
                    let d = t.saturating_duration_since(Instant::now());
                    (d.as_micros().div_ceil(1000)) as i64
                }
                None => -1,
            };
            let events = |on: bool| {
                if on {
                    zmq::POLLIN
                } else {
                    zmq::PollEvents::empty()
                }
            };
            // Once stopping, commands are no longer read.
            let wanted = [
                (self.router_fd, events(watch)),
                // Without a beacon socket the bell stands in, asking for nothing.
                match &self.udp {
                    Some(udp) => (udp.as_raw_fd(), zmq::POLLIN),
                    None => (self.bell.fd(), zmq::PollEvents::empty()),
                },
                (self.bell.fd(), events(stop_by.is_none())),
            ];
            let item = |(fd, ev): (RawFd, zmq::PollEvents)| zmq::PollItem::from_fd(fd, ev);
            let (polled, readable) = if self.backlog_fds.is_empty() && self.gossip.is_none() {
                let mut items = wanted.map(item);
                let polled = zmq::poll(&mut items, timeout_ms);
                (polled, [0, 1, 2].map(|i| items[i].is_readable()))
            } else {
                // Gossip sockets, and (rarely) the descriptors of peers whose queue is
                // full, join the wait.
                let gossip: Vec<zmq::PollItem> = match &self.gossip {
                    Some(g) => g.poll_items().collect(),
                    None => Vec::new(),
                };
                let n = gossip.len();
                let backlogs = self.backlog_fds.iter().map(|fd| item((*fd, zmq::POLLIN)));
                let mut all: Vec<_> = wanted
                    .into_iter()
                    .map(item)
                    .chain(gossip)
                    .chain(backlogs)
                    .collect();
                let polled = zmq::poll(&mut all, timeout_ms);
                let readable = [0, 1, 2].map(|i| all[i].is_readable());
                self.gossip_ready.clear();
                self.gossip_ready
                    .extend(all[3..3 + n].iter().map(|i| i.is_readable()));
                (polled, readable)
            };
            if let Err(e) = polled {
                if e != zmq::Error::EINTR {
                    self.fatal(&format!("poll: {e}"));
                    return;
                }
            }
            ready = Ready {
                mailbox: readable[0],
                beacon: readable[1] && self.udp.is_some(),
                bell: readable[2],
            };
        }
    }

    /// CURVE with an allow-list: once its files changed, the new list goes to the ZAP
    /// handler (new handshakes) and the state machine (beacons, HELLOs, known peers).
    fn reload_allow_list(&mut self, core: &mut Core, now: Instant) {
        let Some((source, shared)) = &mut self.allow else {
            return;
        };
        match source.poll(now) {
            Some(Ok(list)) => {
                log(
                    &core.state,
                    &format!("allow-list re-read: {} keys", list.len()),
                );
                *shared.write().unwrap_or_else(|p| p.into_inner()) = Some(list.clone());
                core.state.handle_allow_list(now, Some(list));
            }
            Some(Err(e)) => log(&core.state, &format!("allow-list kept: {e}")),
            None => {}
        }
    }

    fn read_beacons(&mut self, core: &mut Core) {
        let Some(udp) = &self.udp else {
            return;
        };
        for _ in 0..BATCH {
            match udp.recv_from(&mut self.udp_buf) {
                Ok((n, from)) => {
                    // Beacons from outside our interface's network are not for us.
                    let Some(ip) = self.net.accepts(from) else {
                        continue;
                    };
                    let now = Instant::now();
                    core.state.handle_beacon(now, ip, &self.udp_buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log(&core.state, &format!("beacon receive failed: {e}"));
                    break;
                }
            }
        }
    }

    /// Returns the stop linger when the application asked to stop (or went away).
    fn read_commands(&mut self, core: &mut Core, ready_bell: bool) -> Option<Duration> {
        self.bell.clear(ready_bell);
        // Everything queued comes in one hand-over; at most BATCH_COMMANDS are carried out
        // before the loop looks at the mailbox and the timers again.
        let closed = self.requests.0.take_all(&mut self.batch);
        let now = Instant::now();
        for _ in 0..BATCH_COMMANDS {
            match self.batch.pop_front() {
                Some(Request::Discovered(uuid, endpoint)) => {
                    core.state.handle_discovered(now, uuid, &endpoint)
                }
                Some(Request::StaticPeer(endpoint)) => {
                    // Checked by `Node::connect_peer`.
                    let _ = core.state.handle_static_peer(now, &endpoint);
                }
                Some(Request::Stats(reply)) => {
                    let mut stats = core.state.stats();
                    stats.receive_stalls = core.stalls;
                    if let Some(g) = &self.gossip {
                        let gs = g.stats();
                        stats.gossip_tuples = gs.tuples;
                        stats.gossip_clients = gs.clients;
                        stats.gossip_malformed = gs.malformed;
                        stats.gossip_refused = gs.refused;
                        stats.gossip_expired = gs.expired;
                        stats.gossip_peers = gs.peers;
                    }
                    let _ = reply.send(stats);
                }
                Some(Request::Stop(linger)) => return Some(linger.unwrap_or(self.stop_linger)),
                #[cfg(feature = "fault-injection")]
                Some(Request::InjectPanic) => panic!("injected by Node::inject_driver_panic"),
                None => return closed.then_some(self.stop_linger),
            }
            // Keep the outgoing queue short while a burst of requests is read.
            core.flush();
        }
        None
    }

    /// Closes everything once peers acknowledged our last messages (or `deadline` passed),
    /// then sends the port-0 beacon.
    fn shutdown(self, deadline: Instant) {
        let (ctx, links, router, zap, leaving, beacon_to) = {
            let mut core = self.close_mailbox();
            // What waits in backlogs goes into the DEALERs first, until the deadline. The
            // lock is not held while waiting: other threads' calls keep their timeouts.
            let mut fds = Vec::new();
            loop {
                core.flush_backlogs(false);
                core.backlog_fds(false, &mut fds);
                let left = deadline.saturating_duration_since(Instant::now());
                if fds.is_empty() || left.is_zero() {
                    break;
                }
                drop(core);
                let mut items: Vec<zmq::PollItem> = fds
                    .iter()
                    .map(|fd| zmq::PollItem::from_fd(*fd, zmq::POLLIN))
                    .collect();
                let wait = left.min(Duration::from_millis(ROOM_WAIT_MS as u64));
                let _ = zmq::poll(&mut items, wait.as_micros().div_ceil(1000) as i64);
                core = lock(&self.core);
            }
            let now = Instant::now();
            // Each DEALER may flush what it still holds until the stop deadline.
            let left = deadline.saturating_duration_since(now);
            let linger = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            for link in core.links.values() {
                link.set_linger(linger);
            }
            core.state.handle_stop(now);
            // The links close here; the port-0 beacon waits until they are flushed.
            let mut leaving = Vec::new();
            core.flush_holding(Some(&mut leaving));
            // From here on, commands fail with `Stopped`.
            (
                core.ctx.take(),
                core.links.take_all(),
                core.router.take(),
                core.zap.take(),
                leaving,
                core.beacon_to,
            )
        };
        drop(router);
        drop(links);
        // The ZAP handler's socket holds the context: it ends after the mailbox (which
        // would accept clients unasked without it) and before the context.
        if let Some(zap) = zap {
            zap.stop();
        }
        // Terminating the context waits until the DEALERs flushed or their linger ran out.
        drop(ctx);
        // Only now say goodbye: peers that see our port-0 beacon remove us at once, so it
        // must not overtake the messages above.
        if let Some(udp) = &self.udp {
            for bytes in &leaving {
                let _ = udp.send_to(bytes, beacon_to);
            }
        }
        let mut core = lock(&self.core);
        core.flush();
        core.publish();
    }

    /// Stops application threads from waiting on the mailbox's descriptor and waits
    /// until none does, so the descriptor is not closed (and its number reused) under a
    /// thread that polls it. Returns with the lock held.
    fn close_mailbox(&self) -> MutexGuard<'_, Core> {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            let mut core = lock(&self.core);
            if !core.handoff.close() {
                return core;
            }
            if Instant::now() >= give_up {
                core.handoff.force_close();
                return core;
            }
            // Wake it: a waiting application thread also polls the event queue's bell.
            core.events.wake_waiters();
            drop(core);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn fatal(&self, what: &str) {
        fail(&self.core, what);
    }
}

/// The driver failed (`why`): records it for the application, closes the sockets and
/// says goodbye with the port-0 beacon, so peers see EXIT at once rather than after the
/// expired timeout. Events queued before are handed over, but no STOP: the application
/// sees `Error::DriverFailed` where a clean stop ends with STOP and `Error::Stopped`.
fn fail(core: &Mutex<Core>, why: &str) {
    // First, as an application thread that found the event queue closed waits for it
    // (and may be the mailbox's reader, which the wait below waits for).
    lock(core).failure.get_or_insert_with(|| why.to_string());
    // As `Driver::close_mailbox`: no application thread may be polling the mailbox's
    // descriptor when it closes.
    let give_up = Instant::now() + Duration::from_secs(5);
    let mut core = loop {
        let mut core = lock(core);
        if !core.handoff.close() {
            break core;
        }
        if Instant::now() >= give_up {
            core.handoff.force_close();
            break core;
        }
        core.events.wake_waiters();
        drop(core);
        std::thread::sleep(Duration::from_millis(1));
    };
    log(&core.state, &format!("driver failed: {why}"));
    // The state machine may be what failed: then the goodbye is made here.
    let uuid = core.state.config().uuid;
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        core.state.handle_stop(Instant::now())
    }));
    core.router = None;
    core.links.take_all();
    if let Some(zap) = core.zap.take() {
        zap.stop();
    }
    core.ctx = None;
    // What the state machine still wants sent goes first (a beacon among it must not
    // follow the goodbye); its messages go nowhere now.
    let mut leaving = Vec::new();
    let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        core.flush_holding(Some(&mut leaving))
    }));
    if stopped.is_err() || flushed.is_err() || leaving.is_empty() {
        let mut bye = crate::proto::beacon::Beacon::new(uuid, 0);
        bye.curve_key = core.curve.map(|(public, _)| public);
        leaving = vec![bye.encode()];
    }
    if let Some(udp) = &core.udp {
        for bytes in &leaving {
            let _ = udp.send_to(bytes, core.beacon_to);
        }
    }
    if flushed.is_ok() {
        core.outgoing.retain(|e| !matches!(e, Event::Stop));
        core.publish();
    }
}
