//! Operations: what an operator runs trelayd with, beside the LTTng ports.
//!
//! - [`metrics`]: the Prometheus exposition, read at scrape time from the registry and from the
//!   counters of [`crate::telemetry`].
//! - [`http`]: the `--metrics-addr` listener serving `/metrics`, `/healthz`, `/readyz` and the
//!   status page.
//! - [`status`]: the status page (`/`, `/sessions/ID`) and its JSON API (`/api/v1/…`).
//! - [`health`]: what readiness means (listening, output folder writable, not out of space).
//! - [`systemd`]: `READY=1`, `STOPPING=1` and the watchdog through the notify socket.
//! - [`fds`]: the file descriptor limit raised at start, and the count of open descriptors.
//! - [`logging`]: text or JSON log lines.

pub mod fds;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod status;
pub mod systemd;
