//! Who may connect and what they may do: the `[[peer]]`, `[[viewer]]` and `[limits]` settings.
//!
//! ```toml
//! [[peer]]                       # when any is set, only these addresses may send
//! cidr = "10.1.0.0/16"
//! name = "edge-a"                # sessions land under OUTPUT/edge-a/…, whatever host they claim
//!
//! [[viewer]]                     # when any is set, live viewers see only what a rule allows
//! cidr = "127.0.0.0/8"           # viewers connecting from here (default: anywhere)…
//! certificates = ["ops-*"]       # …and presenting a verified certificate so named (TLS live
//!                                #    port; default: no certificate needed)…
//! peers = ["edge-*"]             # …see sessions sent by these peers (name globs; default all)
//! sessions = ["prod-*"]          # …with these session names (globs; default all)
//!
//! [limits]
//! max_connections = 4096         # all ports together
//! max_connections_per_peer = 512 # per peer address
//! handshake_timeout_ms = 10000   # control and live: the first message must arrive by then
//! max_sessions_per_peer = 256
//! max_streams_per_peer = 65536
//! metadata_budget = 268435456    # bytes of metadata payload buffered at once, relay-wide
//! ops_max_connections = 64       # operations listener (--metrics-addr): connections at once
//! ops_max_connections_per_peer = 8 # … from one address
//! ops_header_timeout_ms = 5000   # … a request's head must be in by then
//! ops_idle_timeout_ms = 30000    # … a connection silent this long is closed
//! ops_max_request_bytes = 16384  # … largest request head (at least 8192)
//! fd_reserve = 256               # descriptors kept for ingest: the operations and live
//!                                #   listeners stop accepting within this many of the limit
//! ```

use ipnet::IpNet;
use serde::Deserialize;

/// One allowed sender.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRule {
    /// Addresses it connects from.
    pub cidr: IpNet,
    /// Its name: the host directory of its sessions (one path component).
    pub name: String,
}

/// One live viewer permission.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewerRule {
    /// Addresses the viewers connect from (none: any address).
    #[serde(default)]
    pub cidr: Option<IpNet>,
    /// Globs on the name of the viewer's verified client certificate (TLS live port); when
    /// set, a viewer without such a certificate does not match.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Globs on the sending peer's name (the session's host directory).
    #[serde(default = "all")]
    pub peers: Vec<String>,
    /// Globs on the session name.
    #[serde(default = "all")]
    pub sessions: Vec<String>,
}

/// One address range allowed on the operations listener (`[[ops]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsRule {
    /// Addresses the clients of `/`, `/api/v1/…` and `/metrics` connect from.
    pub cidr: IpNet,
}

fn all() -> Vec<String> {
    vec!["*".to_owned()]
}

/// Limits against exhaustion.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Connections open at once, all ports.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_connections_per_peer: usize,
    /// How long a control or live connection may take to send its first message (ms).
    pub handshake_timeout_ms: u64,
    /// Sessions open at once per peer.
    pub max_sessions_per_peer: usize,
    /// Streams open at once per peer.
    pub max_streams_per_peer: usize,
    /// Metadata payload bytes buffered at once, relay-wide.
    pub metadata_budget: u64,
    /// Operations listener: connections open at once.
    pub ops_max_connections: usize,
    /// Operations listener: connections open at once from one address.
    pub ops_max_connections_per_peer: usize,
    /// Operations listener: how long a request's head may take to arrive (ms).
    pub ops_header_timeout_ms: u64,
    /// Operations listener: how long a connection may stay silent (ms).
    pub ops_idle_timeout_ms: u64,
    /// Operations listener: largest request head (bytes, at least 8192).
    pub ops_max_request_bytes: usize,
    /// Descriptors kept for the ingest ports: the operations and live listeners stop
    /// accepting while fewer than this many are left under the open-file limit.
    pub fd_reserve: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            max_connections_per_peer: 512,
            handshake_timeout_ms: 10_000,
            max_sessions_per_peer: 256,
            max_streams_per_peer: 65_536,
            metadata_budget: 256 << 20,
            ops_max_connections: 64,
            ops_max_connections_per_peer: 8,
            ops_header_timeout_ms: 5_000,
            ops_idle_timeout_ms: 30_000,
            ops_max_request_bytes: 16 << 10,
            fd_reserve: 256,
        }
    }
}

impl Limits {
    /// The operations listener's header deadline.
    pub fn ops_header_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ops_header_timeout_ms)
    }

    /// The operations listener's idle deadline.
    pub fn ops_idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ops_idle_timeout_ms)
    }

    /// The handshake deadline.
    pub fn handshake_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.handshake_timeout_ms)
    }
}

/// Checks names and globs; `max_metadata_chunk` must fit in the metadata budget.
pub fn validate(
    peers: &[PeerRule],
    viewers: &[ViewerRule],
    limits: &Limits,
    max_metadata_chunk: u64,
) -> Result<(), String> {
    for p in peers {
        crate::storage::layout::component("peer name", &p.name).map_err(|e| e.to_string())?;
    }
    for v in viewers {
        if v.cidr.is_none() && v.certificates.is_empty() {
            return Err("a [[viewer]] needs a cidr or certificates".into());
        }
        for g in v.peers.iter().chain(&v.sessions).chain(&v.certificates) {
            glob::Pattern::new(g).map_err(|e| format!("viewer glob {g:?}: {e}"))?;
        }
    }
    if limits.max_connections == 0
        || limits.max_connections_per_peer == 0
        || limits.handshake_timeout_ms == 0
        || limits.max_sessions_per_peer == 0
        || limits.max_streams_per_peer == 0
        || limits.ops_max_connections == 0
        || limits.ops_max_connections_per_peer == 0
        || limits.ops_header_timeout_ms == 0
        || limits.ops_idle_timeout_ms == 0
    {
        return Err("[limits] values must be positive".into());
    }
    if limits.ops_max_request_bytes < 8192 {
        return Err("[limits] ops_max_request_bytes must be at least 8192".into());
    }
    if limits.metadata_budget < max_metadata_chunk {
        return Err(format!(
            "[limits] metadata_budget ({}) must be at least max_metadata_chunk ({max_metadata_chunk})",
            limits.metadata_budget
        ));
    }
    Ok(())
}
