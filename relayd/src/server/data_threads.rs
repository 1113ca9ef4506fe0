//! The threads data connections run on: a runtime of their own (half the cores, at least one),
//! so a SEND_INDEX or DATA_PENDING reply on the control port is not held up by the payload writes
//! of the packet that came just before it. Each accepted data socket moves from the accepting
//! runtime to this one and is served there by [`super::data::handle`].

use crate::session::Registry;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The data runtime; `None` (logged) when it cannot be built: data connections then share the
/// main runtime.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1);
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("trelayd-data")
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            tracing::warn!("no separate data runtime ({e}): data shares the main threads");
            None
        }
    }
}

/// Serves one data connection on `runtime` (the current one when `None`), returning when it
/// ended.
pub async fn handle_on(
    runtime: Option<tokio::runtime::Handle>,
    conn: TcpStream,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    peer: crate::identity::Peer,
) {
    let Some(rt) = runtime else {
        return super::data::handle(conn, registry, shutdown, peer).await;
    };
    let conn = match conn.into_std() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("data connection dropped: cannot move it to the data threads: {e}");
            return;
        }
    };
    let task = rt.spawn(async move {
        match TcpStream::from_std(conn) {
            Ok(c) => super::data::handle(c, registry, shutdown, peer).await,
            Err(e) => tracing::error!("data connection dropped: {e}"),
        }
    });
    if let Err(e) = task.await {
        tracing::error!("data connection task failed: {e}");
    }
}
