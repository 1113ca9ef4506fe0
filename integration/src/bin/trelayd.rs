//! trelayd, built inside the integration package so tests can locate it (same code as the
//! `trelayd` binary of trelay-relayd).

fn main() -> std::process::ExitCode {
    trelay_relayd::cli::main()
}
