//! trelay-viewer, built inside the integration package so tests can locate it (same code as the
//! `trelay-viewer` binary of trelay-viewer).

fn main() -> std::process::ExitCode {
    trelay_viewer::cli::main()
}
