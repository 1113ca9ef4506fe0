//! The multi-relay `tail`: one stream of packet lines from every relay, merged by timestamp
//! ([`super::merge`]), each tagged with its relay.
//!
//! Each relay's thread hands its packets and watermarks to the merging thread over one bounded
//! channel (a full channel blocks the relay threads: TCP pushes back to the relays); the merge
//! holds at most `max_held` packets per relay. Times are the packets' begin timestamps in
//! nanoseconds since the Epoch through each trace's clock (so relays whose traces declare
//! different clock offsets merge on one time line), or raw clock cycles without a clock.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use trelay_proto::StreamId;

use super::merge::Merger;
use super::{follow, MultiOptions, MultiReport};
use crate::live::client::{Packet, Sink};
use crate::live::LiveError;
use crate::report::{Format, PacketLine};
use crate::tsdl::Clock;

/// How the merge waits.
#[derive(Debug, Clone, Copy)]
pub struct MergeOptions {
    /// Packets held at most per relay.
    pub max_held: usize,
    /// How long a silent relay may hold the merge back.
    pub max_lag: Duration,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            max_held: 1024,
            max_lag: Duration::from_secs(2),
        }
    }
}

/// One merged line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TailLine {
    /// The relay's name.
    pub relay: String,
    /// The packet.
    #[serde(flatten)]
    pub line: PacketLine,
    /// Whether it came after a later packet (its relay was silent past the lag bound).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

impl TailLine {
    /// The line in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).unwrap_or_default(),
            Format::Summary => {
                let late = if self.late { " LATE" } else { "" };
                format!("relay={} {}{late}", self.relay, self.line.summary())
            }
        }
    }
}

enum Msg {
    Packet(usize, i128, PacketLine),
    Watermark(usize, i128),
    Done(usize),
}

fn ns(clock: Option<&Clock>, cycles: u64) -> i128 {
    clock.map_or(i128::from(cycles), |c| c.to_epoch_ns(cycles))
}

/// A relay's sink: lines and watermarks to the merging thread.
struct TailSink {
    relay: usize,
    tx: SyncSender<Msg>,
    /// Per open stream of this connection: the time before which it sends nothing more.
    frontier: BTreeMap<StreamId, Option<i128>>,
    sent: Option<i128>,
    /// Per stream label: the last packet sequence number passed on (kept across reconnects).
    last_seq: BTreeMap<String, u64>,
}

impl TailSink {
    fn update_watermark(&mut self) {
        let w = self
            .frontier
            .values()
            .map(|f| f.unwrap_or(i128::MIN))
            .min()
            .unwrap_or(i128::MIN);
        if self.sent != Some(w) {
            self.sent = Some(w);
            let _ = self.tx.send(Msg::Watermark(self.relay, w));
        }
    }

    fn advance(&mut self, stream: StreamId, t: i128) {
        let f = self.frontier.entry(stream).or_insert(None);
        *f = Some(f.map_or(t, |old| old.max(t)));
        self.update_watermark();
    }
}

impl Sink for TailSink {
    fn metadata(&mut self, _dir: &Path, _offset: u64, _data: &[u8]) -> Result<(), LiveError> {
        Ok(())
    }

    fn packet(&mut self, p: &Packet<'_>) -> Result<bool, LiveError> {
        let seq = p.entry.packet_seq_num;
        let dup = seq != u64::MAX && self.last_seq.get(p.label).is_some_and(|&l| seq <= l);
        if !dup {
            if seq != u64::MAX {
                self.last_seq.insert(p.label.to_owned(), seq);
            }
            let line = PacketLine::from_entry(p.label, &p.entry, p.clock, p.prev_discarded);
            let begin = ns(p.clock, p.entry.timestamp_begin);
            self.tx
                .send(Msg::Packet(self.relay, begin, line))
                .map_err(|_| LiveError::Io(std::io::Error::other("the merge ended")))?;
        }
        self.advance(p.stream, ns(p.clock, p.entry.timestamp_end));
        Ok(!dup)
    }

    fn added(&mut self, stream: StreamId) {
        self.frontier.entry(stream).or_insert(None);
        self.update_watermark();
    }

    fn quiet(&mut self, stream: StreamId, timestamp: u64, clock: Option<&Clock>) {
        self.advance(stream, ns(clock, timestamp));
    }

    fn ended(&mut self, stream: StreamId) {
        self.frontier.remove(&stream);
        self.update_watermark();
    }

    fn restart(&mut self) {
        self.frontier.clear();
        self.sent = None;
    }
}

/// Follows the session on every relay, calling `out` with each packet line in merged order,
/// until every relay ended or was given up, or `stop`.
pub fn tail_all<F>(
    opts: &MultiOptions,
    merge: MergeOptions,
    stop: &AtomicBool,
    mut out: F,
) -> Result<MultiReport, String>
where
    F: FnMut(&TailLine) -> std::io::Result<()>,
{
    opts.check()?;
    let board = opts.board();
    let done = Arc::new(AtomicBool::new(false));
    let reporter = board.report_every("trelay-viewer tail", opts.progress, done.clone());
    let n = opts.relays.len();
    let (tx, rx) = sync_channel::<Msg>(256usize.saturating_mul(n));
    let names: Vec<String> = opts.relays.iter().map(|r| r.name.clone()).collect();
    let mut merger = Merger::new(n, merge.max_held, merge.max_lag, Instant::now());
    let mut failed_output = None;
    std::thread::scope(|scope| {
        for (i, r) in opts.relays.iter().enumerate() {
            let (board, tx) = (&board, tx.clone());
            let o = opts.relay_options(r);
            scope.spawn(move || {
                let sink = TailSink {
                    relay: i,
                    tx: tx.clone(),
                    frontier: BTreeMap::new(),
                    sent: None,
                    last_seq: BTreeMap::new(),
                };
                follow(&o, opts.give_up, stop, board, i, sink);
                let _ = tx.send(Msg::Done(i));
            });
        }
        drop(tx);
        let mut emit = |r: super::merge::Released<PacketLine>| {
            let line = TailLine {
                relay: names.get(r.relay).cloned().unwrap_or_default(),
                line: r.item,
                late: r.late,
            };
            if failed_output.is_none() {
                if let Err(e) = out(&line) {
                    failed_output = Some(e.to_string());
                    stop.store(true, Ordering::Relaxed);
                }
            }
        };
        loop {
            let now = Instant::now();
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Msg::Packet(i, t, line)) => merger.push(i, t, line, now),
                Ok(Msg::Watermark(i, t)) => merger.watermark(i, t, now),
                Ok(Msg::Done(i)) => merger.done(i),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Some(r) = merger.pop(Instant::now()) {
                emit(r);
            }
        }
        while let Some(r) = merger.drain() {
            emit(r);
        }
    });
    done.store(true, Ordering::Relaxed);
    if let Some(r) = reporter {
        let _ = r.join();
    }
    if let Some(e) = failed_output {
        return Err(format!("output: {e}"));
    }
    Ok(MultiReport {
        relays: board.snapshot(),
        late: merger.late,
    })
}
