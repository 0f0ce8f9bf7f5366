//! The gossip sockets: the hub's ROUTER and one DEALER per hub we connect to, owned by the
//! driver thread and fed to the pure [`Gossip`] (see `crate::proto::gossip`).

use std::time::{Duration, Instant};

use super::{log, Core};
use crate::error::{zmq_err, Error};
use crate::proto::gossip::{node_tuple, Gossip, GossipConfig, GossipOutput, GossipStats};
use crate::proto::node::Config;

/// Frames libzmq holds per gossip connection before sends are dropped (CZMQ's are
/// unbounded; one tuple per node, so this is far more than a table).
const GOSSIP_HWM: i32 = 100_000;
/// ZMTP heartbeats on gossip connections: a client or hub that vanished without closing
/// its connection (a cable pulled, a host frozen) is noticed within this timeout.
const HEARTBEAT_IVL_MS: i32 = 1_000;
const HEARTBEAT_TIMEOUT_MS: i32 = 3_000;
/// Frames read from one gossip socket per turn of the driver's loop.
const BATCH: usize = 512;

/// Gossip for one node.
pub(crate) struct GossipIo {
    state: Gossip,
    hub: Option<zmq::Socket>,
    remotes: Vec<zmq::Socket>,
}

impl GossipIo {
    /// Binds the hub (if any endpoints to bind) and connects to the hubs; `None` when the
    /// node has neither. Our tuple names `endpoint` and lives `ttl`.
    pub fn start(
        ctx: &zmq::Context,
        bind: &[String],
        connect: &[String],
        config: &Config,
        ttl: Duration,
    ) -> Result<Option<GossipIo>, Error> {
        if bind.is_empty() && connect.is_empty() {
            return Ok(None);
        }
        let hub = if bind.is_empty() {
            None
        } else {
            let hub = ctx
                .socket(zmq::ROUTER)
                .map_err(zmq_err("create gossip hub"))?;
            // A frame to a client whose connection is gone fails at once (EHOSTUNREACH)
            // instead of vanishing: that is how the hub learns the client went.
            hub.set_router_mandatory(true)
                .map_err(zmq_err("set router mandatory"))?;
            tune(&hub)?;
            for ep in bind {
                hub.bind(ep)
                    .map_err(zmq_err(format!("bind gossip hub {ep}")))?;
            }
            Some(hub)
        };
        let mut remotes = Vec::new();
        for ep in connect {
            let dealer = ctx
                .socket(zmq::DEALER)
                .map_err(zmq_err("create gossip client"))?;
            tune(&dealer)?;
            dealer
                .connect(ep)
                .map_err(zmq_err(format!("connect to gossip hub {ep}")))?;
            remotes.push(dealer);
        }
        let own = node_tuple(&config.uuid, &config.endpoint);
        let state = Gossip::new(
            GossipConfig::new(Some(own), ttl),
            remotes.len(),
            Instant::now(),
        );
        Ok(Some(GossipIo {
            state,
            hub,
            remotes,
        }))
    }

    /// Poll items for every gossip socket, in the order [`GossipIo::read`] takes.
    pub fn poll_items(&self) -> impl Iterator<Item = zmq::PollItem<'_>> {
        self.hub
            .iter()
            .chain(self.remotes.iter())
            .map(|s| s.as_poll_item(zmq::POLLIN))
    }

    /// When the gossip timers are next due.
    pub fn deadline(&self) -> Instant {
        self.state.poll_timeout()
    }

    /// Counters.
    pub fn stats(&self) -> GossipStats {
        self.state.stats()
    }

    /// Reads what the sockets hold (`ready[i]` for the i-th poll item), runs the timers,
    /// and carries out what the state machine decided; peers it learned go to the node.
    pub fn turn(&mut self, core: &mut Core, ready: &[bool]) {
        let now = Instant::now();
        let mut i = 0;
        if let Some(hub) = &self.hub {
            if ready.first().copied().unwrap_or(false) {
                for _ in 0..BATCH {
                    match hub.recv_multipart(zmq::DONTWAIT) {
                        Ok(parts) => {
                            // A DEALER's frame reaches a ROUTER as [routing id, frame],
                            // with no empty delimiter (zgossip_msg.c).
                            if let [id, frame] = parts.as_slice() {
                                self.state.handle_client(now, id, frame);
                            } else if let Some(id) = parts.first() {
                                // Several frames: malformed as a whole.
                                self.state.handle_client(now, id, &[]);
                            }
                        }
                        Err(zmq::Error::EAGAIN) => break,
                        Err(zmq::Error::EINTR) => continue,
                        Err(e) => {
                            log(&core.state, &format!("gossip hub receive failed: {e}"));
                            break;
                        }
                    }
                }
            }
            i = 1;
        }
        for (r, remote) in self.remotes.iter().enumerate() {
            if !ready.get(i + r).copied().unwrap_or(false) {
                continue;
            }
            for _ in 0..BATCH {
                match remote.recv_multipart(zmq::DONTWAIT) {
                    Ok(parts) => match parts.as_slice() {
                        [frame] => self.state.handle_remote(now, r, frame),
                        _ => self.state.handle_remote(now, r, &[]),
                    },
                    Err(zmq::Error::EAGAIN) => break,
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => {
                        log(&core.state, &format!("gossip receive failed: {e}"));
                        break;
                    }
                }
            }
        }
        if now >= self.state.poll_timeout() {
            self.state.handle_timeout(now);
        }
        self.carry_out(core, now);
    }

    fn carry_out(&mut self, core: &mut Core, now: Instant) {
        while let Some(out) = self.state.poll_output() {
            match out {
                GossipOutput::ToClient { client, frame } => {
                    let Some(hub) = &self.hub else { continue };
                    let sent = hub
                        .send(&client[..], zmq::SNDMORE | zmq::DONTWAIT)
                        .and_then(|_| hub.send(&frame[..], zmq::DONTWAIT));
                    match sent {
                        Ok(()) => {}
                        Err(zmq::Error::EHOSTUNREACH) => {
                            self.state.handle_client_gone(now, &client)
                        }
                        // Full (EAGAIN): dropped; the next refresh repairs it.
                        Err(e) => log(&core.state, &format!("gossip send to client: {e}")),
                    }
                }
                GossipOutput::ToRemote { remote, frame } => {
                    if let Some(s) = self.remotes.get(remote) {
                        if let Err(e) = s.send(&frame[..], zmq::DONTWAIT) {
                            log(&core.state, &format!("gossip send to hub {remote}: {e}"));
                        }
                    }
                }
                GossipOutput::Peer { uuid, endpoint } => {
                    core.state.handle_discovered(now, uuid, &endpoint);
                }
                GossipOutput::Log(line) => log(&core.state, &format!("gossip: {line}")),
            }
        }
    }
}

fn tune(s: &zmq::Socket) -> Result<(), Error> {
    s.set_linger(0).map_err(zmq_err("set linger"))?;
    s.set_sndhwm(GOSSIP_HWM).map_err(zmq_err("set sndhwm"))?;
    s.set_rcvhwm(GOSSIP_HWM).map_err(zmq_err("set rcvhwm"))?;
    s.set_heartbeat_ivl(HEARTBEAT_IVL_MS)
        .map_err(zmq_err("set heartbeat"))?;
    s.set_heartbeat_timeout(HEARTBEAT_TIMEOUT_MS)
        .map_err(zmq_err("set heartbeat timeout"))?;
    Ok(())
}
