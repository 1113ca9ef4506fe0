//! The live viewer side of the relay protocol (port 5344): listing sessions ([`sessions`]) and
//! mirroring one into a CTF trace on disk ([`mirror()`]), against trelayd or lttng-relayd,
//! plainly or inside TLS ([`tls`]); and following one session across several relays
//! ([`multi`]): one mirror, or one merged `tail`.

pub mod client;
pub mod conn;
mod fetch;
pub mod files;
pub mod mirror;
pub mod multi;
pub mod select;
pub mod sessions;
pub mod sink;
pub mod tls;

pub use conn::ViewerConn;
pub use mirror::{mirror, LiveOptions, LiveStats};
pub use select::SessionMatch;
pub use sessions::{list_sessions, list_sessions_with, render_sessions};
pub use tls::ViewerTls;

/// Errors of a live client.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The relay could not be reached.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    /// The connection failed.
    #[error("live connection: {0}")]
    Io(std::io::Error),
    /// The relay closed the connection.
    #[error("the relay closed the live connection")]
    Closed,
    /// The relay's bytes do not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The relay refused a request.
    #[error("refused by the relay: {0}")]
    Refused(String),
    /// The session named in the URL was not found.
    #[error("no live session {session:?} of host {host:?} on the relay (waited {waited:?})")]
    NoSession {
        /// Target hostname.
        host: String,
        /// Session name.
        session: String,
        /// How long it was looked for.
        waited: std::time::Duration,
    },
    /// The mirror could not be written.
    #[error("{}: {}", .0.display(), .1)]
    Write(std::path::PathBuf, std::io::Error),
    /// The URL names no session.
    #[error("the URL names no session (expected net://HOST[:PORT]/host/HOSTNAME/SESSION)")]
    NoSessionInUrl,
}
