//! CURVE, as Zyre does it, and an allow-list beyond it: keys, certificate files and
//! the list of accepted keys.
//!
//! - [`z85`]: ZeroMQ's text form of keys (RFC 32);
//! - [`Cert`] (module `cert`): CZMQ's zcert files, read and written;
//! - [`AllowList`] (module `allow`): accepted public keys, from a directory of public
//!   certificates or a file of Z85 keys;
//! - `zpl` (private): the ZPL subset certificate files are written in.
//!
//! All of it is pure but for reading and writing files; nothing here panics on a
//! malformed file. The sockets (the CURVE server and clients, the ZAP handler that
//! applies the allow-list) are the driver's.
//!
//! CURVE needs a libzmq built with it: the vendored one of the `zmq` crate is not
//! (README, "Security", says how to build against the system's). [`available`] tells,
//! and a node asked for CURVE on a build without it fails to start with an error that
//! says how to get one.

pub mod allow;
pub mod cert;
pub mod z85;
mod zpl;

pub use allow::AllowList;
pub use cert::{Cert, CertError, SecretKey};

use std::fmt;
use std::str::FromStr;

/// A CURVE public key (32 bytes; shown as its 40 Z85 characters).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&z85::encode_key(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = z85::Z85Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        z85::decode_key(s).map(PublicKey)
    }
}

/// True if the libzmq this program runs on can do CURVE.
pub fn available() -> bool {
    zmq::has("curve") == Some(true)
}

/// What to tell a user whose build has no CURVE.
pub const NOT_AVAILABLE: &str = "this build's libzmq has no CURVE (the zmq crate's vendored \
     libzmq is built without libsodium); build against the system's: `apt-get install \
     libzmq3-dev`, then `cargo build --config .cargo/curve.toml` (README, \"Security\")";

/// A new key pair from libzmq (`zmq_curve_keypair`), as a secret certificate with no
/// metadata. Needs a build with CURVE ([`available`]); the error then says how to get
/// one. Its public key never starts with a zero byte: Zyre C ignores the beacons of such
/// a key (1 key in 256), taking it for a downgrade.
pub fn generate() -> Result<Cert, String> {
    if !available() {
        return Err(NOT_AVAILABLE.to_string());
    }
    let pair = loop {
        let pair = zmq::CurveKeyPair::new().map_err(|e| format!("zmq_curve_keypair: {e}"))?;
        if pair.public_key[0] != 0 {
            break pair;
        }
    };
    Ok(Cert {
        public: PublicKey(pair.public_key),
        secret: Some(SecretKey(pair.secret_key)),
        metadata: Vec::new(),
    })
}
