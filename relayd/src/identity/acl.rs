//! The live ACL: which sessions a viewer connecting from an address may list and attach to.

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
    /// The scope of a viewer at `ip` under `rules` (empty: sees nothing).
    pub fn new(rules: &[ViewerRule], ip: IpAddr) -> Scope {
        Scope {
            allowed: rules
                .iter()
                .filter(|r| r.cidr.contains(&ip))
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
