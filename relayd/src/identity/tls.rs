//! TLS for trelay:// (`[tls]`): a listener of its own whose connections speak trelay:// inside
//! TLS (rustls). With `client_ca`, a sender must present a certificate that CA signed, and the
//! certificate's name (its common name, else its first DNS name) is the peer's identity: the
//! host directory of its sessions and the name the live ACL matches.
//!
//! ```toml
//! [tls]
//! addr = "0.0.0.0:5346"          # where trelay:// over TLS is served
//! live_addr = "0.0.0.0:5345"     # optional: the live protocol over TLS (trelay-viewer)
//! cert = "/etc/trelay/relay.pem" # the relay's certificate chain (PEM)
//! key = "/etc/trelay/relay.key"  # its private key (PEM)
//! client_ca = "/etc/trelay/ca.pem" # optional: require client certificates from this CA
//! ```
//!
//! `live_addr` serves the live (viewer) protocol inside TLS with the same certificate and client
//! CA; a viewer's verified certificate name is what `[[viewer]] certificates` globs match. The
//! plain live port stays as it is (babeltrace2 does not speak TLS): keep it on loopback or a
//! trusted network.

use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// `[tls]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Listen address (`HOST:PORT`).
    pub addr: String,
    /// Listen address of the live protocol over TLS (`HOST:PORT`), when wanted.
    #[serde(default)]
    pub live_addr: Option<String>,
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
    /// CA whose client certificates are required, PEM (none: no client certificate asked).
    pub client_ca: Option<PathBuf>,
}

use trelay_consumer::tls::{certs, key, provider};

/// The server configuration these settings describe.
pub fn server_config(s: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &s.client_ca {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(trelay_consumer::tls::roots(ca)?),
                provider(),
            )
            .build()
            .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs(&s.cert)?, key(&s.key)?)
        .map_err(|e| format!("{}: {e}", s.cert.display()))?;
    Ok(Arc::new(config))
}

/// The name in a (verified) client certificate: its common name, else its first DNS name; only
/// a valid path component is taken.
pub fn certificate_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, x) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = x
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned);
    let dns = || {
        x.subject_alternative_name().ok().flatten().and_then(|san| {
            san.value.general_names.iter().find_map(|g| match g {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
        })
    };
    let name = cn.or_else(dns)?;
    crate::storage::layout::component("certificate name", &name).ok()?;
    Some(name)
}
