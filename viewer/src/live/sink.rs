//! What the live protocol loop ([`super::client`]) hands on: metadata bytes, packets, and the
//! streams' life (attached, quiet up to a beacon, ended), to a mirror on disk or a merge.

use std::path::Path;

use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::StreamId;

use super::LiveError;
use crate::tsdl::Clock;

/// One packet received, as handed to a [`Sink`].
#[derive(Debug)]
pub struct Packet<'a> {
    /// The relay's stream id (valid for this connection only).
    pub stream: StreamId,
    /// The trace folder, relative (the relay's `path_name`, validated).
    pub dir: &'a Path,
    /// The channel (data file) name, one validated path component.
    pub channel: &'a str,
    /// `dir/channel`, for lines.
    pub label: &'a str,
    /// The packet's bytes.
    pub bytes: &'a [u8],
    /// Its index entry (offset in the relay's file; sequence number from the packet header).
    pub entry: IndexEntry,
    /// The trace's clock, when its metadata declares one.
    pub clock: Option<&'a Clock>,
    /// The stream's previous cumulative discarded count, if a packet came before.
    pub prev_discarded: Option<u64>,
}

/// Where received metadata and packets go.
pub trait Sink {
    /// New metadata bytes of the trace in `dir` (relative), from `offset` in its metadata.
    fn metadata(&mut self, dir: &Path, offset: u64, data: &[u8]) -> Result<(), LiveError>;
    /// A packet; `Ok(false)` when it was skipped as one already received (after a reconnect).
    fn packet(&mut self, p: &Packet<'_>) -> Result<bool, LiveError>;
    /// A data stream was attached.
    fn added(&mut self, _stream: StreamId) {}
    /// The stream has nothing before `timestamp` (an inactivity beacon).
    fn quiet(&mut self, _stream: StreamId, _timestamp: u64, _clock: Option<&Clock>) {}
    /// The stream ended.
    fn ended(&mut self, _stream: StreamId) {}
    /// A new connection begins (stream ids of the previous one mean nothing any more).
    fn restart(&mut self) {}
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn metadata(&mut self, dir: &Path, offset: u64, data: &[u8]) -> Result<(), LiveError> {
        (**self).metadata(dir, offset, data)
    }
    fn packet(&mut self, p: &Packet<'_>) -> Result<bool, LiveError> {
        (**self).packet(p)
    }
    fn added(&mut self, stream: StreamId) {
        (**self).added(stream)
    }
    fn quiet(&mut self, stream: StreamId, timestamp: u64, clock: Option<&Clock>) {
        (**self).quiet(stream, timestamp, clock)
    }
    fn ended(&mut self, stream: StreamId) {
        (**self).ended(stream)
    }
    fn restart(&mut self) {
        (**self).restart()
    }
}
