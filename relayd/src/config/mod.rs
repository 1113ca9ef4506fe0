//! Configuration: the command line ([`cli`]), listener URLs ([`url`]) and trelay's own settings
//! from a TOML file ([`settings`]), resolved into one [`Config`] that [`crate::run`] takes.

pub mod cli;
pub mod lttng_ini;
pub mod settings;
pub mod url;

pub use cli::Cli;
pub use settings::{Durability, Settings};
pub use url::ListenUrl;

use std::path::{Path, PathBuf};

/// How session directories are grouped under the output root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// `HOSTNAME/SESSION-DATETIME` (lttng-relayd's default).
    Host,
    /// `SESSION/HOSTNAME-DATETIME`.
    Session,
}

/// Everything the relay needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Control listener.
    pub control: ListenUrl,
    /// Data listener.
    pub data: ListenUrl,
    /// Live listener.
    pub live: ListenUrl,
    /// Absolute output root.
    pub output: PathBuf,
    /// Session directory grouping.
    pub group_by: GroupBy,
    /// Where to write the bound ports once listening.
    pub ports_file: Option<PathBuf>,
    /// trelay's own settings.
    pub settings: Settings,
}

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No output directory given and neither LTTNG_HOME nor HOME is set.
    #[error("no output directory: pass -o DIR or set LTTNG_HOME or HOME")]
    NoHome,
    /// The current directory is needed to absolutize a relative path and is unknown.
    #[error("cannot resolve relative output path {0}: {1}")]
    Relative(PathBuf, std::io::Error),
    /// The settings file was refused.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// `--fd-pool-size` is out of range.
    #[error("--fd-pool-size {size}: {why}")]
    FdPoolSize {
        /// The value given.
        size: u64,
        /// What is wrong with it.
        why: String,
    },
}

/// lttng-relayd's default ports.
pub const DEFAULT_PORTS: (u16, u16, u16) = (5342, 5343, 5344);

/// Smallest `--fd-pool-size` (lttng-relayd's minimum).
pub const MIN_FD_POOL_SIZE: u64 = 100;

/// Descriptors of `--fd-pool-size` kept for transient uses (lttng-relayd's reserve).
pub const FD_POOL_RESERVE: u64 = 10;

impl Config {
    /// A configuration for tests and embedding: loopback listeners on free ports, output in `dir`,
    /// default settings.
    pub fn for_tests(dir: &Path) -> Self {
        Config {
            control: ListenUrl::new("127.0.0.1", 0),
            data: ListenUrl::new("127.0.0.1", 0),
            live: ListenUrl::new("127.0.0.1", 0),
            output: dir.to_path_buf(),
            group_by: GroupBy::Host,
            ports_file: None,
            settings: Settings::default(),
        }
    }

    /// Resolves a parsed command line (reads the settings file, picks the output directory from
    /// the environment when `-o` is absent, makes relative paths absolute against the current
    /// directory).
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let mut settings = match &cli.config {
            // An lttng-relayd INI file: its options were read with the command line.
            Some(path)
                if std::fs::read_to_string(path).is_ok_and(|t| lttng_ini::is_lttng_config(&t)) =>
            {
                Settings::default()
            }
            Some(path) => Settings::load(path)?,
            None => Settings::default(),
        };
        if let Some(d) = cli.durability {
            settings.durability = d;
        }
        if let Some(addr) = &cli.metrics_addr {
            settings.metrics_addr = Some(addr.clone());
        }
        if let Some(url) = &cli.forward {
            match &mut settings.forward {
                Some(f) => f.url = url.clone(),
                None => settings.forward = Some(crate::forward::ForwardSettings::new(url.clone())),
            }
        }
        if let Some(f) = &settings.forward {
            f.relay_url()
                .and_then(|_| f.tls().map(|_| ()))
                .map_err(|e| ConfigError::from(settings::SettingsError::Invalid(e)))?;
        }
        if let Some(disallow) = cli.disallow_clear {
            settings.allow_clear = !disallow;
        }
        if let Some(size) = cli.fd_pool_size {
            settings.max_open_files = fd_pool_files(size, crate::ops::fds::hard_limit())?;
        }
        // Without --dynamic-port-allocation, a missing port option means lttng-relayd's default
        // port; with it, a kernel-chosen one. Port 0 given explicitly always lets the kernel choose.
        let dynamic = cli.dynamic_port_allocation;
        let port = |given: &Option<ListenUrl>, host: &str, default: u16| {
            given
                .clone()
                .unwrap_or_else(|| ListenUrl::new(host, if dynamic { 0 } else { default }))
        };
        let output = match &cli.output {
            Some(dir) => absolute(dir)?,
            None => default_output(
                std::env::var_os("LTTNG_HOME").as_deref(),
                std::env::var_os("HOME").as_deref(),
            )?,
        };
        Ok(Config {
            control: port(&cli.control_port, "0.0.0.0", DEFAULT_PORTS.0),
            data: port(&cli.data_port, "0.0.0.0", DEFAULT_PORTS.1),
            live: port(&cli.live_port, "localhost", DEFAULT_PORTS.2),
            output,
            group_by: if cli.group_output_by_session {
                GroupBy::Session
            } else {
                GroupBy::Host
            },
            ports_file: cli.ports_file.as_deref().map(absolute).transpose()?,
            settings,
        })
    }
}

/// The stream-file cap for `--fd-pool-size SIZE`: SIZE must be at least [`MIN_FD_POOL_SIZE`] and
/// at most the open-file limit (`limit`, when known); of SIZE less [`FD_POOL_RESERVE`], three
/// quarters go to stream files and the rest is left to connections.
pub fn fd_pool_files(size: u64, limit: Option<u64>) -> Result<usize, ConfigError> {
    let bad = |why: String| Err(ConfigError::FdPoolSize { size, why });
    if size < MIN_FD_POOL_SIZE {
        return bad(format!("must be at least {MIN_FD_POOL_SIZE}"));
    }
    if let Some(l) = limit.filter(|l| size > *l) {
        return bad(format!("exceeds the process' open-file limit ({l})"));
    }
    let files = (size - FD_POOL_RESERVE) / 4 * 3;
    Ok(usize::try_from(files).unwrap_or(usize::MAX))
}

fn absolute(p: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(p).map_err(|e| ConfigError::Relative(p.to_path_buf(), e))
}

/// `$LTTNG_HOME/lttng-traces`, else `$HOME/lttng-traces` (empty values count as unset).
fn default_output(
    lttng_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, ConfigError> {
    let base = lttng_home
        .filter(|v| !v.is_empty())
        .or(home.filter(|v| !v.is_empty()))
        .ok_or(ConfigError::NoHome)?;
    absolute(&Path::new(base).join("lttng-traces"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::ffi::OsStr;

    #[test]
    fn defaults_match_lttng_relayd() {
        let cli = Cli::try_parse_from(["trelayd", "-o", "/tmp/x"]).unwrap();
        let c = Config::from_cli(&cli).unwrap();
        assert_eq!(c.control, ListenUrl::new("0.0.0.0", 5342));
        assert_eq!(c.data, ListenUrl::new("0.0.0.0", 5343));
        assert_eq!(c.live, ListenUrl::new("localhost", 5344));
        assert_eq!(c.group_by, GroupBy::Host);
        assert_eq!(c.output, PathBuf::from("/tmp/x"));
        assert_eq!(c.settings.durability, Durability::Beacon);
    }

    #[test]
    fn flags_override() {
        let cli = Cli::try_parse_from([
            "trelayd",
            "-C",
            "tcp://127.0.0.1:0",
            "-D",
            "tcp://[::1]:7",
            "-s",
            "-vv",
            "--durability=none",
            "-o",
            "rel/out",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 2);
        let c = Config::from_cli(&cli).unwrap();
        assert_eq!(c.control.port, 0);
        assert_eq!(c.data.host, "::1");
        assert_eq!(c.group_by, GroupBy::Session);
        assert_eq!(c.settings.durability, Durability::None);
        assert!(c.output.is_absolute() && c.output.ends_with("rel/out"));
        assert!(Cli::try_parse_from(["trelayd", "-p", "-s"]).is_err());
        assert!(Cli::try_parse_from(["trelayd", "-C", "5342"]).is_err());
    }

    #[test]
    fn dynamic_port_allocation_makes_missing_ports_kernel_chosen() {
        let cli = Cli::try_parse_from([
            "trelayd",
            "-o",
            "/x",
            "--dynamic-port-allocation",
            "-L",
            "tcp://127.0.0.1:9",
        ])
        .unwrap();
        let c = Config::from_cli(&cli).unwrap();
        assert_eq!(c.control, ListenUrl::new("0.0.0.0", 0));
        assert_eq!(c.data, ListenUrl::new("0.0.0.0", 0));
        assert_eq!(c.live, ListenUrl::new("127.0.0.1", 9));
    }

    #[test]
    fn fd_pool_size_is_checked_as_lttng_relayd_does() {
        assert!(fd_pool_files(99, None).is_err());
        assert!(fd_pool_files(2000, Some(1024)).is_err());
        assert_eq!(fd_pool_files(1010, Some(1024)).unwrap(), 750);
        let cli = Cli::try_parse_from(["trelayd", "-o", "/x", "--fd-pool-size", "50"]).unwrap();
        let e = Config::from_cli(&cli).unwrap_err().to_string();
        assert!(e.contains("--fd-pool-size 50"), "{e}");
    }

    #[test]
    fn output_default_prefers_lttng_home() {
        let p = default_output(Some(OsStr::new("/a")), Some(OsStr::new("/b"))).unwrap();
        assert_eq!(p, PathBuf::from("/a/lttng-traces"));
        let p = default_output(Some(OsStr::new("")), Some(OsStr::new("/b"))).unwrap();
        assert_eq!(p, PathBuf::from("/b/lttng-traces"));
        assert!(default_output(None, None).is_err());
    }
}
