//! Who may send and who may read: the peer allowlist, the names sessions are filed under, the
//! live ACL and the limits against exhaustion.
//!
//! Every accepted connection passes the [`Gate`] first ([`Gate::admit`]): an address outside the
//! `[[peer]]` allowlist (when one is configured) is refused on the control and data ports, and
//! any connection over `max_connections` or `max_connections_per_peer` is refused on every
//! port. A refusal closes the socket at once, is counted (`trelay_refused_total`) and logged at
//! most once a second per reason ([`refusals`]). An admitted connection carries its [`Peer`]:
//! the address, and the configured name that replaces the hostname its sessions claim.

pub mod acl;
pub mod refusals;
pub mod settings;
pub mod tls;

pub use acl::Scope;
pub use settings::{Limits, OpsRule, PeerRule, ViewerRule};

use crate::telemetry::Port;
use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// An admitted connection's peer.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The address it connects from (IPv4-mapped IPv6 addresses are shown as IPv4).
    pub ip: IpAddr,
    /// Its configured name (`[[peer]]`), when an allowlist is configured.
    pub name: Option<String>,
}

impl Peer {
    /// The key per-peer limits count under: the name when configured, else the address.
    pub fn key(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.ip.to_string())
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not in the `[[peer]]` allowlist.
    NotAllowed,
    /// `max_connections` reached.
    TooManyConnections,
    /// `max_connections_per_peer` reached.
    TooManyFromPeer,
}

impl Refusal {
    /// The `reason` label and log wording.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::TooManyConnections => "max_connections",
            Refusal::TooManyFromPeer => "max_connections_per_peer",
        }
    }
}

/// Counts one admitted connection until dropped.
#[derive(Debug)]
pub struct Admission {
    /// The peer.
    pub peer: Peer,
    gate: Arc<Gate>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate.total.fetch_sub(1, Ordering::AcqRel);
        let ip = self.peer.ip;
        self.gate.per_ip.remove_if_mut(&ip, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

/// The admission policy of a relay.
#[derive(Debug)]
pub struct Gate {
    peers: Vec<PeerRule>,
    viewers: Vec<ViewerRule>,
    ops: Vec<OpsRule>,
    /// The limits.
    pub limits: Limits,
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
    /// Refusals, counted and logged under a budget.
    pub refusals: refusals::Refusals,
    /// Metadata payload bytes (in KiB permits) that control connections may buffer at once.
    pub metadata_budget: Arc<tokio::sync::Semaphore>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Gate {
    /// A gate for these rules and limits.
    pub fn new(peers: Vec<PeerRule>, viewers: Vec<ViewerRule>, limits: Limits) -> Gate {
        Gate {
            peers,
            viewers,
            ops: Vec::new(),
            total: AtomicUsize::new(0),
            per_ip: DashMap::new(),
            refusals: refusals::Refusals::default(),
            metadata_budget: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(limits.metadata_budget.div_ceil(1024))
                    .unwrap_or(usize::MAX)
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            limits,
        }
    }

    /// The same gate, with the operations listener restricted to the addresses of `ops`
    /// (empty: any address).
    pub fn with_ops(mut self, ops: Vec<OpsRule>) -> Gate {
        self.ops = ops;
        self
    }

    /// Whether `ip` may use the operations listener (no `[[ops]]` rule, or one holds it).
    pub fn ops_allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.ops.is_empty() || self.ops.iter().any(|r| r.cidr.contains(&ip))
    }

    /// The configured name of address `ip` (first matching `[[peer]]`).
    pub fn peer_name(&self, ip: IpAddr) -> Option<&str> {
        let ip = canonical(ip);
        self.peers
            .iter()
            .find(|p| p.cidr.contains(&ip))
            .map(|p| p.name.as_str())
    }

    /// Admits a connection from `ip` on `port`, or says why not (logged and counted here).
    pub fn admit(self: &Arc<Self>, port: Port, ip: IpAddr) -> Result<Admission, Refusal> {
        let ip = canonical(ip);
        let name = self.peer_name(ip).map(str::to_owned);
        let refused = |r: Refusal| {
            self.refusals.refused(port, r, ip);
            Err(r)
        };
        if !self.peers.is_empty() && name.is_none() && port != Port::Live {
            return refused(Refusal::NotAllowed);
        }
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.limits.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return refused(Refusal::TooManyConnections);
        }
        {
            let mut n = self.per_ip.entry(ip).or_insert(0);
            if *n >= self.limits.max_connections_per_peer {
                drop(n);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return refused(Refusal::TooManyFromPeer);
            }
            *n += 1;
        }
        Ok(Admission {
            peer: Peer { ip, name },
            gate: self.clone(),
        })
    }

    /// What a live viewer from `ip`, with the verified certificate name `certificate` (TLS live
    /// port), may see (`None`: everything, no `[[viewer]]` configured).
    pub fn viewer_scope(&self, ip: IpAddr, certificate: Option<&str>) -> Option<Scope> {
        if self.viewers.is_empty() {
            return None;
        }
        Some(Scope::new(&self.viewers, canonical(ip), certificate))
    }

    /// Waits (at most the handshake deadline) for room for `bytes` of metadata payload in the
    /// relay-wide budget; `None` (counted as a refusal) when it stays full.
    pub async fn reserve_metadata(&self, bytes: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        let wait = self.metadata_budget.clone().acquire_many_owned(kib);
        match tokio::time::timeout(self.limits.handshake_timeout(), wait).await {
            Ok(Ok(permit)) => Some(permit),
            _ => {
                self.refusals.count("control", "metadata_budget");
                None
            }
        }
    }

    /// Connections admitted and open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests;
