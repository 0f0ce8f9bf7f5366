//! The raw libzmq baseline roles: a ROUTER that counts, DEALERs that send the same
//! two-frame shape as a whisper (a 6-byte ZRE header, then the content), and a ROUTER that
//! echoes. No ZRE in here: what a node adds is measured against these.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::anyhow;
use serde_json::{json, Value};

use crate::roles::{now_ns, Quiet};

pub(crate) fn raw_recv(count: u64, out: &dyn Fn(Value), stop: &AtomicBool) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_rcvtimeo(100)?;
    router.bind("tcp://127.0.0.1:*")?;
    let ep = router
        .get_last_endpoint()?
        .map_err(|_| anyhow!("endpoint"))?;
    out(json!({"ev": "ready", "endpoint": ep}));
    let mut msg = zmq::Message::new();
    let (mut got, mut first, mut last) = (0u64, 0u64, 0u64);
    let mut quiet = Quiet::default();
    while got < count && !stop.load(Ordering::Relaxed) {
        match router.recv(&mut msg, 0) {
            Ok(()) => {
                while router.get_rcvmore()? {
                    router.recv(&mut msg, 0)?;
                }
                got += 1;
                if got == 1 {
                    first = now_ns();
                }
            }
            Err(zmq::Error::EAGAIN) if quiet.still(got) => {}
            Err(zmq::Error::EAGAIN) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if got > 0 {
        last = now_ns();
    }
    out(json!({"ev": "done", "got": got, "first": first, "last": last}));
    Ok(())
}

pub(crate) fn raw_send(
    count: u64,
    size: usize,
    endpoints: &[String],
    out: &dyn Fn(Value),
) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let mut dealers = Vec::new();
    for ep in endpoints {
        let d = ctx.socket(zmq::DEALER)?;
        d.set_identity(&[1u8; 17])?;
        d.connect(ep)?;
        dealers.push(d);
    }
    // The same shape as a whisper: a 6-byte ZRE frame, then the content.
    let header = [0xAA, 0xA1, 2, 2, 0, 1];
    let payload = vec![b'x'; size];
    for _ in 0..count {
        for d in &dealers {
            d.send(&header[..], zmq::SNDMORE)?;
            d.send(&payload[..], 0)?;
        }
    }
    // Linger is infinite: dropping the sockets and the context waits until all is sent.
    drop(dealers);
    drop(ctx);
    out(json!({"ev": "sent"}));
    Ok(())
}

pub(crate) fn raw_echo(out: &dyn Fn(Value), stop: &AtomicBool) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_rcvtimeo(100)?;
    router.bind("tcp://127.0.0.1:*")?;
    let ep = router
        .get_last_endpoint()?
        .map_err(|_| anyhow!("endpoint"))?;
    out(json!({"ev": "ready", "endpoint": ep}));
    while !stop.load(Ordering::Relaxed) {
        match router.recv_multipart(0) {
            Ok(frames) => router.send_multipart(frames, 0)?,
            Err(zmq::Error::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
