//! systemd integration through the notify socket (`Type=notify` units): `READY=1` once the
//! relay listens, `STOPPING=1` when shutdown begins, and `WATCHDOG=1` at half the watchdog
//! interval when the unit sets `WatchdogSec=` (systemd passes `WATCHDOG_USEC`). Without
//! `NOTIFY_SOCKET` every call does nothing.

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Tells the service manager the relay is ready (with a status line).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager the relay is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Pings the watchdog at half its interval until `shutdown` fires (returns at once when the
/// watchdog is off).
pub async fn watchdog(shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(std::time::Duration::from_millis(10));
    tracing::debug!(?interval, "systemd watchdog enabled");
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => send(&[NotifyState::Watchdog]),
        }
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify the service manager: {e}");
    }
}
