//! What `live` and `tail` share when they follow relays: the TLS options, the relay options
//! turned into [`MultiOptions`], and the end-of-run report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{failure, secs};
use crate::live::multi::{MultiOptions, MultiReport, RelaySpec};
use crate::live::{self, LiveOptions, SessionMatch};

/// TLS for `tls+net://` URLs (trelayd's TLS live port).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// CA certificate(s) the relay's certificate must chain to (PEM).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate chain to present (PEM; with --key).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS settings, when `--ca` is given.
    pub fn load(&self) -> Result<Option<live::ViewerTls>, String> {
        match &self.ca {
            Some(ca) => {
                live::ViewerTls::new(ca, self.cert.as_deref(), self.key.as_deref()).map(Some)
            }
            None if self.cert.is_some() => Err("--cert needs --ca".into()),
            None => Ok(None),
        }
    }
}

/// The relay options `live` and `tail` share.
pub(super) struct RelayArgs {
    pub(super) urls: Vec<RelaySpec>,
    pub(super) session: Option<String>,
    pub(super) host: Option<String>,
    pub(super) wait: f64,
    pub(super) poll_ms: u64,
    pub(super) give_up: f64,
    pub(super) progress: f64,
    pub(super) tls: TlsArgs,
}

impl RelayArgs {
    pub(super) fn options(self, output: PathBuf) -> Result<MultiOptions, String> {
        let (Some(wait), Some(give_up), Some(progress)) =
            (secs(self.wait), secs(self.give_up), secs(self.progress))
        else {
            return Err("--wait, --give-up and --progress must be numbers of seconds".into());
        };
        let select = match &self.session {
            Some(s) => Some(SessionMatch::glob(s, self.host.as_deref())?),
            None => None,
        };
        if select.is_none() {
            if let Some(u) = self.urls.iter().find(|r| r.url.session.is_none()) {
                return Err(format!(
                    "{}: a session URL (.../host/HOSTNAME/SESSION) or --session is needed",
                    u.url.relay()
                ));
            }
        }
        let first = self.urls.first().ok_or("no relay URL")?;
        let mut base = LiveOptions::new(first.url.clone(), output);
        base.wait = wait;
        base.poll = Duration::from_millis(self.poll_ms.max(1));
        base.tls = self.tls.load()?;
        base.select = select;
        if base.tls.is_none() && self.urls.iter().any(|r| r.url.tls) {
            return Err("a tls+net:// URL needs --ca".into());
        }
        let multi = MultiOptions {
            relays: self.urls,
            base,
            give_up,
            progress,
        };
        multi.check()?;
        Ok(multi)
    }
}

pub(super) fn tagged_json(relay: &str, line: &crate::report::PacketLine) -> String {
    let mut v = serde_json::to_value(line).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("relay".into(), relay.into());
    }
    v.to_string()
}

pub(super) fn multi_end(prefix: &str, res: Result<MultiReport, String>) -> ExitCode {
    match res {
        Ok(r) => {
            for s in &r.relays {
                eprintln!("{prefix}: {}", s.render());
            }
            if r.late > 0 {
                eprintln!(
                    "{prefix}: {} packet(s) came out of timestamp order (late relays)",
                    r.late
                );
            }
            if r.all_ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!("{prefix}: some relays failed");
                ExitCode::FAILURE
            }
        }
        Err(e) => failure(e),
    }
}
