//! The live (viewer) port. The live protocol server is not built yet: connections are accepted,
//! logged and closed, so a viewer sees the relay refuse instead of hanging.
//!
//! Hook for the live server: replace [`handle`] with the viewer protocol state machine; it gets
//! the registry (sessions, streams and their committed frontiers) and the shutdown token.

use crate::session::Registry;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Serves one live connection.
pub async fn handle(conn: TcpStream, _registry: Arc<Registry>, _shutdown: CancellationToken) {
    let peer = conn
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    tracing::warn!(%peer, "live viewer connection refused: the live protocol is not implemented yet");
    drop(conn);
}
