//! Configuration: the command line ([`cli`]), listener URLs ([`url`]) and trelay's own settings
//! from a TOML file ([`settings`]), resolved into one [`Config`] that [`crate::run`] takes.

pub mod cli;
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
}

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
        let output = match &cli.output {
            Some(dir) => absolute(dir)?,
            None => default_output(
                std::env::var_os("LTTNG_HOME").as_deref(),
                std::env::var_os("HOME").as_deref(),
            )?,
        };
        Ok(Config {
            control: cli.control_port.clone(),
            data: cli.data_port.clone(),
            live: cli.live_port.clone(),
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
    fn output_default_prefers_lttng_home() {
        let p = default_output(Some(OsStr::new("/a")), Some(OsStr::new("/b"))).unwrap();
        assert_eq!(p, PathBuf::from("/a/lttng-traces"));
        let p = default_output(Some(OsStr::new("")), Some(OsStr::new("/b"))).unwrap();
        assert_eq!(p, PathBuf::from("/b/lttng-traces"));
        assert!(default_output(None, None).is_err());
    }
}
