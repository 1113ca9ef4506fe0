//! What the viewer knows of a trace's metadata, whatever its format: its clocks, its environment
//! and how many stream classes it declares. [`crate::tsdl`] reads it from CTF 1.8 TSDL and
//! [`crate::ctf2`] from CTF 2 JSON records; [`Metadata::from_file_bytes`] (in `tsdl`) picks by the
//! file's first byte.

use std::collections::BTreeMap;

use trelay_proto::ctf::format::TraceFormat;
use trelay_proto::ctf::packet::WordSize;

/// A clock declared in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// `name`.
    pub name: String,
    /// `freq`, in Hz (1 GHz when absent).
    pub freq: u64,
    /// `offset_s`: seconds from the Epoch to the clock's origin (0 when absent).
    pub offset_s: i64,
    /// `offset`: cycles from `offset_s` to the clock's origin (0 when absent).
    pub offset: i64,
}

/// What the viewer extracts from a trace's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// The CTF version the metadata is written in.
    pub format: TraceFormat,
    /// Every `clock` block, in order.
    pub clocks: Vec<Clock>,
    /// The `env` block's assignments (values as written, strings unquoted).
    pub env: BTreeMap<String, String>,
    /// Top-level `stream` blocks read whole. TSDL declares a clock before the types that map
    /// to it, so once a stream class is known the clock is known too (or there is none).
    pub stream_classes: usize,
}

/// Why metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A packetized metadata file with a damaged packet.
    #[error("metadata packet: {0}")]
    Packet(#[from] trelay_proto::DecodeError),
    /// The text is not UTF-8.
    #[error("metadata text is not UTF-8")]
    NotUtf8,
    /// A CTF 2 metadata record that is not valid JSON or not a valid record.
    #[error("CTF 2 metadata record {record}: {reason}")]
    Json {
        /// The record's position in the sequence (0 for the first).
        record: usize,
        /// What is wrong.
        reason: String,
    },
    /// A `clock` block's integer value could not be read.
    #[error("clock {clock:?}: {key} = {value:?} is not an integer")]
    BadClockValue {
        /// The clock's name (or empty).
        clock: String,
        /// The key.
        key: String,
        /// The value text.
        value: String,
    },
}

impl Metadata {
    /// The clock timestamps refer to: the only one, else the one named `monotonic`, else the
    /// first.
    pub fn clock(&self) -> Option<&Clock> {
        if self.clocks.len() == 1 {
            return self.clocks.first();
        }
        self.clocks
            .iter()
            .find(|c| c.name == "monotonic")
            .or(self.clocks.first())
    }

    /// Whether what was read is enough to place packets in time: a clock was read, or a stream
    /// class was read without any clock before it (a trace whose times are raw cycles).
    pub fn timing_known(&self) -> bool {
        !self.clocks.is_empty() || self.stream_classes > 0
    }

    /// The tracer's word size (`env.architecture_bit_width`; 64 when absent).
    pub fn word_size(&self) -> WordSize {
        match self.env.get("architecture_bit_width").map(String::as_str) {
            Some("32") => WordSize::Bits32,
            _ => WordSize::Bits64,
        }
    }
}
