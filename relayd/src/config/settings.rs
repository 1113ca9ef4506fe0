//! trelay's own settings, read from the TOML file given with `--config` (every key optional).
//!
//! ```toml
//! durability = "beacon"          # or "none"; the --durability flag wins over this
//! commit_interval_ms = 1000      # commit period for sessions without live beacons
//! merge_deadline_ms = 10000      # how long a half index entry waits for its partner
//! tick_ms = 100                  # period of the expiry / commit tick
//! max_pending_per_stream = 4096  # half entries waiting per stream
//! max_pending_bytes = 67108864   # memory budget of the half entries waiting relay-wide
//! max_pending_total = 0          # also cap their number (0: only the byte budget)
//! max_packet_size = 268435456    # largest data packet accepted on the data port (bytes)
//! max_metadata_chunk = 134217728 # largest SEND_METADATA payload (bytes)
//! allow_clear = true             # advertise CLEAR_ALLOWED in GET_CONFIGURATION
//! disk_full_timeout_s = 600      # a session waiting this long for disk space is failed (0: never)
//! metrics_addr = "127.0.0.1:9100" # /metrics, /healthz, /readyz, status page (off when unset; --metrics-addr wins)
//! max_open_files = 0             # stream files open at once (0: three quarters of the fd limit)
//! resume_timeout_s = 300         # a trelay:// session waits this long for its sender to reconnect
//!
//! [retention]                    # see crate::storage::retention
//! max_bytes = 0
//! max_session_bytes = 0
//! max_age_s = 0
//! interval_s = 60
//!
//! [archive]                     # object storage, see crate::archive::settings
//! url = "s3://bucket/prefix"
//! keep_local = true
//!
//! [[peer]], [[viewer]], [[ops]], [limits]  # who may connect, see crate::identity::settings
//! [tls]                          # trelay:// over TLS, see crate::identity::tls
//!
//! [live]                         # live port, see crate::live::LiveSettings
//! idle_timeout_s = 600
//! retry_hold_ms = 0
//! ```

use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// When data reaches the disk for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync data then index at every commit: what a viewer sees survives a crash.
    Beacon,
    /// Same ordering, no fsync (lttng-relayd's behaviour): for throughput tests.
    None,
}

/// Settings of the relay that lttng-relayd has no flag for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Commit mode.
    pub durability: Durability,
    /// Commit period for streams of sessions without live beacons (ms).
    pub commit_interval_ms: u64,
    /// How long a half merge entry waits for its partner before it is expired (ms).
    pub merge_deadline_ms: u64,
    /// Period of the housekeeping tick driving expiry and interval commits (ms).
    pub tick_ms: u64,
    /// Cap on half entries waiting per stream.
    pub max_pending_per_stream: usize,
    /// Memory budget of the half entries waiting in the relay (bytes; see
    /// [`Settings::pending_cap`]).
    pub max_pending_bytes: u64,
    /// Cap on the number of half entries waiting in the relay, on top of the byte budget
    /// (0: the byte budget alone).
    pub max_pending_total: usize,
    /// Largest data packet accepted (data_size + padding_size, bytes).
    pub max_packet_size: u64,
    /// Largest SEND_METADATA payload accepted (bytes).
    pub max_metadata_chunk: u64,
    /// Whether `lttng clear` is allowed (GET_CONFIGURATION's CLEAR_ALLOWED flag).
    pub allow_clear: bool,
    /// How long a session may wait for disk space before it is failed (seconds, 0: forever).
    pub disk_full_timeout_s: u64,
    /// Address of the operations listener (`HOST:PORT`): metrics and health. Off when unset.
    pub metrics_addr: Option<String>,
    /// How long a trelay:// session whose sender disconnected waits for it to come back (s).
    pub resume_timeout_s: u64,
    /// Stream files holding a descriptor at once ([`crate::storage::pool`]); 0: three quarters
    /// of the open-file limit, the rest left to connections.
    pub max_open_files: usize,
    /// Live port settings (`[live]`).
    pub live: crate::live::LiveSettings,
    /// Retention of closed traces (`[retention]`).
    pub retention: crate::storage::retention::RetentionSettings,
    /// Archive to object storage (`[archive]`), off when unset.
    pub archive: Option<crate::archive::ArchiveSettings>,
    /// Allowed senders (`[[peer]]`); empty: anyone may send.
    #[serde(rename = "peer")]
    pub peers: Vec<crate::identity::PeerRule>,
    /// Live viewer permissions (`[[viewer]]`); empty: every viewer sees every session.
    #[serde(rename = "viewer")]
    pub viewers: Vec<crate::identity::ViewerRule>,
    /// Addresses allowed on the operations listener (`[[ops]]`); empty: any address that can
    /// reach `metrics_addr` (bind it to `127.0.0.1` for localhost only).
    #[serde(rename = "ops")]
    pub ops: Vec<crate::identity::OpsRule>,
    /// Limits against exhaustion (`[limits]`).
    pub limits: crate::identity::Limits,
    /// trelay:// over TLS (`[tls]`), off when unset.
    pub tls: Option<crate::identity::tls::TlsSettings>,
    /// Forward every session to a core relay over trelay:// (`forward`), off when unset.
    pub forward: Option<crate::forward::ForwardSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            durability: Durability::Beacon,
            commit_interval_ms: 1000,
            merge_deadline_ms: 10_000,
            tick_ms: 100,
            max_pending_per_stream: 4096,
            max_pending_bytes: 64 << 20,
            max_pending_total: 0,
            max_packet_size: 256 << 20,
            max_metadata_chunk: 128 << 20,
            allow_clear: true,
            disk_full_timeout_s: 600,
            metrics_addr: None,
            max_open_files: 0,
            resume_timeout_s: 300,
            live: crate::live::LiveSettings::default(),
            retention: crate::storage::retention::RetentionSettings::default(),
            archive: None,
            peers: Vec::new(),
            viewers: Vec::new(),
            ops: Vec::new(),
            limits: crate::identity::Limits::default(),
            tls: None,
            forward: None,
        }
    }
}

/// Why the settings file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parse error.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            SettingsError::Parse { source, .. } => SettingsError::Parse {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates settings from TOML text.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let s: Settings = toml::from_str(text).map_err(|source| SettingsError::Parse {
            path: String::new(),
            source,
        })?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |what: &str| Err(SettingsError::Invalid(format!("{what} must be positive")));
        if self.tick_ms == 0 {
            return bad("tick_ms");
        }
        if self.commit_interval_ms == 0 {
            return bad("commit_interval_ms");
        }
        if self.merge_deadline_ms == 0 {
            return bad("merge_deadline_ms");
        }
        if self.max_pending_per_stream == 0 || self.max_pending_bytes < PENDING_HALF_BYTES {
            return bad("max_pending_per_stream and max_pending_bytes");
        }
        self.live.validate().map_err(SettingsError::Invalid)?;
        if let Some(a) = &self.archive {
            a.validate().map_err(SettingsError::Invalid)?;
        }
        crate::identity::settings::validate(
            &self.peers,
            &self.viewers,
            &self.limits,
            self.max_metadata_chunk,
        )
        .map_err(SettingsError::Invalid)?;
        Ok(())
    }

    /// The commit interval.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms)
    }

    /// How long a disconnected trelay:// session waits for its sender.
    pub fn resume_timeout(&self) -> Duration {
        Duration::from_secs(self.resume_timeout_s)
    }

    /// The merge deadline.
    pub fn merge_deadline(&self) -> Duration {
        Duration::from_millis(self.merge_deadline_ms)
    }

    /// How long a session may wait for disk space.
    pub fn disk_full_timeout(&self) -> Duration {
        if self.disk_full_timeout_s == 0 {
            Duration::MAX
        } else {
            Duration::from_secs(self.disk_full_timeout_s)
        }
    }

    /// How many half entries may wait relay-wide: the byte budget divided by the resident cost
    /// of one ([`PENDING_HALF_BYTES`]), and at most `max_pending_total` when that is set.
    pub fn pending_cap(&self) -> usize {
        let by_bytes = usize::try_from(self.max_pending_bytes / PENDING_HALF_BYTES)
            .unwrap_or(usize::MAX)
            .max(1);
        match self.max_pending_total {
            0 => by_bytes,
            n => n.min(by_bytes),
        }
    }

    /// The housekeeping tick.
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms)
    }
}

/// Resident memory one waiting half entry costs (its table slot, timer-wheel entry and their
/// share of the hash tables' spare capacity): a relay flooded with orphan index halves over
/// 1,024 streams grew 345–372 MiB at 1,048,576 halves, about 350 bytes each.
pub const PENDING_HALF_BYTES: u64 = 352;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pending_budget_is_in_bytes() {
        let d = Settings::default();
        assert_eq!(d.pending_cap(), (64 << 20) / 352);
        let s = Settings::parse("max_pending_bytes = 1048576\nmax_pending_total = 100\n").unwrap();
        assert_eq!(s.pending_cap(), 100);
        let s = Settings::parse("max_pending_bytes = 3520\n").unwrap();
        assert_eq!(s.pending_cap(), 10);
        assert!(Settings::parse("max_pending_bytes = 10\n").is_err());
    }

    #[test]
    fn ops_rules_are_address_ranges() {
        let s = Settings::parse("[[ops]]\ncidr = \"10.9.0.0/24\"\n[[ops]]\ncidr = \"::1/128\"\n")
            .unwrap();
        assert_eq!(s.ops.len(), 2);
        assert_eq!(
            s.ops[0].cidr,
            "10.9.0.0/24".parse::<ipnet::IpNet>().unwrap()
        );
        assert!(Settings::parse("[[ops]]\ncidr = \"nonsense\"\n").is_err());
        assert!(Settings::parse("[[ops]]\n").is_err());
        assert!(Settings::parse("[[ops]]\ncidr = \"10.0.0.0/8\"\nsessions = []\n").is_err());
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
    }

    #[test]
    fn reads_keys_and_rejects_unknown_or_zero() {
        let s = Settings::parse("durability = \"none\"\ncommit_interval_ms = 250\n").unwrap();
        assert_eq!(s.durability, Durability::None);
        assert_eq!(s.commit_interval_ms, 250);
        assert!(Settings::parse("comit_interval_ms = 1").is_err());
        assert!(Settings::parse("tick_ms = 0").is_err());
        let s =
            Settings::parse("disk_full_timeout_s = 5\n[retention]\nmax_bytes = 1000\n").unwrap();
        assert_eq!(s.disk_full_timeout(), Duration::from_secs(5));
        assert_eq!(s.retention.max_bytes, 1000);
        assert!(s.retention.enabled());
        assert!(Settings::parse("[retention]\nmax_byte = 1\n").is_err());
        assert!(Settings::parse("durability = \"sometimes\"").is_err());
        let s = Settings::parse("[archive]\nurl = \"s3://b/p\"\nkeep_local = false\n").unwrap();
        let a = s.archive.unwrap();
        assert!(!a.keep_local && a.url == "s3://b/p");
        assert!(
            Settings::parse("[archive]\nkeep_local = false\n").is_err(),
            "url required"
        );
        assert!(Settings::parse("[archive]\nurl = \"s3://b/../p\"\n").is_err());
    }
}
