//! The `trelay-viewer` command line: one subcommand per tool, each a thin layer over the
//! library so tests drive the same code.

mod dissect;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for usage errors (bad arguments, unreadable input).
pub const EXIT_USAGE: u8 = 2;

/// trelay-viewer: list, mirror, query, verify and dissect LTTng relay traces.
#[derive(Debug, Parser)]
#[command(name = "trelay-viewer", version, about)]
pub struct Cli {
    /// The tool to run.
    #[command(subcommand)]
    pub command: Tool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Decode a pcap capture or one connection's bytes into one line per message.
    Dissect(dissect::Args),
    /// Integrity of a trace on disk (not built yet).
    Check(Rest),
    /// Post-mortem index queries (not built yet).
    Index(Rest),
    /// The live sessions a relay offers (not built yet).
    Sessions(Rest),
    /// Mirror a live session into a CTF trace (not built yet).
    Live(Rest),
    /// Follow a trace a local relay writes (not built yet).
    Tail(Rest),
}

/// Arguments of a subcommand that is not built yet.
#[derive(Debug, clap::Args)]
pub struct Rest {
    /// Ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Parses the process arguments and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let name = match cli.command {
        Tool::Dissect(args) => return dissect::run(&args),
        Tool::Check(_) => "check",
        Tool::Index(_) => "index",
        Tool::Sessions(_) => "sessions",
        Tool::Live(_) => "live",
        Tool::Tail(_) => "tail",
    };
    eprintln!("trelay-viewer {name}: not built yet");
    ExitCode::from(3)
}
