//! `trelay-consumer` command line.

fn main() -> std::process::ExitCode {
    eprintln!("trelay-consumer: not built yet");
    std::process::ExitCode::FAILURE
}
