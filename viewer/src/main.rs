//! `trelay-viewer` command line.

fn main() -> std::process::ExitCode {
    eprintln!("trelay-viewer: not built yet");
    std::process::ExitCode::FAILURE
}
