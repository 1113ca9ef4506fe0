//! Connections from other loopback addresses (127.0.0.2, 127.0.0.3, …: all of 127/8 is the
//! loopback interface on Linux), so one machine can play several peers; and floods of idle
//! connections.

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Connects to 127.0.0.1:`port` from the address `src`.
pub fn connect_from(src: &str, port: u16) -> Result<TcpStream> {
    let ip: IpAddr = src.parse().with_context(|| format!("bad address {src}"))?;
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&SocketAddr::new(ip, 0).into())
        .with_context(|| format!("binding {src}"))?;
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .with_context(|| format!("connecting from {src} to port {port}"))?;
    let t: TcpStream = s.into();
    t.set_nodelay(true)?;
    t.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(t)
}

/// Whether the relay closed `sock` (EOF or reset) within `wait`.
pub fn closed_by_relay(sock: &mut TcpStream, wait: Duration) -> bool {
    let _ = sock.set_read_timeout(Some(wait));
    let mut b = [0u8; 1];
    match sock.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Raises this process's soft open-file limit to the hard one (a flood needs thousands).
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Idle connections that send nothing, spread over ports and source addresses.
#[derive(Debug)]
pub struct IdleFlood {
    /// The connections, with the port each went to.
    pub conns: Vec<(u16, TcpStream)>,
}

impl IdleFlood {
    /// Opens `n` connections round-robin over `ports` and `sources`.
    pub fn open(ports: &[u16], sources: &[&str], n: usize) -> Result<IdleFlood> {
        raise_fd_limit();
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let port = ports[i % ports.len()];
            let src = sources[(i / ports.len()) % sources.len()];
            conns.push((port, connect_from(src, port)?));
        }
        Ok(IdleFlood { conns })
    }

    /// How many connections to `port` the relay closed (checked without waiting).
    pub fn closed_on(&mut self, port: u16) -> usize {
        self.conns
            .iter_mut()
            .filter(|(p, _)| *p == port)
            .filter(|(_, s)| {
                let _ = s.set_nonblocking(true);
                let mut b = [0u8; 1];
                let closed = match (&*s).read(&mut b) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                };
                let _ = s.set_nonblocking(false);
                closed
            })
            .count()
    }
}
