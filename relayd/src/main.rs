//! `trelayd`: the trelay relay daemon (see the library for everything).

fn main() -> std::process::ExitCode {
    trelay_relayd::cli::main()
}
