//! `trelay-viewer` command line (see `--help`).

fn main() -> std::process::ExitCode {
    trelay_viewer::cli::main()
}
