//! TCP listeners built with socket2 (SO_REUSEADDR, a deep backlog) and the per-connection socket
//! options (TCP keepalive everywhere, TCP_NODELAY on request/reply ports).

use crate::config::ListenUrl;
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Listen backlog.
const BACKLOG: i32 = 1024;

/// Binds a listener for `url` (must run inside a tokio runtime).
pub fn bind(url: &ListenUrl) -> std::io::Result<TcpListener> {
    let addr = url
        .socket_addr()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // Accept IPv4 too on a wildcard IPv6 address, like a dual-stack daemon.
        let _ = socket.set_only_v6(false);
    }
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Binds a plain listener on `addr` (`HOST:PORT`, names resolved), for the operations port.
pub fn bind_addr(addr: &str) -> std::io::Result<TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    TcpListener::from_std(l)
}

/// Sets the options of an accepted connection.
pub fn tune(stream: &TcpStream, nodelay: bool) {
    let sock = SockRef::from(stream);
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    if let Err(e) = sock.set_tcp_keepalive(&keepalive) {
        tracing::debug!("cannot set keepalive: {e}");
    }
    if nodelay {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    }
}

/// The address a listener actually bound.
pub fn local(listener: &TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}
