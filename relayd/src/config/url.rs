//! `tcp://HOST:PORT` listener URLs as lttng-relayd accepts them on `-C`, `-D` and `-L`.
//!
//! `HOST` is an IPv4 address, a host name (resolved at bind time, first address wins) or an IPv6
//! address in brackets (`tcp://[::1]:5342`); `tcp6://` is accepted as a synonym. The port is
//! mandatory in the URL; port 0 asks the kernel for a free port (reported once bound).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// Why a listener URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `tcp://` or `tcp6://`.
    #[error("{0}: only tcp://HOST:PORT URLs are supported")]
    Scheme(String),
    /// No `:PORT` or a port that is not a number below 65536.
    #[error("{0}: expected tcp://HOST:PORT with a port number")]
    Port(String),
    /// An IPv6 address without its closing bracket, or an empty host.
    #[error("{0}: bad host part")]
    Host(String),
    /// The host name did not resolve.
    #[error("{0}: cannot resolve host: {1}")]
    Resolve(String, String),
}

/// A listener URL: host text (without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenUrl {
    /// Host name or address, IPv6 without its brackets.
    pub host: String,
    /// TCP port; 0 lets the kernel choose.
    pub port: u16,
}

impl ListenUrl {
    /// A URL for `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ListenUrl {
            host: host.into(),
            port,
        }
    }

    /// Resolves the host to the address to bind.
    pub fn socket_addr(&self) -> Result<SocketAddr, UrlError> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| UrlError::Resolve(self.to_string(), e.to_string()))?
            .next()
            .ok_or_else(|| UrlError::Resolve(self.to_string(), "no address".into()))
    }
}

impl fmt::Display for ListenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "tcp://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "tcp://{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for ListenUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("tcp6://"))
            .ok_or_else(|| UrlError::Scheme(s.to_owned()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::Host(s.to_owned()))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| UrlError::Port(s.to_owned()))?;
            (host, port)
        } else {
            rest.rsplit_once(':')
                .ok_or_else(|| UrlError::Port(s.to_owned()))?
        };
        if host.is_empty() || (!rest.starts_with('[') && host.contains(':')) {
            return Err(UrlError::Host(s.to_owned()));
        }
        let port = port.parse().map_err(|_| UrlError::Port(s.to_owned()))?;
        Ok(ListenUrl::new(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_names_and_ipv6() {
        assert_eq!(
            "tcp://0.0.0.0:5342".parse(),
            Ok(ListenUrl::new("0.0.0.0", 5342))
        );
        assert_eq!(
            "tcp://localhost:0".parse(),
            Ok(ListenUrl::new("localhost", 0))
        );
        let v6: ListenUrl = "tcp://[::1]:5344".parse().unwrap();
        assert_eq!(v6, ListenUrl::new("::1", 5344));
        assert_eq!(v6.to_string(), "tcp://[::1]:5344");
        assert_eq!(
            v6.socket_addr().unwrap(),
            "[::1]:5344".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn refuses_malformed_urls() {
        for bad in [
            "udp://1.2.3.4:5",
            "tcp://1.2.3.4",
            "tcp://:5342",
            "tcp://[::1:5342",
            "tcp://::1:5342",
            "tcp://h:70000",
            "tcp://h:x",
            "net://h",
        ] {
            assert!(bad.parse::<ListenUrl>().is_err(), "{bad}");
        }
    }
}
