//! What the operations listener's handlers share: the registry, readiness and the bound ports.

use crate::session::Registry;
use serde::Serialize;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The ports the relay listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BoundPorts {
    /// Control port.
    pub control: u16,
    /// Data port.
    pub data: u16,
    /// Live port.
    pub live: u16,
    /// Operations port (metrics and health), when `--metrics-addr` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<u16>,
    /// trelay:// over TLS, when `[tls]` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<u16>,
    /// The live protocol over TLS, when `[tls] live_addr` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_live: Option<u16>,
}

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct OpsState {
    /// The relay's registry.
    pub registry: Arc<Registry>,
    /// Set once the relay's ports accept connections.
    pub listening: Arc<AtomicBool>,
    /// The ports the relay listens on (shown by the status page).
    pub ports: Option<BoundPorts>,
}
