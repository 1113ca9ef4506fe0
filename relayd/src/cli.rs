//! The `trelayd` binary's entry point: parse flags, set up logging, daemonize if asked, run the
//! relay on a tokio runtime until SIGTERM or SIGINT.
//!
//! Start-up follows lttng-relayd: options (an lttng INI `--config` first, then the command
//! line), `-d`/`-b` detach (the parent waits for readiness), `-w` changes directory (failing with
//! "Failed to change working directory to ..."), `--pid-file` is written, the output folder is
//! locked and the listeners bound, the ports are written to `RUNDIR/relayd/*.port`, the health
//! socket listens, and only then is readiness announced (the waiting parent, `--sig-parent`,
//! systemd).

use crate::config::{lttng_ini, Cli, Config};
use crate::ops::daemon::{self, PidFile, Readiness};
use crate::ops::health_socket::{self, Health, HealthSocket};
use crate::ops::rundir::RelaydRundir;
use clap::Parser;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Parses the command line; an lttng-relayd INI `--config` file contributes its `[relayd]`
/// options before the command line's (returned with the warnings about its skipped entries).
pub fn parse(args: Vec<OsString>) -> Result<(Cli, Vec<String>), clap::Error> {
    let cli = Cli::try_parse_from(&args)?;
    let Some(path) = &cli.config else {
        return Ok((cli, Vec::new()));
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok((cli, Vec::new()));
    };
    if !lttng_ini::is_lttng_config(&text) {
        return Ok((cli, Vec::new()));
    }
    let (extra, warnings) = lttng_ini::to_args(&text);
    let mut all: Vec<OsString> = args.iter().take(1).cloned().collect();
    all.extend(extra.into_iter().map(OsString::from));
    all.extend(args.into_iter().skip(1));
    Ok((Cli::try_parse_from(all)?, warnings))
}

/// Runs `trelayd` with the process arguments.
pub fn main() -> ExitCode {
    let (cli, warnings) = match parse(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // The process that started us, before any fork.
    let sig_parent = cli.sig_parent.then(nix::unistd::getppid);
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    crate::ops::logging::init(level, cli.log_format);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let config = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Relative to where we were started, like lttng-relayd's partial realpath.
    let pid_path = match cli.pid_file.as_deref().map(std::path::absolute).transpose() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("Failed to determine the path of the PID file: {e}");
            return ExitCode::FAILURE;
        }
    };
    let readiness = if daemon::is_detached() {
        match daemon::adopt() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    } else if cli.daemonize || cli.background {
        // Returns only on failure; the parent exits once the relay is ready (or gone).
        let e = daemon::detach(cli.daemonize, sig_parent);
        tracing::error!("{e}");
        return ExitCode::FAILURE;
    } else {
        Readiness::none().with_sig_parent(sig_parent)
    };
    let mut readiness = readiness;
    if let Some(dir) = &cli.working_directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            tracing::error!(
                "Failed to change working directory to \"{}\": {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let _pid_file = match pid_path.as_deref().map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            let path = pid_path.as_deref().unwrap_or(std::path::Path::new(""));
            tracing::error!(
                "Failed to create PID file at path '{}': {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("trelayd")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dynamic = cli.dynamic_port_allocation;
    let group = cli.group.clone();
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(signals(shutdown.clone()));
        let relay = match crate::server::Relay::bind(config) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let _health = match announce(&relay, group.as_deref(), dynamic) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        readiness.ready();
        match relay.serve(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Writes the port files and starts the health socket. A run directory that cannot be used
/// fails the start only with `--dynamic-port-allocation` (the port files are then the only way
/// to learn the ports); the health socket failing always does, as with lttng-relayd.
fn announce(
    relay: &crate::server::Relay,
    group: Option<&str>,
    dynamic: bool,
) -> Result<HealthSocket, String> {
    let ports = relay.ports();
    let rundir = match RelaydRundir::open(group) {
        Ok(r) => Some(r),
        Err(e) if dynamic => return Err(format!("run directory: {e}")),
        Err(e) => {
            tracing::warn!("run directory: {e}; no port files written");
            None
        }
    };
    if let Some(r) = &rundir {
        match r.write_ports(ports.control, ports.data, ports.live) {
            Ok(()) => tracing::debug!(dir = %r.path().display(), "port files written"),
            Err(e) if dynamic => return Err(format!("cannot write the port files: {e}")),
            Err(e) => tracing::warn!("cannot write the port files: {e}"),
        }
    }
    let path = HealthSocket::path_from_env(|| {
        rundir.as_ref().map_or_else(
            || std::env::temp_dir().join(format!("trelayd-health-{}", std::process::id())),
            RelaydRundir::health_socket,
        )
    });
    let gid = rundir.as_ref().and_then(|r| r.gid);
    let health = health_socket::install(Arc::new(Health::new(Health::lttng_delta())));
    HealthSocket::serve(&path, gid, health.clone()).map_err(|e| e.to_string())
}

async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lttng_ini_config_comes_before_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("lttng.conf");
        std::fs::write(
            &ini,
            "[relayd]\noutput = /from/ini\nbackground = yes\nbogus = 1\n[sessiond]\nverbose = 3\n",
        )
        .unwrap();
        let args = |more: &[&str]| {
            let mut a: Vec<OsString> = vec!["trelayd".into(), "-f".into(), ini.clone().into()];
            a.extend(more.iter().map(OsString::from));
            a
        };
        let (cli, warnings) = parse(args(&[])).unwrap();
        assert_eq!(
            cli.output.as_deref(),
            Some(std::path::Path::new("/from/ini"))
        );
        assert!(cli.background && cli.verbose == 0);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let (cli, _) = parse(args(&["-o", "/from/cli"])).unwrap();
        assert_eq!(
            cli.output.as_deref(),
            Some(std::path::Path::new("/from/cli"))
        );
        // Its settings are not read as trelay's TOML.
        assert!(Config::from_cli(&cli).is_ok());
        // A TOML settings file is left to Config.
        let toml = dir.path().join("trelay.toml");
        std::fs::write(&toml, "durability = \"none\"\n").unwrap();
        let a: Vec<OsString> = vec!["trelayd".into(), "--config".into(), toml.into()];
        let (cli, warnings) = parse(a).unwrap();
        assert!(warnings.is_empty() && cli.output.is_none());
    }
}
