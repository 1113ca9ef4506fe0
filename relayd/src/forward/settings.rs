//! The `forward` setting: a URL, or a table with TLS files.
//!
//! ```toml
//! forward = "trelay://core.example:5342"
//! # or
//! [forward]
//! url = "trelay://core.example:5342"
//! ca = "/etc/trelay/core-ca.pem"     # TLS towards the core's [tls] port
//! cert = "/etc/trelay/edge.pem"      # this edge's client certificate (its name at the core)
//! key = "/etc/trelay/edge.key"
//! poll_ms = 100                      # how often index files are checked for new commits
//! ```

use serde::Deserialize;
use std::path::PathBuf;
use trelay_consumer::native::client::ClientTls;
use trelay_consumer::url::RelayUrl;

/// Where and how sessions are forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Raw")]
pub struct ForwardSettings {
    /// The core relay, `trelay://HOST[:PORT]`.
    pub url: String,
    /// CA of the core's certificate: speak TLS when set.
    pub ca: Option<PathBuf>,
    /// This relay's client certificate.
    pub cert: Option<PathBuf>,
    /// The key of `cert`.
    pub key: Option<PathBuf>,
    /// Index file polling period (ms).
    pub poll_ms: u64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Url(String),
    Table {
        url: String,
        #[serde(default)]
        ca: Option<PathBuf>,
        #[serde(default)]
        cert: Option<PathBuf>,
        #[serde(default)]
        key: Option<PathBuf>,
        #[serde(default = "default_poll")]
        poll_ms: u64,
    },
}

fn default_poll() -> u64 {
    100
}

impl From<Raw> for ForwardSettings {
    fn from(r: Raw) -> Self {
        match r {
            Raw::Url(url) => ForwardSettings::new(url),
            Raw::Table {
                url,
                ca,
                cert,
                key,
                poll_ms,
            } => ForwardSettings {
                url,
                ca,
                cert,
                key,
                poll_ms,
            },
        }
    }
}

impl ForwardSettings {
    /// Forwarding to `url` in the clear.
    pub fn new(url: String) -> Self {
        ForwardSettings {
            url,
            ca: None,
            cert: None,
            key: None,
            poll_ms: default_poll(),
        }
    }

    /// The core's URL, which must be trelay://.
    pub fn relay_url(&self) -> Result<RelayUrl, String> {
        let u = RelayUrl::parse(&self.url).map_err(|e| format!("forward: {e}"))?;
        if !u.native {
            return Err(format!(
                "forward: {} is not a trelay:// URL (forwarding needs resume)",
                self.url
            ));
        }
        Ok(u)
    }

    /// The TLS settings towards the core, when `ca` is set.
    pub fn tls(&self) -> Result<Option<ClientTls>, String> {
        match &self.ca {
            None if self.cert.is_some() => Err("forward: cert needs ca".into()),
            None => Ok(None),
            Some(ca) => ClientTls::new(ca, self.cert.as_deref(), self.key.as_deref())
                .map(Some)
                .map_err(|e| format!("forward: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct S {
        forward: ForwardSettings,
    }

    #[test]
    fn a_url_or_a_table() {
        let s: S = toml::from_str("forward = \"trelay://core:7000\"").unwrap();
        assert_eq!(s.forward, ForwardSettings::new("trelay://core:7000".into()));
        assert_eq!(s.forward.relay_url().unwrap().control_port, 7000);
        let s: S = toml::from_str("[forward]\nurl = \"trelay://core\"\npoll_ms = 50\n").unwrap();
        assert_eq!(s.forward.poll_ms, 50);
        assert_eq!(s.forward.relay_url().unwrap().control_port, 5342);
        assert!(s.forward.tls().unwrap().is_none());
    }

    #[test]
    fn only_trelay_urls() {
        let f = ForwardSettings::new("net://core".into());
        assert!(f.relay_url().unwrap_err().contains("not a trelay://"));
        let mut f = ForwardSettings::new("trelay://core".into());
        f.cert = Some("x.pem".into());
        assert!(f.tls().is_err());
    }
}
