//! Operations: what an operator runs trelayd with, beside the LTTng ports.
//!
//! - [`metrics`]: the Prometheus exposition, read at scrape time from the registry and from the
//!   counters of [`crate::telemetry`].
//! - [`http`]: the `--metrics-addr` listener serving `/metrics`, `/healthz`, `/readyz` and the
//!   status page.
//! - [`serve`]: its connections, under limits of their own and the ingest descriptor reserve.
//! - [`state`]: what its handlers share ([`state::OpsState`]) and the relay's bound ports.
//! - [`status`]: the status page (`/`, `/sessions/ID`) and its JSON API (`/api/v1/…`).
//! - [`health`]: what readiness means (listening, output folder writable, not out of space).
//! - [`systemd`]: `READY=1`, `STOPPING=1` and the watchdog through the notify socket.
//! - [`fds`]: the file descriptor limit raised at start, and the count of open descriptors.
//! - [`logging`]: text or JSON log lines.
//! - [`daemon`]: `-d`/`-b` (the parent waits for readiness), `--sig-parent`, `--pid-file`.
//! - [`rundir`]: lttng's run directory, the `*.port` files.
//! - [`health_socket`]: lttng-relayd's health check socket (`LTTNG_RELAYD_HEALTH`).

pub mod daemon;
pub mod fds;
pub mod health;
pub mod health_socket;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod rundir;
pub mod serve;
pub mod state;
pub mod status;
pub mod systemd;
