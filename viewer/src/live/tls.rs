//! The live protocol over TLS (`tls+net://`, trelayd's `[tls] live_addr`): rustls on the
//! blocking socket, trusting the CA given with `--ca` and presenting `--cert`/`--key` when the
//! relay asks for a client certificate (the relay's live ACL then sees the certificate's name).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};

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

fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut &data[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

impl ViewerTls {
    /// Trusts the CA certificates in `ca`; presents `cert` + `key` when both are given.
    pub fn new(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<ViewerTls, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_certs(ca)? {
            roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        #[allow(deprecated)] // ring: no extra C toolchain to build
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match (cert, key) {
            (Some(c), Some(k)) => {
                let data = std::fs::read(k).map_err(|e| format!("{}: {e}", k.display()))?;
                let key = rustls_pemfile::private_key(&mut &data[..])
                    .map_err(|e| format!("{}: {e}", k.display()))?
                    .ok_or_else(|| format!("{}: no private key", k.display()))?;
                b.with_client_auth_cert(pem_certs(c)?, key)
                    .map_err(|e| e.to_string())?
            }
            (None, None) => b.with_no_client_auth(),
            _ => return Err("--cert and --key go together".into()),
        };
        Ok(ViewerTls {
            config: Arc::new(config),
        })
    }

    /// A client session for the relay named `host` (a DNS name or an address).
    pub fn session(&self, host: &str) -> Result<rustls::ClientConnection, String> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
        rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| e.to_string())
    }
}
