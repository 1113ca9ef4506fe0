//! `trelay-viewer dissect FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::dissect::source::{self, Options};
use crate::dissect::Direction;

/// Arguments of `dissect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pcap capture, or the bytes one side of one connection sent (e.g. `5342-0.client`).
    pub file: PathBuf,
    /// The relay port of a byte file's connection (5342, 5343 or 5344); default from its name.
    #[arg(long)]
    pub port: Option<u16>,
    /// Which side sent a byte file's bytes; default from its name (`.client` / `.server`).
    #[arg(long, value_enum)]
    pub direction: Option<Side>,
    /// The opposite direction's bytes (default: the sibling `.client`/`.server` file).
    #[arg(long)]
    pub peer: Option<PathBuf>,
}

/// A side of a connection.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Side {
    /// Bytes the connecting peer sent.
    Client,
    /// Bytes the relay sent.
    Server,
}

/// Runs `dissect`: 0 when every byte decoded, 1 otherwise, 2 on usage errors.
pub fn run(args: &Args) -> ExitCode {
    let opts = Options {
        port: args.port,
        direction: args.direction.map(|s| match s {
            Side::Client => Direction::Client,
            Side::Server => Direction::Server,
        }),
        peer: args.peer.clone(),
    };
    let sections = match source::load(&args.file, &opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trelay-viewer dissect: {e}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    match source::print(
        &args.file,
        &sections,
        &mut stdout.lock(),
        &mut stderr.lock(),
    ) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trelay-viewer dissect: {e}");
            ExitCode::FAILURE
        }
    }
}
