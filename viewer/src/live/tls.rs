//! The live protocol over TLS (`tls+net://`, trelayd's `[tls] live_addr`): rustls on the
//! blocking socket, trusting the CA given with `--ca` and presenting `--cert`/`--key` when the
//! relay asks for a client certificate (the relay's live ACL then sees the certificate's name).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;

/// Client TLS settings for the live port.
#[derive(Clone)]
pub struct ViewerTls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ViewerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerTls").finish_non_exhaustive()
    }
}

impl ViewerTls {
    /// Trusts the CA certificates in `ca`; presents `cert` + `key` when both are given.
    pub fn new(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<ViewerTls, String> {
        Ok(ViewerTls {
            config: trelay_consumer::tls::client_config(ca, cert, key)?,
        })
    }

    /// A client session for the relay named `host` (a DNS name or an address).
    pub fn session(&self, host: &str) -> Result<rustls::ClientConnection, String> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
        rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| e.to_string())
    }
}
