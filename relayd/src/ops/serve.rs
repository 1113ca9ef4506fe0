//! The operations listener's connections, under limits of their own (`[limits] ops_*`): at most
//! `ops_max_connections` open, `ops_max_connections_per_peer` from one address (more are
//! closed at accept, counted in `trelay_refused_total{port="metrics"}`), a request head that
//! must arrive within `ops_header_timeout_ms` and fit in `ops_max_request_bytes`, and a
//! connection silent for `ops_idle_timeout_ms` closed. While the process is within
//! `fd_reserve` descriptors of its open-file limit the listener does not accept at all
//! ([`super::fds::within_reserve`]): the descriptors left belong to the ingest ports.
//!
//! With `[[ops]]` rules configured, a connection from an address none of them holds is closed
//! at accept (counted as `reason="not_allowed"`); without them, any address that reaches the
//! bound address is served (bind `127.0.0.1` for localhost only).
//!
//! Routes are [`super::http::router`]'s; this module only accepts and serves connections.

use crate::identity::{Gate, Limits};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The `port` label of the listener's refusals.
const PORT: &str = "metrics";

/// How long the listener waits before looking again when it does not accept (fd reserve).
const PAUSE: Duration = Duration::from_millis(100);

/// Connections open, in all and per address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection, counted until dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = lock(&self.open);
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                o.per_ip.remove(&self.ip);
            }
        }
    }
}

fn lock(m: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Admits a connection from `ip`, or says which limit refuses it.
fn admit(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &Limits) -> Result<Slot, &'static str> {
    let mut o = lock(open);
    if o.total >= limits.ops_max_connections {
        return Err("ops_max_connections");
    }
    let n = o.per_ip.entry(ip).or_insert(0);
    if *n >= limits.ops_max_connections_per_peer {
        return Err("ops_max_connections_per_peer");
    }
    *n += 1;
    o.total += 1;
    Ok(Slot {
        open: open.clone(),
        ip,
    })
}

/// Serves `app` on `listener` under the gate's limits until `shutdown` fires; refusals are
/// counted in the gate's.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let conns = TaskTracker::new();
    let limits = Arc::new(gate.limits.clone());
    let refusals = &gate.refusals;
    loop {
        if super::fds::within_reserve(limits.fd_reserve) {
            if refusals.admit_line("fd_reserve").is_some() {
                tracing::warn!(
                    port = PORT,
                    reserve = limits.fd_reserve,
                    "not accepting: within the descriptors reserved for ingest"
                );
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(PAUSE) => continue,
            }
        }
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (sock, addr) = match accepted {
            Ok(a) => {
                super::fds::accepted();
                a
            }
            Err(e) => {
                tracing::warn!(port = PORT, "accept failed: {e}");
                tokio::time::sleep(PAUSE).await;
                continue;
            }
        };
        let ip = canonical(addr.ip());
        if !gate.ops_allows(ip) {
            refusals.count(PORT, "not_allowed");
            if let Some(skipped) = refusals.admit_line("not_allowed") {
                tracing::warn!(port = PORT, %ip, skipped, "connection refused: no [[ops]] rule holds the address");
            }
            drop(sock);
            continue;
        }
        let slot = match admit(&open, ip, &limits) {
            Ok(s) => s,
            Err(reason) => {
                refusals.count(PORT, reason);
                if let Some(skipped) = refusals.admit_line(reason) {
                    tracing::warn!(port = PORT, reason, %ip, skipped, "connection refused");
                }
                drop(sock);
                continue;
            }
        };
        conns.spawn(serve_one(
            sock,
            app.clone(),
            limits.clone(),
            shutdown.clone(),
            slot,
        ));
    }
    conns.close();
    conns.wait().await;
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Serves one connection: hyper's HTTP/1 with the head deadline and size, plus the idle
/// deadline watched here (any byte in or out is activity).
async fn serve_one(
    sock: TcpStream,
    app: Router,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
    slot: Slot,
) {
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: sock,
        started,
        activity: activity.clone(),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.ops_header_timeout())
        .max_buf_size(limits.ops_max_request_bytes);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let idle = limits.ops_idle_timeout();
    let mut draining = false;
    loop {
        let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
        let deadline = tokio::time::Instant::from_std(last + idle);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(port = PORT, "operations connection ended: {e}");
                }
                break;
            }
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(deadline) => {
                let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) >= idle {
                    tracing::debug!(port = PORT, "operations connection idle: closed");
                    break;
                }
            }
        }
    }
    drop(slot);
}

/// A socket that notes when bytes last moved (ms since `started`).
struct Watched {
    inner: TcpStream,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_in_all_and_per_address() {
        let limits = Limits {
            ops_max_connections: 3,
            ops_max_connections_per_peer: 2,
            ..Limits::default()
        };
        let open = Arc::new(Mutex::new(Open::default()));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let a1 = admit(&open, a, &limits).unwrap();
        let _a2 = admit(&open, a, &limits).unwrap();
        assert_eq!(
            admit(&open, a, &limits).err(),
            Some("ops_max_connections_per_peer")
        );
        let _b1 = admit(&open, b, &limits).unwrap();
        assert_eq!(admit(&open, b, &limits).err(), Some("ops_max_connections"));
        drop(a1);
        assert!(admit(&open, b, &limits).is_ok());
    }

    /// Serves a one-route app under `[[ops]]` rule `cidr` and returns what a GET from
    /// 127.0.0.1 reads back.
    async fn get_under(cidr: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let gate =
            Gate::new(vec![], vec![], Limits::default()).with_ops(vec![crate::identity::OpsRule {
                cidr: cidr.parse().unwrap(),
            }]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "the page" }));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, Arc::new(gate), shutdown.clone()));
        let mut c = TcpStream::connect(addr).await.unwrap();
        // A refused connection may be reset before or after the request is written.
        let _ = c
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "the connection neither answered nor closed");
        shutdown.cancel();
        server.await.unwrap();
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test]
    async fn an_address_no_ops_rule_holds_is_closed_and_one_it_holds_is_served() {
        let refused = get_under("10.0.0.0/8").await;
        assert_eq!(refused, "", "{refused}");
        let served = get_under("127.0.0.0/8").await;
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        assert!(served.ends_with("the page"), "{served}");
    }

    #[test]
    fn without_ops_rules_any_address_is_allowed() {
        let g = Gate::new(vec![], vec![], Limits::default());
        assert!(g.ops_allows("192.0.2.1".parse().unwrap()));
        let g = g.with_ops(vec![crate::identity::OpsRule {
            cidr: "::1/128".parse().unwrap(),
        }]);
        assert!(g.ops_allows("::1".parse().unwrap()));
        assert!(!g.ops_allows("127.0.0.1".parse().unwrap()));
    }
}
