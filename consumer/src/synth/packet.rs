//! Synthetic CTF data packets in LTTng's layout, for the synthetic trace of [`super::tsdl`].
//!
//! A packet is the 84-byte header and context of a 64-bit LTTng tracer followed by `n` identical
//! 64-byte events and zero padding up to the packet size. Events carry a 32-bit timestamp (the
//! low bits of the clock), so the event bytes never change from one packet to the next: packet
//! `k` of a stream spans clock values `[BASE + k·2³², BASE + k·2³² + n·STEP]`, whose low 32 bits
//! are the same in every packet. Producing a packet therefore only rewrites its 84-byte header:
//! the generator hands out a borrowed slice of a buffer built once per stream.

use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::ctf::packet::{ByteOrder, PacketHeader, WordSize};

/// Size of an LTTng 64-bit packet header plus context.
pub const HEADER_LEN: usize = 84;
/// Size of one synthetic event.
pub const EVENT_LEN: usize = 64;
/// Clock value of the first packet's start (low 32 bits zero).
pub const BASE_TS: u64 = 1 << 32;
/// Clock cycles between two events of a packet.
pub const STEP: u64 = 1000;
/// Smallest packet the generator makes (header plus one event).
pub const MIN_PACKET_LEN: usize = HEADER_LEN + EVENT_LEN;
/// Largest packet the generator makes.
pub const MAX_PACKET_LEN: usize = 64 << 20;

/// Text of every event's `msg` field (without its NUL).
const MSG: &[u8; 49] = b"trelay-consumer synthetic event, fixed size text.";

/// Why a generator cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    /// The packet size is outside the supported range.
    #[error("packet size {0} is outside {MIN_PACKET_LEN}..={MAX_PACKET_LEN} bytes")]
    PacketSize(usize),
}

/// One packet handed out by a [`StreamGenerator`].
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Header, context and events (what a UST consumer sends as the data payload).
    pub content: &'a [u8],
    /// Zero bytes completing the packet.
    pub padding: u32,
    /// The packet's index fields (`offset` is 0: the relay computes it).
    pub index: IndexEntry,
}

/// Generates the packets of one synthetic stream.
#[derive(Debug, Clone)]
pub struct StreamGenerator {
    uuid: [u8; 16],
    instance: u32,
    packet_len: usize,
    events: u32,
    buf: Vec<u8>,
    seq: u64,
}

impl StreamGenerator {
    /// A generator for stream instance `instance` (also its `cpu_id` and the `instance` field of
    /// its events) of the trace `uuid`, making packets of `packet_len` bytes.
    pub fn new(uuid: [u8; 16], instance: u32, packet_len: usize) -> Result<Self, SynthError> {
        if !(MIN_PACKET_LEN..=MAX_PACKET_LEN).contains(&packet_len) {
            return Err(SynthError::PacketSize(packet_len));
        }
        let events = (packet_len - HEADER_LEN) / EVENT_LEN;
        let mut buf = vec![0u8; HEADER_LEN];
        buf.reserve(events * EVENT_LEN);
        for i in 0..events {
            let ts = (i as u64 * STEP) as u32;
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&ts.to_le_bytes());
            buf.extend_from_slice(&instance.to_le_bytes());
            buf.extend_from_slice(&(i as u32).to_le_bytes());
            buf.extend_from_slice(MSG);
            buf.push(0);
        }
        Ok(StreamGenerator {
            uuid,
            instance,
            packet_len,
            events: events as u32,
            buf,
            seq: 0,
        })
    }

    /// Events in every packet.
    pub fn events_per_packet(&self) -> u32 {
        self.events
    }

    /// Packets generated so far.
    pub fn packets(&self) -> u64 {
        self.seq
    }

    /// The next packet (sequence number [`Self::packets`]).
    pub fn next_packet(&mut self) -> Packet<'_> {
        let content_len = self.buf.len();
        let begin = BASE_TS.wrapping_add(self.seq.wrapping_shl(32));
        let header = PacketHeader {
            byte_order: ByteOrder::Little,
            uuid: self.uuid,
            stream_id: 0,
            stream_instance_id: u64::from(self.instance),
            timestamp_begin: begin,
            timestamp_end: begin + u64::from(self.events) * STEP,
            content_size: content_len as u64 * 8,
            packet_size: self.packet_len as u64 * 8,
            packet_seq_num: self.seq,
            events_discarded: 0,
            cpu_id: self.instance,
        };
        let mut head: &mut [u8] = &mut self.buf[..HEADER_LEN];
        header.encode(WordSize::Bits64, &mut head);
        self.seq += 1;
        Packet {
            content: &self.buf,
            padding: (self.packet_len - content_len) as u32,
            index: IndexEntry {
                offset: 0,
                packet_size: header.packet_size,
                content_size: header.content_size,
                timestamp_begin: header.timestamp_begin,
                timestamp_end: header.timestamp_end,
                events_discarded: 0,
                stream_id: 0,
                stream_instance_id: header.stream_instance_id,
                packet_seq_num: header.packet_seq_num,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use trelay_proto::Decoded;

    #[test]
    fn refuses_bad_sizes() {
        assert!(StreamGenerator::new([0; 16], 0, MIN_PACKET_LEN - 1).is_err());
        assert!(StreamGenerator::new([0; 16], 0, MAX_PACKET_LEN + 1).is_err());
        assert!(StreamGenerator::new([0; 16], 0, MIN_PACKET_LEN).is_ok());
    }

    proptest! {
        #[test]
        fn packets_decode_as_lttng_headers(len in MIN_PACKET_LEN..300_000usize, inst in 0u32..64, n in 1usize..4) {
            let mut g = StreamGenerator::new([7; 16], inst, len).unwrap();
            let mut prev_end = 0;
            for k in 0..n {
                let p = g.next_packet();
                prop_assert_eq!(p.content.len() + p.padding as usize, len);
                prop_assert!(p.content.len() <= len);
                let Decoded::Done { msg: h, used } = PacketHeader::decode(p.content, WordSize::Bits64).unwrap() else {
                    panic!("incomplete header");
                };
                prop_assert_eq!(used, HEADER_LEN);
                prop_assert_eq!(h.packet_seq_num, k as u64);
                prop_assert_eq!(h.packet_size, len as u64 * 8);
                prop_assert_eq!(h.content_size, p.content.len() as u64 * 8);
                prop_assert_eq!(h.stream_instance_id, u64::from(inst));
                prop_assert_eq!(h.uuid, [7; 16]);
                prop_assert!(h.timestamp_begin >= prev_end);
                prop_assert!(h.timestamp_end > h.timestamp_begin);
                prop_assert_eq!(p.index.timestamp_end, h.timestamp_end);
                prev_end = h.timestamp_end;
                // Every event sits after the header, with its timestamp's low bits in order.
                let events = (p.content.len() - HEADER_LEN) / EVENT_LEN;
                prop_assert_eq!(events as u32, g.events_per_packet());
            }
        }
    }
}
