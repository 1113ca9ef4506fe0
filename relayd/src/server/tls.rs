//! The TLS listeners (`[tls]`): trelay:// on `addr` and the live protocol on `live_addr`. Each
//! connection passes the gate, then the TLS handshake within the handshake deadline; the
//! verified client certificate's name goes to the handler.

use super::listener;
use crate::identity::Peer;
use crate::session::Registry;
use crate::telemetry::Port;
use std::future::Future;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Accepts TLS connections: the gate first, then the handshake (within the handshake
/// deadline), then `handler` with the peer and the verified client certificate's name.
pub(super) async fn tls_loop<F, Fut>(
    (listener, acceptor): (TcpListener, tokio_rustls::TlsAcceptor),
    (port, label): (Port, &'static str),
    registry: Arc<Registry>,
    conns: TaskTracker,
    shutdown: CancellationToken,
    handler: F,
) where
    F: Fn(
            tokio_rustls::server::TlsStream<TcpStream>,
            Peer,
            std::net::SocketAddr,
            Option<String>,
        ) -> Fut
        + Send
        + Clone
        + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        if port == Port::Live && !super::reserve_left(&registry, &shutdown).await {
            return;
        }
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (sock, addr) = match accepted {
            Ok(a) => {
                if port == Port::Live {
                    crate::ops::fds::accepted();
                }
                a
            }
            Err(e) => {
                tracing::warn!(port = label, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(admitted) = registry.gate.admit(port, addr.ip()) else {
            continue;
        };
        listener::tune(&sock, true);
        let counted = registry.telemetry.connection(port);
        let (acceptor, registry, handler) = (acceptor.clone(), registry.clone(), handler.clone());
        conns.spawn(async move {
            let limit = registry.gate.limits.handshake_timeout();
            let tls = match tokio::time::timeout(limit, acceptor.accept(sock)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    registry.gate.refusals.count(label, "tls_handshake");
                    if let Some(skipped) = registry.gate.refusals.admit_line("tls_handshake") {
                        tracing::warn!(port = label, peer = %addr, skipped, "TLS handshake refused: {e}");
                    }
                    return;
                }
                Err(_) => {
                    registry.gate.refusals.count(label, "handshake_timeout");
                    return;
                }
            };
            let name = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(crate::identity::tls::certificate_name);
            handler(tls, admitted.peer.clone(), addr, name).await;
            drop(counted);
            drop(admitted);
        });
    }
}
