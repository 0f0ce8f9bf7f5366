//! CURVE on the node's sockets: the ZAP handler that authenticates every peer at the
//! ZMTP handshake, and the allow-list it consults, re-read when its files change.
//!
//! libzmq asks the ZAP handler bound at `inproc://zeromq.zap.01` in the socket's context
//! whether a CURVE client may connect (ZMQ RFC 27). Each node has its own context, so
//! each node has its own handler, on a thread of its own: a handshake never waits for
//! the driver's lock. It accepts a client key on the allow-list (any key without one,
//! as Zyre) and names the key in the reply's User-Id, which libzmq attaches to every
//! message of that connection: the driver reads it to bind each peer to its key (see
//! `NodeState::handle_message_from`). Requests for any other domain or mechanism (an
//! application's own sockets on the node's context) are refused: fail closed.
//!
//! The handler is bound before the mailbox, or libzmq would let clients through
//! unasked while it is missing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::curve::{allow, z85, AllowList};
use crate::error::{io_err, zmq_err, Error};

/// The ZAP domain of the mailbox. It never goes on the wire (Zyre's is "global").
pub(crate) const DOMAIN: &str = "zre";
const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
const CONTROL_ENDPOINT: &str = "inproc://zre.zap.control";

/// The keys accepted: None, any.
pub(crate) type Shared = Arc<RwLock<Option<AllowList>>>;

/// The running handler; [`Zap::stop`], or dropping it, ends it. That must come before
/// the context is terminated: its socket holds the context.
pub(crate) struct Zap {
    control: zmq::Socket,
    thread: Option<JoinHandle<()>>,
}

impl Zap {
    /// Binds the handler in `ctx` and starts its thread.
    pub(crate) fn start(ctx: &zmq::Context, allowed: Shared, name: String) -> Result<Zap, Error> {
        let rep = ctx
            .socket(zmq::REP)
            .map_err(zmq_err("create ZAP handler"))?;
        rep.set_linger(0).map_err(zmq_err("set linger"))?;
        rep.bind(ZAP_ENDPOINT)
            .map_err(zmq_err(format!("bind {ZAP_ENDPOINT}")))?;
        let stop = ctx
            .socket(zmq::PAIR)
            .map_err(zmq_err("create ZAP control"))?;
        stop.bind(CONTROL_ENDPOINT)
            .map_err(zmq_err("bind ZAP control"))?;
        let control = ctx
            .socket(zmq::PAIR)
            .map_err(zmq_err("create ZAP control"))?;
        control
            .connect(CONTROL_ENDPOINT)
            .map_err(zmq_err("connect ZAP control"))?;
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || serve(&rep, &stop, &allowed))
            .map_err(io_err("spawn ZAP thread"))?;
        Ok(Zap {
            control,
            thread: Some(thread),
        })
    }

    /// Ends the handler and waits for its thread.
    pub(crate) fn stop(self) {
        drop(self);
    }
}

impl Drop for Zap {
    fn drop(&mut self) {
        let _ = self.control.send("", 0);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers requests until told to stop (or the context ends).
fn serve(rep: &zmq::Socket, stop: &zmq::Socket, allowed: &Shared) {
    loop {
        let mut items = [
            rep.as_poll_item(zmq::POLLIN),
            stop.as_poll_item(zmq::POLLIN),
        ];
        match zmq::poll(&mut items, -1) {
            Ok(_) => {}
            Err(zmq::Error::EINTR) => continue,
            Err(_) => return,
        }
        if items[1].is_readable() {
            return;
        }
        if !items[0].is_readable() {
            continue;
        }
        let Ok(request) = rep.recv_multipart(zmq::DONTWAIT) else {
            continue;
        };
        let list = allowed.read().unwrap_or_else(|p| p.into_inner());
        let reply = answer(&request, list.as_ref());
        drop(list);
        if rep.send_multipart(reply, 0).is_err() {
            return;
        }
    }
}

/// The reply to one ZAP request (RFC 27): `version, request id, status code, status
/// text, user id, metadata`. Pure.
pub(crate) fn answer(request: &[Vec<u8>], allowed: Option<&AllowList>) -> Vec<Vec<u8>> {
    let id = request.get(1).cloned().unwrap_or_default();
    let reply = |code: &str, text: &str, user: String| {
        vec![
            b"1.0".to_vec(),
            id.clone(),
            code.as_bytes().to_vec(),
            text.as_bytes().to_vec(),
            user.into_bytes(),
            Vec::new(),
        ]
    };
    // version, request id, domain, address, routing id, mechanism, credentials...
    let [version, _, domain, _, _, mechanism, rest @ ..] = request else {
        return reply("500", "malformed ZAP request", String::new());
    };
    if version.as_slice() != b"1.0" {
        return reply("500", "unknown ZAP version", String::new());
    }
    if domain.as_slice() != DOMAIN.as_bytes() || mechanism.as_slice() != b"CURVE" {
        return reply("400", "not the node's mailbox", String::new());
    }
    let key: Option<[u8; 32]> = rest.first().and_then(|k| k.as_slice().try_into().ok());
    let Some(key) = key else {
        return reply("500", "malformed CURVE credentials", String::new());
    };
    if allowed.is_some_and(|l| !l.contains(&key)) {
        return reply("400", "key not allowed", String::new());
    }
    reply("200", "OK", z85::encode_key(&key))
}

/// Checks that a certificate's public key belongs to its secret key, by a CURVE
/// handshake with itself over a private IPC socket (abstract namespace: no file, no
/// network) on a context of its own: the server holds the secret key, the client
/// expects the public one. A certificate whose keys do not match would make every
/// handshake with a peer fail without a word; this says so at start instead.
pub(crate) fn check_pair(public: &[u8; 32], secret: &[u8; 32]) -> Result<(), Error> {
    let ctx = zmq::Context::new();
    let err = |what: &str| zmq_err(format!("check the certificate's key pair: {what}"));
    let server = ctx.socket(zmq::PULL).map_err(err("socket"))?;
    let client = ctx.socket(zmq::PUSH).map_err(err("socket"))?;
    let endpoint = format!("ipc://@zre-keycheck-{}", uuid::Uuid::new_v4().simple());
    server
        .set_curve_server(true)
        .and_then(|()| server.set_curve_secretkey(secret))
        .and_then(|()| server.set_linger(0))
        .and_then(|()| server.bind(&endpoint))
        .map_err(err("server"))?;
    client
        .set_curve_publickey(public)
        .and_then(|()| client.set_curve_secretkey(secret))
        .and_then(|()| client.set_curve_serverkey(public))
        .and_then(|()| client.set_linger(0))
        .and_then(|()| client.connect(&endpoint))
        .and_then(|()| client.send("", zmq::DONTWAIT))
        .map_err(err("client"))?;
    // A loopback handshake takes well under a millisecond; a failed one never delivers.
    let mut items = [server.as_poll_item(zmq::POLLIN)];
    let ready = zmq::poll(&mut items, 2000).map_err(err("poll"))?;
    if ready == 0 {
        return Err(Error::Config(
            "the certificate's public key is not the one of its secret key".into(),
        ));
    }
    Ok(())
}

/// The key a message's connection authenticated with: the User-Id our handler set.
pub(crate) fn sender_key(msg: &mut zmq::Message) -> Option<[u8; 32]> {
    msg.gets("User-Id").and_then(|id| z85::decode_key(id).ok())
}

/// The allow-list on disk, looked at again every [`AllowSource::CHECK`] and re-read
/// when it changed. A list that no longer reads (a file half written, say) leaves the
/// last good one in force.
pub(crate) struct AllowSource {
    path: PathBuf,
    stamp: Vec<(PathBuf, Option<std::time::SystemTime>, u64)>,
    pub(crate) next_check: Instant,
}

impl AllowSource {
    /// How often the files are looked at.
    pub(crate) const CHECK: Duration = Duration::from_secs(1);

    /// Reads the list for the first time.
    pub(crate) fn load(path: &Path) -> Result<(AllowSource, AllowList), Error> {
        let stamp = allow::stamp(path);
        let list = AllowList::load(path).map_err(|e| Error::Config(e.to_string()))?;
        let source = AllowSource {
            path: path.to_path_buf(),
            stamp,
            next_check: Instant::now() + Self::CHECK,
        };
        Ok((source, list))
    }

    /// If it is time and the files changed, the list as it reads now (Err: why not).
    pub(crate) fn poll(&mut self, now: Instant) -> Option<Result<AllowList, String>> {
        if now < self.next_check {
            return None;
        }
        self.next_check = now + Self::CHECK;
        let stamp = allow::stamp(&self.path);
        if stamp == self.stamp {
            return None;
        }
        self.stamp = stamp;
        Some(AllowList::load(&self.path).map_err(|e| e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::PublicKey;

    fn request(domain: &str, mechanism: &str, key: &[u8]) -> Vec<Vec<u8>> {
        [
            b"1.0".as_slice(),
            b"7",
            domain.as_bytes(),
            b"127.0.0.1",
            b"",
            mechanism.as_bytes(),
            key,
        ]
        .iter()
        .map(|f| f.to_vec())
        .collect()
    }

    #[test]
    fn a_certificate_whose_keys_do_not_match_is_refused() {
        if !crate::curve::available() {
            return;
        }
        let a = crate::curve::generate().unwrap();
        let b = crate::curve::generate().unwrap();
        let (pa, sa) = (a.public.0, *a.secret.as_ref().unwrap().as_bytes());
        let sb = *b.secret.as_ref().unwrap().as_bytes();
        assert!(check_pair(&pa, &sa).is_ok());
        let e = check_pair(&pa, &sb).unwrap_err();
        assert!(
            e.to_string().contains("not the one of its secret key"),
            "{e}"
        );
    }

    #[test]
    fn answers() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let list = AllowList::from_keys([PublicKey(a)]);
        let status = |r: Vec<Vec<u8>>| {
            assert_eq!(r.len(), 6);
            assert_eq!(r[0], b"1.0");
            (String::from_utf8(r[2].clone()).unwrap(), r[4].clone())
        };
        let (code, user) = status(answer(&request(DOMAIN, "CURVE", &a), Some(&list)));
        assert_eq!(code, "200");
        assert_eq!(user, z85::encode_key(&a).into_bytes());
        assert_eq!(answer(&request(DOMAIN, "CURVE", &a), Some(&list))[1], b"7");
        assert_eq!(
            status(answer(&request(DOMAIN, "CURVE", &b), Some(&list))).0,
            "400"
        );
        assert_eq!(status(answer(&request(DOMAIN, "CURVE", &b), None)).0, "200");
        assert_eq!(
            status(answer(&request("other", "CURVE", &a), None)).0,
            "400"
        );
        assert_eq!(status(answer(&request(DOMAIN, "PLAIN", &a), None)).0, "400");
        assert_eq!(
            status(answer(&request(DOMAIN, "CURVE", &a[..5]), None)).0,
            "500"
        );
        assert_eq!(status(answer(&[b"1.0".to_vec()], None)).0, "500");
        assert_eq!(status(answer(&[], None)).0, "500");
    }
}
