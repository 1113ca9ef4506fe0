//! The command line, compatible with lttng-relayd's flags and defaults.

use super::settings::Durability;
use super::url::ListenUrl;
use clap::Parser;
use std::path::PathBuf;

/// trelayd: a live trace relay daemon, drop-in for lttng-relayd (LTTng 2.13 to 2.15).
#[derive(Debug, Clone, Parser)]
#[command(name = "trelayd", version, about)]
pub struct Cli {
    /// Control port URL (tcp://HOST:PORT, IPv6 in brackets; port 0 picks a free port).
    #[arg(
        short = 'C',
        long = "control-port",
        value_name = "URL",
        default_value = "tcp://0.0.0.0:5342"
    )]
    pub control_port: ListenUrl,
    /// Data port URL.
    #[arg(
        short = 'D',
        long = "data-port",
        value_name = "URL",
        default_value = "tcp://0.0.0.0:5343"
    )]
    pub data_port: ListenUrl,
    /// Live (viewer) port URL.
    #[arg(
        short = 'L',
        long = "live-port",
        value_name = "URL",
        default_value = "tcp://localhost:5344"
    )]
    pub live_port: ListenUrl,
    /// Output directory (default: $LTTNG_HOME/lttng-traces, $HOME/lttng-traces when unset). A
    /// relative path is taken relative to the directory trelayd was started from.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Group session output under the host name (default).
    #[arg(
        short = 'p',
        long = "group-output-by-host",
        conflicts_with = "group_output_by_session"
    )]
    pub group_output_by_host: bool,
    /// Group session output under the session name.
    #[arg(short = 's', long = "group-output-by-session")]
    pub group_output_by_session: bool,
    /// Change to this working directory once started.
    #[arg(short = 'w', long = "working-directory", value_name = "DIR")]
    pub working_directory: Option<PathBuf>,
    /// Detach from the terminal and run in the background, closing standard streams.
    #[arg(short = 'd', long = "daemonize")]
    pub daemonize: bool,
    /// Run in the background, keeping the standard streams open.
    #[arg(short = 'b', long = "background")]
    pub background: bool,
    /// More log output (default info; -v debug, -vv trace); RUST_LOG wins when set.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// TOML file with trelay's own settings (durability, commit interval, merge deadline, caps).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// beacon: fsync data and index at every commit (default); none: same order, no fsync.
    #[arg(long = "durability", value_enum)]
    pub durability: Option<Durability>,
    /// Write the bound ports as JSON ({"control":N,"data":N,"live":N}) to this file once listening.
    #[arg(long = "ports-file", value_name = "FILE")]
    pub ports_file: Option<PathBuf>,
    /// Serve /metrics (Prometheus), /healthz and /readyz on HOST:PORT (port 0 picks one).
    #[arg(long = "metrics-addr", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Forward every session, once committed here, to this core relay (`trelay://HOST[:PORT]`).
    #[arg(long = "forward", value_name = "URL")]
    pub forward: Option<String>,
    /// Log line format: text, or one JSON object per line for log shippers.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: crate::ops::logging::LogFormat,
    /// Refuse `lttng clear` (also LTTNG_RELAYD_DISALLOW_CLEAR=1).
    #[arg(long = "disallow-clear", env = "LTTNG_RELAYD_DISALLOW_CLEAR", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub disallow_clear: Option<bool>,
}
