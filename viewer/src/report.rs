//! One line per packet, shared by `index`, `live` and `tail`: a human summary or a JSON object.

use serde::Serialize;
use trelay_proto::ctf::index::IndexEntry;

use crate::tsdl::Clock;

/// Output format of per-packet lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// `key=value` text.
    #[default]
    Summary,
    /// One JSON object per line.
    Json,
}

/// What is known about one packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketLine {
    /// The stream (data file path relative to the trace root, or the live stream's path).
    pub stream: String,
    /// Byte offset in the data file (absent for a lost-packet marker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Packet size in bytes, padding included.
    pub size: u64,
    /// Content size in bytes.
    pub content: u64,
    /// CTF packet sequence number (absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Timestamp of the first event, clock cycles.
    pub begin: u64,
    /// Timestamp of the last event, clock cycles.
    pub end: u64,
    /// `begin` as RFC 3339, when the clock is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_time: Option<String>,
    /// `end` as RFC 3339, when the clock is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Cumulative events discarded by the tracer on this stream.
    pub discarded: u64,
    /// Events discarded since the previous packet of this stream (when it is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discarded_delta: Option<u64>,
    /// Whether the entry is a lost-packet marker (offset all ones).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

fn bits_to_bytes(bits: u64) -> u64 {
    bits / 8
}

impl PacketLine {
    /// The line for an index entry of `stream`. `prev_discarded` is the previous packet's
    /// cumulative discarded count, if known.
    pub fn from_entry(
        stream: &str,
        e: &IndexEntry,
        clock: Option<&Clock>,
        prev_discarded: Option<u64>,
    ) -> PacketLine {
        let lost = e.offset == u64::MAX;
        PacketLine {
            stream: stream.to_owned(),
            offset: (!lost).then_some(e.offset),
            size: bits_to_bytes(e.packet_size),
            content: bits_to_bytes(e.content_size),
            seq: (e.packet_seq_num != u64::MAX).then_some(e.packet_seq_num),
            begin: e.timestamp_begin,
            end: e.timestamp_end,
            begin_time: clock.map(|c| c.format(e.timestamp_begin)),
            end_time: clock.map(|c| c.format(e.timestamp_end)),
            discarded: e.events_discarded,
            discarded_delta: prev_discarded.map(|p| e.events_discarded.saturating_sub(p)),
            lost,
        }
    }

    /// The line in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).unwrap_or_default(),
            Format::Summary => self.summary(),
        }
    }

    /// `key=value` text.
    pub fn summary(&self) -> String {
        let mut s = self.stream.clone();
        if self.lost {
            s.push_str(" LOST");
        }
        if let Some(seq) = self.seq {
            s.push_str(&format!(" seq={seq}"));
        }
        if let Some(o) = self.offset {
            s.push_str(&format!(" offset={o}"));
        }
        s.push_str(&format!(
            " size={} content={} begin={} end={}",
            self.size, self.content, self.begin, self.end
        ));
        if let (Some(b), Some(e)) = (&self.begin_time, &self.end_time) {
            s.push_str(&format!(" [{b} .. {e}]"));
        }
        s.push_str(&format!(" discarded={}", self.discarded));
        if let Some(d) = self.discarded_delta.filter(|&d| d > 0) {
            s.push_str(&format!(" (+{d})"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_json() {
        let e = IndexEntry {
            offset: 4096,
            packet_size: 8 * 16384,
            content_size: 8 * 1000,
            timestamp_begin: 1,
            timestamp_end: 2,
            events_discarded: 7,
            stream_id: 0,
            stream_instance_id: 1,
            packet_seq_num: 3,
        };
        let c = Clock {
            name: "m".into(),
            freq: 1_000_000_000,
            offset_s: 0,
            offset: 0,
        };
        let l = PacketLine::from_entry("ch_0", &e, Some(&c), Some(5));
        assert_eq!(
            l.summary(),
            "ch_0 seq=3 offset=4096 size=16384 content=1000 begin=1 end=2 \
             [1970-01-01T00:00:00.000000001Z .. 1970-01-01T00:00:00.000000002Z] discarded=7 (+2)"
        );
        let v: serde_json::Value = serde_json::from_str(&l.render(Format::Json)).unwrap();
        assert_eq!(v["offset"], 4096);
        assert_eq!(v["discarded_delta"], 2);
        assert!(v.get("lost").is_none());
        let lost = PacketLine::from_entry(
            "ch_0",
            &IndexEntry {
                offset: u64::MAX,
                ..e
            },
            None,
            None,
        );
        assert!(lost.summary().starts_with("ch_0 LOST seq=3 size="));
    }
}
