//! `trelayd`: the trelay relay daemon.

fn main() -> std::process::ExitCode {
    eprintln!("trelayd: the relay is not built yet");
    std::process::ExitCode::FAILURE
}
