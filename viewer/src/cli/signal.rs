//! SIGINT/SIGTERM as a flag the long-running commands poll.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag set when the process receives SIGINT or SIGTERM. The first signal only sets the flag
/// (the command finishes cleanly); handlers stay installed, so further signals do nothing more.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(rt) = rt else {
        eprintln!("trelay-viewer: cannot install signal handlers; Ctrl-C will kill the process");
        return flag;
    };
    // Install the handlers before returning, so a signal right after start is not lost.
    let handlers = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    });
    let Ok((mut int, mut term)) = handlers else {
        eprintln!("trelay-viewer: cannot install signal handlers; Ctrl-C will kill the process");
        return flag;
    };
    std::thread::spawn(move || {
        rt.block_on(async {
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                f.store(true, Ordering::Relaxed);
            }
        })
    });
    flag
}
