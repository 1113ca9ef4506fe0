//! An async sender for LTTng's relayd protocol (up to 2.15): what a session daemon and a consumer daemon
//! send to a relay, usable by any program.
//!
//! [`RelaySession`] owns one control and one data connection. All writes are awaited, so a slow
//! relay slows the sender down (TCP backpressure); the only buffering is a reused command buffer
//! and at most `index_window` SEND_INDEX replies left in flight. Every non-OK reply is a
//! [`SendError::Refused`] naming the command; like LTTng's consumer, the session is unusable
//! after any error (relays drop the connection after refusing a command).

mod control;
mod data;
mod session;

use std::io;
use std::net::SocketAddr;

use trelay_proto::lttng::relayd::{CommandKind, ReturnCode};

pub use control::ControlConn;
pub use data::DataConn;
pub use session::{RelaySession, SessionConfig, StreamRef, MIN_MINOR, VERSION};

/// Why sending to a relay failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A connection could not be opened.
    #[error("cannot connect to the relay's {what} port at {addr}: {source}")]
    Connect {
        /// "control" or "data".
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// Reading or writing a connection failed (including the relay closing it).
    #[error("{cmd}: {source}")]
    Io {
        /// The command or port being used.
        cmd: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The relay answered something other than LTTNG_OK.
    #[error("{cmd}: the relay refused with code {code} ({})", code_name(*code))]
    Refused {
        /// The command.
        cmd: &'static str,
        /// The reply code.
        code: u32,
    },
    /// The relay speaks a protocol this sender does not.
    #[error("the relay speaks protocol {major}.{minor}; 2.{MIN_MINOR} or later is required")]
    Version {
        /// Relay major.
        major: u32,
        /// Negotiated minor.
        minor: u32,
    },
    /// A reply that cannot be right.
    #[error("{cmd}: malformed reply: {reason}")]
    BadReply {
        /// The command.
        cmd: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A packet too large for the data header's 32-bit size.
    #[error("packet of {0} bytes is too large for the data port")]
    TooLarge(u64),
    /// The caller asked for something the protocol cannot carry.
    #[error("{0}")]
    Invalid(String),
    /// The relay did not finish something in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl SendError {
    pub(crate) fn io(kind: CommandKind, source: io::Error) -> Self {
        SendError::Io {
            cmd: kind.name(),
            source,
        }
    }

    pub(crate) fn io_data(source: io::Error) -> Self {
        SendError::Io {
            cmd: "data port",
            source,
        }
    }
}

/// The LTTng name of a reply code.
pub fn code_name(code: u32) -> &'static str {
    match code {
        0xFFFF_FFFF => "-1",
        c => ReturnCode(c).name().unwrap_or("unknown code"),
    }
}
