//! The `trelayd` binary's entry point: parse flags, set up logging, daemonize if asked, run the
//! relay on a tokio runtime until SIGTERM or SIGINT.

use crate::config::{Cli, Config};
use clap::Parser;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Runs `trelayd` with the process arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    crate::ops::logging::init(level, cli.log_format);
    let config = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.daemonize || cli.background {
        // Before any thread exists: fork, setsid, and (for -d) close the standard streams.
        let keep_cwd = cli.working_directory.is_some();
        if let Err(e) = nix::unistd::daemon(keep_cwd, cli.background) {
            tracing::error!("cannot daemonize: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(dir) = &cli.working_directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            tracing::error!("cannot change to working directory {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
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
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(signals(shutdown.clone()));
        match crate::run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
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
