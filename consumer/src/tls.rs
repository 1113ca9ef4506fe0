//! PEM files and rustls configurations shared by every trelay tool that speaks TLS: the
//! senders (`trelay-consumer`), the viewer's live client and the relay's listeners.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Reads the certificates of a PEM file (at least one).
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut &data[..]).collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut &data[..])
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no private key", path.display()))
}

/// The crypto provider: ring, not aws-lc, so no cmake or nasm is needed to build.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA certificates of the PEM file `ca`, as trust roots.
pub fn roots(ca: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// A client configuration trusting the CA certificates in `ca` and presenting `cert` + `key`
/// when both are given.
pub fn client_config(
    ca: &Path,
    cert: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(ca)?);
    let config = match (cert, key_file) {
        (Some(c), Some(k)) => b
            .with_client_auth_cert(certs(c)?, key(k)?)
            .map_err(|e| e.to_string())?,
        (None, None) => b.with_no_client_auth(),
        _ => return Err("--cert and --key go together".into()),
    };
    Ok(Arc::new(config))
}
