//! Relay URLs as LTTng writes them: `net://HOST[:CTRL[:DATA]]` (also `net4://`, and `net6://`
//! with the address in brackets: `net6://[::1]:5342:5343`). Ports default to 5342 (control) and
//! 5343 (data). `trelay://HOST[:PORT]` (IPv6 in brackets) selects trelay's own protocol on the
//! control port (default 5342).

use std::fmt;
use std::net::SocketAddr;

/// Default control port.
pub const DEFAULT_CONTROL_PORT: u16 = 5342;
/// Default data port.
pub const DEFAULT_DATA_PORT: u16 = 5343;

/// A parsed relay URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayUrl {
    /// Host name or address (without brackets).
    pub host: String,
    /// Control port.
    pub control_port: u16,
    /// Data port.
    pub data_port: u16,
    /// trelay:// (trelay's own protocol on the control port) rather than the LTTng protocol.
    pub native: bool,
}

/// Why a URL is not a relay URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `net://`, `net4://`, `net6://` or `trelay://`.
    #[error("{0}: expected net://HOST[:CONTROL_PORT[:DATA_PORT]] or trelay://HOST[:PORT]")]
    Scheme(String),
    /// Empty host or unterminated bracket.
    #[error("{0}: bad host")]
    Host(String),
    /// A port that is not a number in 1..=65535, or too many ports.
    #[error("{0}: bad port list")]
    Port(String),
}

impl RelayUrl {
    /// Parses a relay URL.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let native = url.starts_with("trelay://");
        let rest = ["net://", "net4://", "net6://", "trelay://"]
            .iter()
            .find_map(|p| url.strip_prefix(p))
            .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, ports) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| UrlError::Host(url.to_owned()))?;
            (h, after)
        } else {
            match rest.find(':') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        if host.is_empty() || host.contains('/') {
            return Err(UrlError::Host(url.to_owned()));
        }
        let mut ports_iter = ports.split(':').skip(1);
        let mut port = |default| -> Result<u16, UrlError> {
            match ports_iter.next() {
                None => Ok(default),
                Some(p) => p
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| UrlError::Port(url.to_owned())),
            }
        };
        let control_port = port(DEFAULT_CONTROL_PORT)?;
        let data_port = port(DEFAULT_DATA_PORT)?;
        let most = if native { 2 } else { 3 };
        if !ports.is_empty() && !ports.starts_with(':') || ports.split(':').count() > most {
            return Err(UrlError::Port(url.to_owned()));
        }
        Ok(RelayUrl {
            host: host.to_owned(),
            control_port,
            data_port,
            native,
        })
    }

    /// Resolves both addresses (first result of each).
    pub async fn resolve(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        let first = |mut it: std::vec::IntoIter<SocketAddr>| {
            it.next().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "host has no address")
            })
        };
        let c: Vec<_> = tokio::net::lookup_host((self.host.as_str(), self.control_port))
            .await?
            .collect();
        let d: Vec<_> = tokio::net::lookup_host((self.host.as_str(), self.data_port))
            .await?
            .collect();
        Ok((first(c.into_iter())?, first(d.into_iter())?))
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.native {
            return if self.host.contains(':') {
                write!(f, "trelay://[{}]:{}", self.host, self.control_port)
            } else {
                write!(f, "trelay://{}:{}", self.host, self.control_port)
            };
        }
        if self.host.contains(':') {
            write!(
                f,
                "net6://[{}]:{}:{}",
                self.host, self.control_port, self.data_port
            )
        } else {
            write!(
                f,
                "net://{}:{}:{}",
                self.host, self.control_port, self.data_port
            )
        }
    }
}

impl std::str::FromStr for RelayUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        RelayUrl::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<(String, u16, u16), UrlError> {
        RelayUrl::parse(s).map(|u| (u.host, u.control_port, u.data_port))
    }

    #[test]
    fn forms() {
        assert_eq!(
            p("net://localhost").unwrap(),
            ("localhost".into(), 5342, 5343)
        );
        assert_eq!(
            p("net://127.0.0.1:6000").unwrap(),
            ("127.0.0.1".into(), 6000, 5343)
        );
        assert_eq!(p("net://h:6000:6001").unwrap(), ("h".into(), 6000, 6001));
        assert_eq!(p("net6://[::1]:1:2").unwrap(), ("::1".into(), 1, 2));
        assert_eq!(p("net4://h/").unwrap(), ("h".into(), 5342, 5343));
        assert_eq!(
            RelayUrl::parse("net://h:1:2").unwrap().to_string(),
            "net://h:1:2"
        );
        let t = RelayUrl::parse("trelay://h").unwrap();
        assert!(t.native && t.control_port == 5342);
        assert_eq!(
            RelayUrl::parse("trelay://[::1]:7000").unwrap().to_string(),
            "trelay://[::1]:7000"
        );
        assert!(!RelayUrl::parse("net://h").unwrap().native);
    }

    #[test]
    fn rejects() {
        for bad in [
            "tcp://h",
            "net://",
            "net://h:x",
            "net://h:0",
            "net://h:1:2:3",
            "net6://[::1",
            "net://h:70000",
            "trelay://h:1:2",
        ] {
            assert!(RelayUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
