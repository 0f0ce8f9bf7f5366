//! The library's error type.

use crate::proto::codec::EncodeError;
use crate::proto::node::CommandError;

/// Everything that can go wrong starting or using a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The interface could not be found or used.
    #[error("interface: {0}")]
    Interface(String),
    /// A ZeroMQ call failed.
    #[error("zmq: {context}: {source}")]
    Zmq {
        /// What we were doing.
        context: String,
        /// The zmq error.
        source: zmq::Error,
    },
    /// A socket call failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A name, group or header does not fit the wire format.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The peer is not known to this node.
    #[error("unknown peer {}", crate::uuid_hex(.0))]
    UnknownPeer(uuid::Uuid),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A send's deadline passed while the link to the peer (or to a group member) was
    /// backed up: nothing was sent.
    #[error("timed out: the link is backed up")]
    Timeout,
    /// The node's driver thread failed (a bug, or a socket error it cannot recover from)
    /// and the node stopped: its sockets are closed and peers were told it left.
    #[error("the node failed: {0}")]
    DriverFailed(String),
    /// An invalid setting.
    #[error("invalid setting: {0}")]
    Config(String),
    /// A whisper or shout with no content frames. Zyre would read the next message's
    /// frames as its content (its application gets one WHISPER holding the next event),
    /// so none is sent; one empty frame (`vec![vec![]]`) is fine.
    #[error("a whisper or shout needs at least one content frame")]
    NoContent,
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::UnknownPeer(u) => Error::UnknownPeer(u),
            CommandError::Encode(e) => Error::Encode(e),
            e @ CommandError::BadEndpoint(_) => Error::Config(e.to_string()),
        }
    }
}

pub(crate) fn zmq_err(context: impl Into<String>) -> impl FnOnce(zmq::Error) -> Error {
    let context = context.into();
    move |source| Error::Zmq { context, source }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
