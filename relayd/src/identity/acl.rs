//! The live ACL: which sessions a viewer connecting from an address (and, on the TLS live port,
//! presenting a verified certificate name) may list and attach to.

use super::ViewerRule;
use glob::Pattern;
use std::net::IpAddr;

/// The session patterns one viewer may see: a union of `(peer glob, session glob)` pairs.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    allowed: Vec<(Vec<Pattern>, Vec<Pattern>)>,
}

fn patterns(globs: &[String]) -> Vec<Pattern> {
    globs.iter().filter_map(|g| Pattern::new(g).ok()).collect()
}

impl Scope {
    /// The scope of a viewer at `ip` whose verified certificate is named `certificate` under
    /// `rules` (empty: sees nothing). A rule matches when its `cidr` (if any) holds `ip` and,
    /// if it names certificates, `certificate` matches one of them.
    pub fn new(rules: &[ViewerRule], ip: IpAddr, certificate: Option<&str>) -> Scope {
        let named = |r: &ViewerRule| {
            r.certificates.is_empty()
                || certificate
                    .is_some_and(|c| patterns(&r.certificates).iter().any(|p| p.matches(c)))
        };
        Scope {
            allowed: rules
                .iter()
                .filter(|r| r.cidr.is_none_or(|c| c.contains(&ip)) && named(r))
                .map(|r| (patterns(&r.peers), patterns(&r.sessions)))
                .collect(),
        }
    }

    /// Whether the session `name` sent by peer (host directory) `host` is visible.
    pub fn allows(&self, host: &str, name: &str) -> bool {
        self.allowed.iter().any(|(peers, sessions)| {
            peers.iter().any(|p| p.matches(host)) && sessions.iter().any(|s| s.matches(name))
        })
    }

    /// Whether nothing at all is visible.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }
}
