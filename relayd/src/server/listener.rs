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

/// Binds a plain listener on `addr` (`HOST:PORT`, names resolved: the first address that
/// binds), for the operations and TLS ports, with the same deep backlog as the others (a burst
/// of connections waits in it rather than being dropped half-open).
pub fn bind_addr(addr: &str) -> std::io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        let socket = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_cloexec(true)?;
        socket.set_nonblocking(true)?;
        match socket.bind(&a.into()).and_then(|()| socket.listen(BACKLOG)) {
            Ok(()) => return TcpListener::from_std(socket.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
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
