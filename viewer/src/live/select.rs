//! Which relay sessions a client attaches: an exact `(hostname, session)` from a session URL,
//! or a session-name glob (with an optional hostname glob) across whatever hosts a relay holds
//! — three hosts of a fleet each tracing "checkout" to their own relay.

use glob::Pattern;

/// A session selector.
#[derive(Debug, Clone)]
pub enum SessionMatch {
    /// Exactly this hostname and session name (a session URL's `/host/H/S`).
    Exact {
        /// Target hostname.
        host: String,
        /// Session name.
        name: String,
    },
    /// Session names matching `name`, of hostnames matching `host` (any when absent).
    Glob {
        /// Hostname glob.
        host: Option<Pattern>,
        /// Session-name glob.
        name: Pattern,
    },
}

impl SessionMatch {
    /// A glob selector; `Err` for a bad glob.
    pub fn glob(name: &str, host: Option<&str>) -> Result<SessionMatch, String> {
        let p = |g: &str| Pattern::new(g).map_err(|e| format!("glob {g:?}: {e}"));
        Ok(SessionMatch::Glob {
            host: host.map(p).transpose()?,
            name: p(name)?,
        })
    }

    /// Whether the session `name` of `host` is selected.
    pub fn matches(&self, host: &str, name: &str) -> bool {
        match self {
            SessionMatch::Exact { host: h, name: n } => h == host && n == name,
            SessionMatch::Glob { host: h, name: n } => {
                h.as_ref().is_none_or(|h| h.matches(host)) && n.matches(name)
            }
        }
    }

    /// The hostname part, for messages.
    pub fn host_text(&self) -> String {
        match self {
            SessionMatch::Exact { host, .. } => host.clone(),
            SessionMatch::Glob { host, .. } => {
                host.as_ref().map_or("*".into(), |h| h.as_str().to_owned())
            }
        }
    }

    /// The session part, for messages.
    pub fn name_text(&self) -> String {
        match self {
            SessionMatch::Exact { name, .. } => name.clone(),
            SessionMatch::Glob { name, .. } => name.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects() {
        let e = SessionMatch::Exact {
            host: "a".into(),
            name: "s".into(),
        };
        assert!(e.matches("a", "s") && !e.matches("b", "s") && !e.matches("a", "t"));
        let g = SessionMatch::glob("check*", None).unwrap();
        assert!(g.matches("any", "checkout") && !g.matches("any", "cart"));
        let g = SessionMatch::glob("checkout", Some("edge-*")).unwrap();
        assert!(g.matches("edge-1", "checkout") && !g.matches("core", "checkout"));
        assert!(SessionMatch::glob("[", None).is_err());
    }
}
