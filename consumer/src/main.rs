//! `trelay-consumer` command line: `send`, `follow` and `bench` (see `--help`).

fn main() -> std::process::ExitCode {
    trelay_consumer::cli::main()
}
