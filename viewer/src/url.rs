//! Live relay URLs, as babeltrace2 spells them: `net://HOST[:PORT]` names a relay's live port
//! (default 5344) and `net://HOST[:PORT]/host/TARGET_HOST/SESSION` one of its sessions.
//! `net4://` and `net6://` are accepted too; an IPv6 address goes in brackets.

use trelay_proto::lttng::relayd::LIVE_PORT;

/// A parsed live URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveUrl {
    /// Relay host name or address (without brackets).
    pub host: String,
    /// Live port.
    pub port: u16,
    /// `(target hostname, session name)` when the URL names a session.
    pub session: Option<(String, String)>,
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
        format!("net://{}/host/{hostname}/{session}", self.addr())
    }
}

impl std::str::FromStr for LiveUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<LiveUrl, String> {
        let rest = ["net://", "net4://", "net6://"]
            .iter()
            .find_map(|p| s.strip_prefix(p))
            .ok_or_else(|| format!("{s}: expected net://HOST[:PORT][/host/HOSTNAME/SESSION]"))?;
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
        for bad in [
            "tcp://x",
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
