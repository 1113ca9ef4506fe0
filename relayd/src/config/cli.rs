//! The command line, compatible with lttng-relayd's flags and defaults (2.13 to 2.15).
//!
//! As with lttng-relayd (getopt_long), an unambiguous prefix of a long option is accepted
//! (`--working-dir`), a repeated option takes its last value, and `LTTNG_RELAYD_WORKING_DIRECTORY`
//! / `LTTNG_RELAYD_DISALLOW_CLEAR` stand in for `-w` / `-x` when those are absent. Every flag of
//! lttng-relayd 2.15's `--help` is implemented; see [`LTTNG_RELAYD_FLAGS`].

use super::settings::Durability;
use super::url::ListenUrl;
use clap::Parser;
use std::path::PathBuf;

/// trelayd: a live trace relay daemon, drop-in for LTTng's lttng-relayd (2.13 to 2.15 flags).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "trelayd",
    version,
    about,
    infer_long_args = true,
    args_override_self = true
)]
pub struct Cli {
    /// Control port URL (tcp://HOST:PORT, IPv6 in brackets; port 0 picks a free port)
    /// [default: tcp://0.0.0.0:5342].
    #[arg(short = 'C', long = "control-port", value_name = "URL")]
    pub control_port: Option<ListenUrl>,
    /// Data port URL [default: tcp://0.0.0.0:5343].
    #[arg(short = 'D', long = "data-port", value_name = "URL")]
    pub data_port: Option<ListenUrl>,
    /// Live (viewer) port URL [default: tcp://localhost:5344].
    #[arg(short = 'L', long = "live-port", value_name = "URL")]
    pub live_port: Option<ListenUrl>,
    /// Let the kernel choose the ports not given with -C, -D, -L; the chosen ports are written
    /// to RUNDIR/relayd/{control,data,live}.port in any case (as lttng-relayd 2.14 does).
    #[arg(long = "dynamic-port-allocation")]
    pub dynamic_port_allocation: bool,
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
    /// Change to this working directory once started (also LTTNG_RELAYD_WORKING_DIRECTORY; the
    /// flag wins).
    #[arg(
        short = 'w',
        long = "working-directory",
        value_name = "DIR",
        env = "LTTNG_RELAYD_WORKING_DIRECTORY"
    )]
    pub working_directory: Option<PathBuf>,
    /// Detach from the terminal and run in the background, closing standard streams; returns
    /// once every listener is ready (non-zero if the relay failed to start).
    #[arg(short = 'd', long = "daemonize")]
    pub daemonize: bool,
    /// Like --daemonize, keeping the standard streams open.
    #[arg(short = 'b', long = "background")]
    pub background: bool,
    /// Write the relay's pid (decimal, newline) to FILE once started; removed at exit.
    #[arg(short = 'P', long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Send SIGUSR1 to the parent process once every listener (and the health socket) is ready.
    #[arg(short = 'S', long = "sig-parent")]
    pub sig_parent: bool,
    /// Unix group allowed to query the health socket when started as root [default: tracing].
    #[arg(short = 'g', long = "group", value_name = "GROUP")]
    pub group: Option<String>,
    /// Cap on the file descriptors the relay keeps open (at least 100, at most the open-file
    /// limit); stream files get three quarters of it less a reserve of 10, connections the rest.
    #[arg(long = "fd-pool-size", value_name = "SIZE")]
    pub fd_pool_size: Option<u64>,
    /// More log output (default info; -v debug, -vv trace); RUST_LOG wins when set.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// TOML file with trelay's own settings (durability, commit interval, merge deadline, caps);
    /// an lttng-relayd INI file (`[relayd]` section) is read for the options it sets.
    #[arg(short = 'f', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// beacon: fsync data and index at every commit (default); none: same order, no fsync.
    #[arg(long = "durability", value_enum)]
    pub durability: Option<Durability>,
    /// Write the bound ports as JSON ({"control":N,"data":N,"live":N}) to this file once listening.
    #[arg(long = "ports-file", value_name = "FILE")]
    pub ports_file: Option<PathBuf>,
    /// Serve /metrics (Prometheus), /healthz, /readyz and the status page (/, /api/v1/…) on
    /// HOST:PORT (port 0 picks one).
    #[arg(long = "metrics-addr", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Forward every session, once committed here, to this core relay (`trelay://HOST[:PORT]`).
    #[arg(long = "forward", value_name = "URL")]
    pub forward: Option<String>,
    /// Log line format: text, or one JSON object per line for log shippers.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: crate::ops::logging::LogFormat,
    /// Refuse `lttng clear` (also LTTNG_RELAYD_DISALLOW_CLEAR=1).
    #[arg(short = 'x', long = "disallow-clear", env = "LTTNG_RELAYD_DISALLOW_CLEAR", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub disallow_clear: Option<bool>,
}

/// Every option of lttng-relayd 2.15's `--help` (long name, short letter), each implemented by
/// trelayd with lttng-relayd's meaning.
pub const LTTNG_RELAYD_FLAGS: [(&str, Option<char>); 19] = [
    ("control-port", Some('C')),
    ("data-port", Some('D')),
    ("live-port", Some('L')),
    ("daemonize", Some('d')),
    ("background", Some('b')),
    ("pid-file", Some('P')),
    ("group", Some('g')),
    ("fd-pool-size", None),
    ("help", Some('h')),
    ("output", Some('o')),
    ("verbose", Some('v')),
    ("config", Some('f')),
    ("version", Some('V')),
    ("working-directory", Some('w')),
    ("group-output-by-session", Some('s')),
    ("group-output-by-host", Some('p')),
    ("disallow-clear", Some('x')),
    ("dynamic-port-allocation", None),
    ("sig-parent", Some('S')),
];

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_lttng_relayd_flag_is_known_with_its_short_letter() {
        let cmd = Cli::command();
        for (long, short) in LTTNG_RELAYD_FLAGS {
            if long == "help" || long == "version" {
                let st = Cli::try_parse_from(["trelayd", &format!("--{long}")]).unwrap_err();
                assert!(
                    matches!(
                        st.kind(),
                        clap::error::ErrorKind::DisplayHelp
                            | clap::error::ErrorKind::DisplayVersion
                    ),
                    "--{long}: {st}"
                );
                continue;
            }
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .unwrap_or_else(|| panic!("--{long} unknown"));
            assert_eq!(arg.get_short(), short, "--{long}");
        }
        assert!(Cli::try_parse_from(["trelayd", "-V"]).is_err());
    }

    #[test]
    fn prefixes_repeats_and_env_as_getopt_long() {
        let cli = Cli::try_parse_from(["trelayd", "--working-dir", "/w", "--pid", "/p"]).unwrap();
        assert_eq!(cli.working_directory, Some(PathBuf::from("/w")));
        assert_eq!(cli.pid_file, Some(PathBuf::from("/p")));
        // Ambiguous prefixes are refused, exact names win over longer ones.
        assert!(Cli::try_parse_from(["trelayd", "--d"]).is_err());
        let cli = Cli::try_parse_from(["trelayd", "--group", "g"]).unwrap();
        assert_eq!(cli.group.as_deref(), Some("g"));
        let cli = Cli::try_parse_from(["trelayd", "-o", "/a", "-o", "/b", "-x", "-S"]).unwrap();
        assert_eq!(cli.output, Some(PathBuf::from("/b")));
        assert_eq!(cli.disallow_clear, Some(true));
        assert!(cli.sig_parent);
        let cli = Cli::try_parse_from(["trelayd", "--dynamic-port", "--fd-pool-size=200"]).unwrap();
        assert!(cli.dynamic_port_allocation);
        assert_eq!(cli.fd_pool_size, Some(200));
    }
}
