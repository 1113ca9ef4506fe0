//! Where each relay is: its state, packets and bytes received, the time of its last packet;
//! printed to stderr every few seconds and at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::time::format_epoch_ns;

/// A relay's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connecting (first attempt).
    Connecting,
    /// Attached and following.
    Connected,
    /// Lost or unreachable; trying again with backoff.
    Retrying,
    /// Its session ended.
    Ended,
    /// Stopped on request (detached).
    Detached,
    /// Given up (unreachable for too long, or no such session).
    Failed,
}

impl State {
    /// The word shown.
    pub fn label(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Retrying => "retrying",
            State::Ended => "ended",
            State::Detached => "detached",
            State::Failed => "failed",
        }
    }
}

/// One relay's progress.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    /// Its name (mirror subfolder, line tag).
    pub name: String,
    /// Its URL.
    pub url: String,
    /// State.
    pub state: State,
    /// Packets received (duplicates after a reconnect not counted).
    pub packets: u64,
    /// Packet bytes received.
    pub bytes: u64,
    /// Time of the last packet's end (ns since the Epoch, when the clock is known).
    pub last_ns: Option<i128>,
    /// Connections lost and made again.
    pub reconnects: u64,
    /// The last error.
    pub error: Option<String>,
}

impl RelayStatus {
    /// The progress line.
    pub fn render(&self) -> String {
        let mut s = format!(
            "relay {} ({}): {}, {} packet(s), {} bytes",
            self.name,
            self.url,
            self.state.label(),
            self.packets,
            self.bytes
        );
        if let Some(ns) = self.last_ns {
            s.push_str(&format!(", at {}", format_epoch_ns(ns)));
        }
        if self.reconnects > 0 {
            s.push_str(&format!(", {} reconnect(s)", self.reconnects));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(" — {e}"));
        }
        s
    }
}

/// The progress of every relay, shared by their threads.
#[derive(Debug, Clone)]
pub struct Board(Arc<Mutex<Vec<RelayStatus>>>);

impl Board {
    /// A board for relays `(name, url)`.
    pub fn new(relays: &[(String, String)]) -> Board {
        Board(Arc::new(Mutex::new(
            relays
                .iter()
                .map(|(name, url)| RelayStatus {
                    name: name.clone(),
                    url: url.clone(),
                    state: State::Connecting,
                    packets: 0,
                    bytes: 0,
                    last_ns: None,
                    reconnects: 0,
                    error: None,
                })
                .collect(),
        )))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<RelayStatus>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes relay `i`.
    pub fn update(&self, i: usize, f: impl FnOnce(&mut RelayStatus)) {
        if let Some(s) = self.lock().get_mut(i) {
            f(s);
        }
    }

    /// A copy of every relay's status.
    pub fn snapshot(&self) -> Vec<RelayStatus> {
        self.lock().clone()
    }

    /// Prints every relay's line to stderr.
    pub fn print(&self, prefix: &str) {
        for s in self.snapshot() {
            eprintln!("{prefix}: {}", s.render());
        }
    }

    /// Prints the board every `every` until `done` is set (nothing when `every` is zero).
    pub fn report_every(
        &self,
        prefix: &'static str,
        every: Duration,
        done: Arc<AtomicBool>,
    ) -> Option<std::thread::JoinHandle<()>> {
        if every.is_zero() {
            return None;
        }
        let board = self.clone();
        Some(std::thread::spawn(move || {
            let mut next = Instant::now() + every;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if Instant::now() >= next {
                    board.print(prefix);
                    next += every;
                }
            }
        }))
    }
}
