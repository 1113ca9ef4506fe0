//! # trelay-relayd
//!
//! The `trelayd` daemon: receives LTTng 2.13 control and data connections, merges data packets
//! with their index messages, writes the trace layout lttng-relayd writes, commits with fsync on
//! sync beacons and serves committed data to live viewers.
//!
//! - [`config`]: command line (lttng-relayd's flags), listener URLs, trelay's TOML settings.
//! - [`server`]: listeners and one handler per connection kind (control, data, live).
//! - [`session`]: the registry of sessions, streams, traces and trace chunks; the per-stream
//!   merge of data and index halves; rotation; the commit group.
//! - [`live`]: live viewers — per-viewer state machines over committed data, and what the
//!   commit group publishes for them.
//! - [`frontier`]: what commits published and viewers read (below both `session` and `live`).
//! - [`storage`]: every file operation behind one seam — stream, index and metadata files,
//!   payload writes, chunk directories, locks, loss sidecars, crash recovery, disk-full
//!   episodes, retention — with the on-disk design in its docs.
//!
//! - [`identity`]: who may connect (peer allowlist and names, live ACL) and the limits against
//!   exhaustion, applied at accept and on requests.
//! - [`forward`]: edge → core forwarding of every committed session over trelay:// with resume.
//! - [`archive`]: closed chunks and sessions uploaded to S3-compatible object storage, verified,
//!   then optionally removed locally.
//! - [`telemetry`], [`ops`]: what the relay counts, and the operations listener (`/metrics`,
//!   `/healthz`, `/readyz`, the status page and its JSON API), systemd notifications, descriptor
//!   limits, log format.
//!
//! [`run`] runs a whole relay until a cancellation token fires, so tests can start one in-process
//! on port 0 ([`server::Relay::bind`] tells the ports); [`cli::main`] is the binary's entry.

pub mod archive;
pub mod cli;
pub mod config;
pub mod forward;
pub mod frontier;
pub mod identity;
pub mod live;
pub mod merge;
pub mod ops;
pub mod server;
pub mod session;
pub mod storage;
pub mod telemetry;

pub use config::Config;
pub use server::{BoundPorts, Relay, RelayError};
pub use tokio_util::sync::CancellationToken;

/// Binds the configured ports and serves until `shutdown` fires; then stops accepting, lets each
/// connection finish the message in hand, commits everything received and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RelayError> {
    Relay::bind(config)?.serve(shutdown).await
}
