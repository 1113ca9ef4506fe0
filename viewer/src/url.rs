//! Live relay URLs, as babeltrace2 spells them: `net://HOST[:PORT]` names a relay's live port
//! (default 5344) and `net://HOST[:PORT]/host/TARGET_HOST/SESSION` one of its sessions.
//! `net4://` and `net6://` are accepted too; an IPv6 address goes in brackets.
//!
//! `tls+net://HOST[:PORT][/host/TARGET_HOST/SESSION]` is the same inside TLS: trelayd's TLS live
//! port (`[tls] live_addr`, default port 5345), for trelay-viewer only (babeltrace2 does not
//! speak TLS).

use trelay_proto::lttng::relayd::LIVE_PORT;

/// Default port of the TLS live port.
pub const TLS_LIVE_PORT: u16 = 5345;

/// A parsed live URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveUrl {
    /// Relay host name or address (without brackets).
    pub host: String,
    /// Live port.
    pub port: u16,
    /// `(target hostname, session name)` when the URL names a session.
    pub session: Option<(String, String)>,
    /// Whether the relay is reached inside TLS (`tls+net://`).
    pub tls: bool,
}

impl LiveUrl {
    /// `host:port` for connecting (brackets around IPv6 addresses).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL of a session on this relay.
    pub fn session_url(&self, hostname: &str, session: &str) -> String {
        let scheme = if self.tls { "tls+net" } else { "net" };
        format!("{scheme}://{}/host/{hostname}/{session}", self.addr())
    }

    /// The relay part of the URL (`[tls+]net://HOST:PORT`), without the session.
    pub fn relay(&self) -> String {
        let scheme = if self.tls { "tls+net" } else { "net" };
        format!("{scheme}://{}", self.addr())
    }
}

impl std::str::FromStr for LiveUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<LiveUrl, String> {
        let (tls, plain) = match s.strip_prefix("tls+") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let rest = ["net://", "net4://", "net6://"]
            .iter()
            .find_map(|p| plain.strip_prefix(p))
            .ok_or_else(|| {
                format!("{s}: expected [tls+]net://HOST[:PORT][/host/HOSTNAME/SESSION]")
            })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{s}: unterminated [IPv6 address]"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s}: no host"));
        }
        let port = match port {
            None if tls => TLS_LIVE_PORT,
            None => LIVE_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("{s}: bad port {p:?}"))?,
        };
        let session = match path.trim_end_matches('/') {
            "" => None,
            p => {
                let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
                match parts.as_slice() {
                    ["host", h, n] if !h.is_empty() && !n.is_empty() => {
                        Some(((*h).to_owned(), (*n).to_owned()))
                    }
                    _ => return Err(format!("{s}: the path must be /host/HOSTNAME/SESSION")),
                }
            }
        };
        Ok(LiveUrl {
            host: host.to_owned(),
            port,
            session,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let u: LiveUrl = "net://localhost".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.session),
            ("localhost", 5344, None)
        );
        let u: LiveUrl = "net://127.0.0.1:7000/host/vm/fx3754".parse().unwrap();
        assert_eq!(u.port, 7000);
        assert_eq!(u.session, Some(("vm".into(), "fx3754".into())));
        assert_eq!(u.addr(), "127.0.0.1:7000");
        let u: LiveUrl = "net6://[::1]:99/host/a/b/".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 99));
        assert_eq!(u.addr(), "[::1]:99");
        assert!(!u.tls);
        let u: LiveUrl = "tls+net://relay.example/host/a/b".parse().unwrap();
        assert!(u.tls);
        assert_eq!(u.port, 5345);
        assert_eq!(
            u.session_url("a", "b"),
            "tls+net://relay.example:5345/host/a/b"
        );
        assert_eq!(u.relay(), "tls+net://relay.example:5345");
        for bad in [
            "tcp://x",
            "tls+tcp://x",
            "tls+net://",
            "net://",
            "net://h:0",
            "net://h:x",
            "net://h/host/a",
            "net://h/x/a/b",
            "net://h/host/a/b/c",
        ] {
            assert!(bad.parse::<LiveUrl>().is_err(), "{bad}");
        }
    }
}
