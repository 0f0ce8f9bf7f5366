//! Test double: a hostile ZRE sender for the network-namespace lab (`tests/lab/`, s8): it
//! sends malformed beacons and messages at a victim node and prints, as one JSON line, what
//! it tried in each category, so the test can compare that with the victim's counters.
//!
//! Only ever run inside a lab namespace (`ip netns exec NS target/debug/zre-test-rogue ...`):
//! it broadcasts to the address it is given.
//!
//! - `rogue beacons --to BCAST:PORT --victim HEX`: every size from 0 to 100 bytes (none a
//!   valid beacon), wrong prefixes, wrong versions, v3 (CURVE) beacons, beacons carrying the
//!   victim's own UUID, and port-0 ("leaving") beacons for UUIDs nobody knows.
//! - `rogue messages --target tcp://IP:PORT --victim HEX --me IP`: DEALERs sending garbage,
//!   wrong signatures, versions and ids, every truncation of a HELLO, counts and lengths
//!   claiming gigabytes, trailing bytes, identities that are not 17 bytes (and the victim's
//!   own), messages before HELLO, and one rogue peer that says HELLO, JOINs with a wrong
//!   status, whispers, then skips sequence numbers; plus a HELLO whose sequence is not 1.
//! - `rogue flood --to BCAST:PORT --count N --me IP`: N valid beacons with fresh random
//!   UUIDs, each pointing at a port on this host that nothing serves.
//! - `rogue forge --to BCAST:PORT --target tcp://IP:PORT --peer HEX --peer-endpoint E
//!   --me IP --hellos N`: forged input aimed at a healthy peer of the victim: port-0
//!   beacons naming it (sent from this host), a HELLO from a made-up UUID claiming its
//!   endpoint followed by a blind PING-OK, then N HELLOs from N made-up UUIDs, one
//!   connection each, claiming endpoints on this host that nothing serves.
//!
//! - `rogue gossip --target tcp://IP:PORT --count N`: at a zgossip hub, every truncation of
//!   every message, a bad signature, a bad version, an unknown id, a frame in two parts,
//!   then HELLO and a flood of N tuples with made-up keys from one client.
//!
//! stdout: `{"type":"tried",...}` with one count per category (see each function).

use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use zre::proto::codec::{Body, Hello, Message};
use zre::Uuid;

#[derive(Parser)]
#[command(about = "Hostile ZRE input for the namespace lab")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Malformed and odd beacons.
    Beacons {
        /// Broadcast address and beacon port, e.g. 10.77.8.255:48080.
        #[arg(long)]
        to: SocketAddrV4,
        /// The victim's UUID (for beacons that claim to be it).
        #[arg(long)]
        victim: Uuid,
    },
    /// Malformed and unexpected messages to the victim's mailbox.
    Messages {
        /// The victim's mailbox endpoint.
        #[arg(long)]
        target: String,
        /// The victim's UUID.
        #[arg(long)]
        victim: Uuid,
        /// This host's IP (for the endpoint the rogue peer claims).
        #[arg(long)]
        me: String,
    },
    /// Forged input aimed at evicting or crowding out a healthy peer of the victim.
    Forge {
        /// Broadcast address and beacon port.
        #[arg(long)]
        to: SocketAddrV4,
        /// The victim's mailbox endpoint.
        #[arg(long)]
        target: String,
        /// The healthy peer's UUID.
        #[arg(long)]
        peer: Uuid,
        /// The healthy peer's mailbox endpoint.
        #[arg(long)]
        peer_endpoint: String,
        /// This host's IP (for the endpoints the flooding HELLOs claim).
        #[arg(long)]
        me: String,
        /// How many HELLOs in the flood.
        #[arg(long, default_value_t = 500)]
        hellos: u32,
    },
    /// Valid beacons with fake UUIDs pointing at endpoints nothing serves.
    Flood {
        /// Broadcast address and beacon port.
        #[arg(long)]
        to: SocketAddrV4,
        /// How many beacons.
        #[arg(long, default_value_t = 10_000)]
        count: u32,
    },
    /// Malformed zgossip frames and a tuple flood at a gossip hub.
    Gossip {
        /// The hub's endpoint.
        #[arg(long)]
        target: String,
        /// How many tuples in the flood.
        #[arg(long, default_value_t = 10_000)]
        count: u32,
    },
}

/// A small xorshift generator: the bytes need not be secure, only varied.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(Uuid::new_v4().as_u64_pair().0 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn beacon(version: u8, uuid: &Uuid, port: u16) -> Vec<u8> {
    let mut b = b"ZRE".to_vec();
    b.push(version);
    b.extend_from_slice(uuid.as_bytes());
    b.extend_from_slice(&port.to_be_bytes());
    b
}

fn udp_sender() -> anyhow::Result<UdpSocket> {
    let s = UdpSocket::bind("0.0.0.0:0").context("bind UDP")?;
    s.set_broadcast(true).context("SO_BROADCAST")?;
    Ok(s)
}

/// Sends datagrams with a short pause now and then, so the victim's socket buffer is not
/// what drops them: every datagram should be seen and counted.
fn send_all(s: &UdpSocket, to: SocketAddrV4, list: &[Vec<u8>]) -> anyhow::Result<()> {
    for (i, d) in list.iter().enumerate() {
        s.send_to(d, to).context("send beacon")?;
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(())
}

fn beacons(to: SocketAddrV4, victim: Uuid) -> anyhow::Result<Value> {
    let mut rng = Rng::new();
    let s = udp_sender()?;
    // Every size 0..=100: the "ZRE" 0x01 prefix (as much of it as fits) and random bytes;
    // at 22 bytes the version is made wrong, at 54 it already is (v1 at the v3 size).
    let mut sizes = Vec::new();
    for n in 0..=100usize {
        let mut d = b"ZRE\x01".to_vec();
        d.extend(rng.bytes(100));
        d.truncate(n);
        if n == 22 {
            d[3] = 0x09;
        }
        sizes.push(d);
    }
    let u = Uuid::new_v4();
    let mut prefix = Vec::new();
    for p in [b"ZRF", b"zre", b"\0\0\0", b"XRE"] {
        let mut d = beacon(1, &u, 40000);
        d[..3].copy_from_slice(p);
        prefix.push(d);
    }
    let mut v3 = beacon(3, &u, 40000);
    v3.extend(rng.bytes(32));
    v3[..3].copy_from_slice(b"ZRX");
    prefix.push(v3);
    let mut version = Vec::new();
    for v in [0u8, 2, 3, 0xff] {
        version.push(beacon(v, &Uuid::new_v4(), 40000));
    }
    for v in [1u8, 2, 0xff] {
        let mut d = beacon(v, &Uuid::new_v4(), 40000);
        d.extend(rng.bytes(32));
        version.push(d);
    }
    let curve: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let mut d = beacon(3, &Uuid::new_v4(), 40000);
            d.extend(rng.bytes(32));
            d
        })
        .collect();
    let own: Vec<Vec<u8>> = (0..3).map(|i| beacon(1, &victim, 40000 + i)).collect();
    let leaving: Vec<Vec<u8>> = (0..3).map(|_| beacon(1, &Uuid::new_v4(), 0)).collect();
    for list in [&sizes, &prefix, &version, &curve, &own, &leaving] {
        send_all(&s, to, list)?;
    }
    Ok(
        json!({"type": "tried", "sizes": sizes.len(), "wrong_prefix": prefix.len(),
              "wrong_version": version.len(), "curve": curve.len(), "own_uuid": own.len(),
              "port0_unknown": leaving.len(),
              "invalid": sizes.len() + prefix.len() + version.len()}),
    )
}

fn identity(uuid: &Uuid) -> Vec<u8> {
    let mut id = vec![1u8];
    id.extend_from_slice(uuid.as_bytes());
    id
}

fn frame(seq: u16, body: Body) -> Vec<u8> {
    Message::new(seq, body).to_bytes().expect("encodable")
}

fn hello(me: &str, name: &str) -> Body {
    Body::Hello(Hello {
        endpoint: format!("tcp://{me}:1"),
        groups: vec!["G".into()],
        status: 0,
        name: name.into(),
        headers: vec![("X-Rogue".into(), "yes".into())],
    })
}

fn u32be(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

/// Frames that must fail to decode: garbage, bad signature/version/id, every truncation of
/// a HELLO, gigabyte claims and trailing bytes.
fn invalid_frames(rng: &mut Rng, me: &str) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut out: Vec<(&'static str, Vec<Vec<u8>>)> = Vec::new();
    for i in 0..30usize {
        let mut f = rng.bytes(i * 7 % 200);
        if f.first() == Some(&0xAA) {
            f[0] = 0x55;
        }
        // Garbage, sometimes with garbage content frames after it.
        let mut msg = vec![f];
        for _ in 0..(i % 3) {
            msg.push(rng.bytes(50));
        }
        out.push(("garbage", msg));
    }
    // A megabyte of garbage in one frame.
    out.push(("garbage", vec![rng.bytes(1 << 20)]));
    let ping = frame(1, Body::Ping);
    for sig in [[0xAA, 0xA2], [0xA1, 0xAA], [0, 0], [0xFF, 0xFF]] {
        let mut f = ping.clone();
        f[..2].copy_from_slice(&sig);
        out.push(("wrong_signature", vec![f]));
    }
    for v in [0u8, 1, 3, 0xFF] {
        let mut f = ping.clone();
        f[3] = v;
        out.push(("wrong_version", vec![f]));
    }
    for id in [0u8, 11, 12, 0x7F, 0xFF] {
        let mut f = ping.clone();
        f[2] = id;
        out.push(("unknown_id", vec![f]));
    }
    let full = frame(1, hello(me, "truncated"));
    for n in 0..full.len() {
        out.push(("truncated", vec![full[..n].to_vec()]));
    }
    let shout = frame(2, Body::Shout { group: "G".into() });
    for n in 0..shout.len() {
        out.push(("truncated", vec![shout[..n].to_vec()]));
    }
    // HELLO = header(6) endpoint:string groups:strings status:u8 name:string headers:hash
    let header = |id: u8| vec![0xAA, 0xA1, id, 2, 0, 1];
    let endpoint = |f: &mut Vec<u8>| {
        let e = format!("tcp://{me}:1");
        f.push(e.len() as u8);
        f.extend_from_slice(e.as_bytes());
    };
    // groups: 4 G entries claimed, none there.
    let mut f = header(1);
    endpoint(&mut f);
    f.extend(u32be(u32::MAX));
    out.push(("huge_count", vec![f]));
    // One group whose longstr claims 4 GiB.
    let mut f = header(1);
    endpoint(&mut f);
    f.extend(u32be(1));
    f.extend(u32be(u32::MAX));
    f.extend(b"abc");
    out.push(("huge_count", vec![f]));
    // Headers: 2 G entries claimed.
    let mut f = header(1);
    endpoint(&mut f);
    f.extend(u32be(0));
    f.push(0);
    f.push(1);
    f.push(b'n');
    f.extend(u32be(0x7FFF_FFFF));
    out.push(("huge_count", vec![f]));
    // One header whose value claims 4 GiB - 16.
    let mut f = header(1);
    endpoint(&mut f);
    f.extend(u32be(0));
    f.push(0);
    f.push(1);
    f.push(b'n');
    f.extend(u32be(1));
    f.push(1);
    f.push(b'k');
    f.extend(u32be(0xFFFF_FFF0));
    f.extend(b"v");
    out.push(("huge_count", vec![f]));
    // A string claiming 255 bytes with 3 there.
    let mut f = header(3);
    f.push(255);
    f.extend(b"abc");
    out.push(("huge_count", vec![f]));
    for extra in [1usize, 7] {
        let mut f = frame(1, Body::Ping);
        f.extend(rng.bytes(extra));
        out.push(("trailing", vec![f]));
        let mut f = frame(
            1,
            Body::Join {
                group: "G".into(),
                status: 1,
            },
        );
        f.extend(rng.bytes(extra));
        out.push(("trailing", vec![f]));
    }
    out
}

struct Sender {
    ctx: zmq::Context,
    target: String,
    sockets: Vec<zmq::Socket>,
}

impl Sender {
    /// A DEALER with this identity (`None`: the ROUTER assigns its own 5-byte one).
    fn dealer(&mut self, identity: Option<&[u8]>) -> anyhow::Result<usize> {
        let s = self.ctx.socket(zmq::DEALER)?;
        if let Some(id) = identity {
            s.set_identity(id)?;
        }
        s.set_linger(5000)?;
        s.set_sndhwm(0)?;
        s.connect(&self.target)?;
        self.sockets.push(s);
        Ok(self.sockets.len() - 1)
    }

    fn send(&self, i: usize, frames: &[Vec<u8>]) -> anyhow::Result<()> {
        let s = &self.sockets[i];
        let last = frames.len() - 1;
        for (j, f) in frames.iter().enumerate() {
            s.send(&f[..], if j < last { zmq::SNDMORE } else { 0 })?;
        }
        Ok(())
    }
}

fn messages(target: String, victim: Uuid, me: String) -> anyhow::Result<Value> {
    let mut rng = Rng::new();
    let mut tx = Sender {
        ctx: zmq::Context::new(),
        target,
        sockets: Vec::new(),
    };
    let mut tried: std::collections::BTreeMap<&str, u64> = Default::default();
    let mut count = |k: &'static str| *tried.entry(k).or_insert(0) += 1;

    // Frames that do not decode, each from a fresh valid identity of a stranger.
    let bad = invalid_frames(&mut rng, &me);
    let d = tx.dealer(Some(&identity(&Uuid::new_v4())))?;
    for (kind, frames) in &bad {
        tx.send(d, frames)?;
        count(kind);
    }
    let invalid = bad.len();

    // Identities that are not 0x01 + 16 bytes, each sending a valid HELLO.
    let good_hello = frame(1, hello(&me, "bad-identity"));
    let mut bad_ids: Vec<Option<Vec<u8>>> = vec![None];
    for n in [1usize, 5, 16, 18, 32, 255] {
        let mut id = rng.bytes(n);
        id[0] = 0x02 + (id[0] % 200); // zmq reserves identities starting with 0
        bad_ids.push(Some(id));
    }
    let mut id = identity(&Uuid::new_v4());
    id[0] = 0x02;
    bad_ids.push(Some(id));
    for id in &bad_ids {
        let d = tx.dealer(id.as_deref())?;
        tx.send(d, std::slice::from_ref(&good_hello))?;
        count("bad_identity");
    }

    // Messages before HELLO, from a stranger with a valid identity.
    let d = tx.dealer(Some(&identity(&Uuid::new_v4())))?;
    for body in [
        Body::Whisper,
        Body::Join {
            group: "G".into(),
            status: 1,
        },
        Body::Ping,
    ] {
        tx.send(d, &[frame(2, body), b"before hello".to_vec()])?;
        count("before_hello");
    }
    // A message claiming to come from the victim itself.
    let d = tx.dealer(Some(&identity(&victim)))?;
    tx.send(d, &[frame(1, Body::Whisper), b"i am you".to_vec()])?;
    count("own_identity");

    // A rogue peer: HELLO (it answers no PING, so it never enters), JOIN with a wrong
    // status, a whisper, then a gap; one more message after it was removed.
    let rogue = Uuid::new_v4();
    let d = tx.dealer(Some(&identity(&rogue)))?;
    tx.send(d, &[frame(1, hello(&me, "rogue"))])?;
    tx.send(
        d,
        &[frame(
            2,
            Body::Join {
                group: "R".into(),
                status: 7,
            },
        )],
    )?;
    count("wrong_status");
    tx.send(d, &[frame(3, Body::Whisper), b"rogue ok".to_vec()])?;
    tx.send(d, &[frame(9, Body::Whisper), b"after a gap".to_vec()])?;
    count("sequence_gap");
    tx.send(d, &[frame(10, Body::Whisper), b"removed".to_vec()])?;
    count("after_removal");
    // A HELLO whose sequence is not 1.
    let d = tx.dealer(Some(&identity(&Uuid::new_v4())))?;
    tx.send(d, &[frame(5, hello(&me, "hello-seq-5"))])?;
    count("hello_sequence");

    // Closing waits (linger) until everything was handed to the victim.
    let Sender { ctx, sockets, .. } = tx;
    drop(sockets);
    drop(ctx);
    Ok(
        json!({"type": "tried", "rogue": zre::uuid_hex(&rogue), "kinds": tried,
              "invalid": invalid,
              "unexpected": bad_ids.len() + 3 + 1 + 1,
              "gaps": 2}),
    )
}

fn forge(
    to: SocketAddrV4,
    target: String,
    peer: Uuid,
    peer_endpoint: String,
    me: String,
    hellos: u32,
) -> anyhow::Result<Value> {
    // "I am leaving", in the healthy peer's name, from this host's address.
    let s = udp_sender()?;
    let leaving: Vec<Vec<u8>> = (0..3).map(|_| beacon(1, &peer, 0)).collect();
    send_all(&s, to, &leaving)?;

    let mut tx = Sender {
        ctx: zmq::Context::new(),
        target,
        sockets: Vec::new(),
    };
    // A made-up UUID whose HELLO claims the healthy peer's endpoint, then answers the
    // PING it cannot see.
    let claimant = Uuid::new_v4();
    let d = tx.dealer(Some(&identity(&claimant)))?;
    let claim = Body::Hello(Hello {
        endpoint: peer_endpoint,
        groups: vec!["G".into()],
        status: 0,
        name: "claimant".into(),
        headers: vec![],
    });
    tx.send(d, &[frame(1, claim)])?;
    std::thread::sleep(Duration::from_millis(20));
    tx.send(d, &[frame(2, Body::PingOk)])?;

    // The HELLO flood: one connection per made-up UUID, closed once its HELLO is out, so
    // this process stays within its own fd limit.
    for i in 0..hellos {
        let uuid = Uuid::new_v4();
        let s = tx.ctx.socket(zmq::DEALER)?;
        s.set_identity(&identity(&uuid))?;
        s.set_linger(2000)?;
        s.connect(&tx.target)?;
        let hello = Body::Hello(Hello {
            endpoint: format!("tcp://{me}:{}", 30_000 + i % 10_000),
            groups: vec![],
            status: 0,
            name: "flood".into(),
            headers: vec![],
        });
        s.send(frame(1, hello), 0)?;
    }
    let Sender { ctx, sockets, .. } = tx;
    drop(sockets);
    drop(ctx);
    Ok(json!({"type": "tried", "port0_peer": leaving.len(),
              "claimant": zre::uuid_hex(&claimant), "hellos": hellos}))
}

fn flood(to: SocketAddrV4, count: u32) -> anyhow::Result<Value> {
    let s = udp_sender()?;
    let mut rng = Rng::new();
    let start = Instant::now();
    for i in 0..count {
        // Ports 20000-29999 on this host: nothing listens there.
        let port = 20_000 + (rng.next() % 10_000) as u16;
        s.send_to(&beacon(1, &Uuid::new_v4(), port), to)
            .context("send beacon")?;
        // About 4,000 a second: a flood, yet slow enough that the victim's socket buffer
        // is not what stops most of it (the victim has to deal with them).
        if i % 4 == 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(json!({"type": "tried", "flood": count,
              "seconds": start.elapsed().as_secs_f64()}))
}

fn main() -> anyhow::Result<()> {
    let out = match Args::parse().what {
        What::Beacons { to, victim } => beacons(to, victim)?,
        What::Messages { target, victim, me } => messages(target, victim, me)?,
        What::Forge {
            to,
            target,
            peer,
            peer_endpoint,
            me,
            hellos,
        } => forge(to, target, peer, peer_endpoint, me, hellos)?,
        What::Flood { to, count } => flood(to, count)?,
        What::Gossip { target, count } => gossip(&target, count)?,
    };
    println!("{out}");
    Ok(())
}

/// `rogue gossip`: counts `malformed` (frames the hub must drop) and `tuples` (flooded).
fn gossip(target: &str, count: u32) -> anyhow::Result<Value> {
    use zre::proto::gossip::{GossipMessage, Tuple};
    let ctx = zmq::Context::new();
    let s = ctx.socket(zmq::DEALER)?;
    s.set_linger(2_000)?;
    s.set_sndhwm(0)?;
    s.connect(target).context("connect to the hub")?;
    let publish = |key: String| {
        GossipMessage::Publish(Tuple {
            key: key.into_bytes(),
            value: b"tcp://10.77.255.1:9".to_vec(),
            ttl: 0,
        })
        .encode()
    };
    let whole = [
        GossipMessage::Hello.encode()?,
        publish(zre::uuid_hex(&Uuid::new_v4()))?,
        GossipMessage::Ping.encode()?,
        GossipMessage::Pong.encode()?,
        GossipMessage::Invalid.encode()?,
    ];
    let mut malformed = 0u64;
    for f in &whole {
        for cut in 0..f.len() {
            s.send(&f[..cut], 0)?;
            malformed += 1;
        }
    }
    for bad in [
        &[0xAA, 0xA1, 1, 1][..],
        &[0xAA, 0xA0, 1, 9],
        &[0xAA, 0xA0, 77, 1],
    ] {
        s.send(bad, 0)?;
        malformed += 1;
    }
    s.send_multipart([&b"two"[..], &b"parts"[..]], 0)?;
    malformed += 1;
    s.send(GossipMessage::Hello.encode()?, 0)?;
    for i in 0..count {
        s.send(publish(format!("{:032X}", 0xF000_0000u64 + i as u64))?, 0)?;
    }
    // The linger above lets what is queued go out before the process ends.
    Ok(json!({"type": "tried", "malformed": malformed, "tuples": count}))
}
