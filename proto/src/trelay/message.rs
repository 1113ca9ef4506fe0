//! The typed messages of `Header` frames, serde-encoded with postcard, and the `Ack` and `Error`
//! frame payloads.
//!
//! A sender opens a session under an identity of its own choosing (a UUID) that survives
//! reconnects, adds streams under numbers of its own, and sends packets in batches: one
//! [`Packets`] header describes many packets (sequence number, sizes, index fields), and the
//! `Data` frames after it carry their content back to back (padding is not sent: the relay writes
//! the zeros). The relay answers [`Message::StreamAdded`] with where the stream's committed data
//! ends, so a sender that reconnects resends from there and the relay drops what it already has.

use crate::codec::{DecodeError, Reader};
use crate::ctf::format::TraceFormat;
use bytes::BufMut;
use serde::{Deserialize, Serialize};

/// Largest encoded header message accepted (bytes).
pub const MAX_HEADER: usize = 1 << 20;

/// Packets one [`Packets`] message may describe.
pub const MAX_BATCH: usize = 4096;

/// The guarantee a sender waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AckLevel {
    /// The relay has the bytes (in its page cache, merged, not necessarily on disk).
    Received,
    /// The bytes are fdatasynced and indexed under the relay's durability contract.
    Committed,
}

impl AckLevel {
    /// The wire value in an `Ack` frame.
    pub fn to_u8(self) -> u8 {
        match self {
            AckLevel::Received => 1,
            AckLevel::Committed => 2,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<AckLevel> {
        match v {
            1 => Some(AckLevel::Received),
            2 => Some(AckLevel::Committed),
            _ => None,
        }
    }
}

/// Opens (or resumes) a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// The sender's identity for the session, stable across reconnects.
    pub session: [u8; 16],
    /// Session name.
    pub name: String,
    /// The traced host's name.
    pub hostname: String,
    /// Live timer in µs (0: not live).
    pub live_timer_us: u32,
    /// Creation time (seconds since the epoch), names the session directory.
    pub creation_time: u64,
    /// Acknowledgement level wanted.
    pub ack: AckLevel,
}

/// [`Open`] with the session's trace format: what a sender sends instead of `Open` to a relay
/// whose hello announced [`FEATURE_TRACE_FORMAT`](super::hello::FEATURE_TRACE_FORMAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTraced {
    /// Everything `Open` says.
    pub open: Open,
    /// The format of every trace of the session.
    pub trace_format: TraceFormat,
}

/// The relay's answer to [`Open`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// The relay's session id.
    pub session_id: u64,
    /// Session directory under the relay's output root.
    pub path: String,
    /// Whether the session already existed (a resume).
    pub resumed: bool,
}

/// Adds (or finds again, on resume) a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddStream {
    /// The sender's number for it.
    pub stream: u32,
    /// Channel (file) name: `channel0_0`, `metadata`.
    pub channel: String,
    /// Trace directory: `ust/uid/0/64-bit`.
    pub path: String,
    /// Tracefile size limit (0: none).
    pub tracefile_size: u64,
    /// Tracefile count limit (0: none).
    pub tracefile_count: u64,
}

/// Where a stream's committed data ends: resend from here (the relay drops what it already
/// received again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resume {
    /// Sequence number of the first packet the relay has not committed.
    pub next_seq: u64,
    /// Metadata bytes committed (metadata streams).
    pub metadata: u64,
}

/// The index fields of a packet (what an LTTng index entry holds besides its place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IndexFields {
    /// Packet size in bits.
    pub packet_size_bits: u64,
    /// Content size in bits.
    pub content_size_bits: u64,
    /// First timestamp.
    pub timestamp_begin: u64,
    /// Last timestamp.
    pub timestamp_end: u64,
    /// Cumulative events discarded.
    pub events_discarded: u64,
    /// CTF stream class id.
    pub stream_id: u64,
    /// CTF stream instance id.
    pub stream_instance_id: u64,
    /// CTF packet sequence number.
    pub packet_seq_num: u64,
}

impl From<&crate::ctf::index::IndexEntry> for IndexFields {
    /// The fields of an LTTng index entry (its offset is the relay's to choose).
    fn from(e: &crate::ctf::index::IndexEntry) -> IndexFields {
        IndexFields {
            packet_size_bits: e.packet_size,
            content_size_bits: e.content_size,
            timestamp_begin: e.timestamp_begin,
            timestamp_end: e.timestamp_end,
            events_discarded: e.events_discarded,
            stream_id: e.stream_id,
            stream_instance_id: e.stream_instance_id,
            packet_seq_num: e.packet_seq_num,
        }
    }
}

/// One packet of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketMeta {
    /// Its sequence number in the stream (0, 1, 2, … with no gap).
    pub seq: u64,
    /// Content bytes sent in the `Data` frames.
    pub content: u32,
    /// Zero bytes the relay appends after the content.
    pub padding: u32,
    /// Index fields (`None`: no index entry, as for snapshot sessions).
    pub index: Option<IndexFields>,
}

/// A batch of packets of one stream; their content follows in `Data` frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packets {
    /// The sender's stream number.
    pub stream: u32,
    /// The packets, in sequence order.
    pub packets: Vec<PacketMeta>,
}

impl Packets {
    /// Content bytes the `Data` frames carry in all.
    pub fn content_len(&self) -> Option<u64> {
        self.packets
            .iter()
            .try_fold(0u64, |n, p| n.checked_add(u64::from(p.content)))
    }
}

/// A header message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Sender: open or resume a session (first message).
    Open(Open),
    /// Relay: the session.
    Opened(Opened),
    /// Sender: add a stream.
    AddStream(AddStream),
    /// Relay: the stream, and where to resume it.
    StreamAdded {
        /// The sender's stream number.
        stream: u32,
        /// What the relay has committed.
        resume: Resume,
    },
    /// Sender: a batch of packets (content in `Data` frames).
    Packets(Packets),
    /// Sender: `len` metadata bytes for stream `stream` at `offset` (content in `Data` frames).
    Metadata {
        /// The sender's stream number.
        stream: u32,
        /// Offset of these bytes in the metadata stream.
        offset: u64,
        /// Bytes in the `Data` frames.
        len: u32,
    },
    /// Sender: every stream added so far may be shown to live viewers.
    StreamsSent,
    /// Sender: live beacon — stream `stream` has nothing until `timestamp_end`.
    Beacon {
        /// The sender's stream number.
        stream: u32,
        /// The stream is idle up to this clock value.
        timestamp_end: u64,
        /// CTF stream class id (for viewers' INACTIVE replies).
        stream_id: u64,
    },
    /// Sender: commit everything sent so far, acknowledge at the committed level.
    Commit,
    /// Sender: the stream ends after packet `last_seq` (`None`: no packet).
    CloseStream {
        /// The sender's stream number.
        stream: u32,
        /// Its last packet.
        last_seq: Option<u64>,
    },
    /// Sender: the session ends once everything is committed.
    Close,
    /// Sender: open or resume a session of a given trace format (first message), to a relay
    /// that announced the trace-format feature. Added after every other variant, so the
    /// encodings of the others are unchanged.
    OpenTraced(OpenTraced),
}

/// Why encoding or decoding a header failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not a valid encoding of a [`Message`].
    #[error("header message: {0}")]
    Invalid(String),
    /// Too large.
    #[error("header message of {0} bytes exceeds {MAX_HEADER}")]
    TooLong(usize),
}

impl Message {
    /// Encodes the message (postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>, MessageError> {
        let v = postcard::to_allocvec(self).map_err(|e| MessageError::Invalid(e.to_string()))?;
        if v.len() > MAX_HEADER {
            return Err(MessageError::TooLong(v.len()));
        }
        Ok(v)
    }

    /// Decodes a message from the concatenated payloads of its `Header` frames.
    pub fn from_bytes(bytes: &[u8]) -> Result<Message, MessageError> {
        if bytes.len() > MAX_HEADER {
            return Err(MessageError::TooLong(bytes.len()));
        }
        let m: Message =
            postcard::from_bytes(bytes).map_err(|e| MessageError::Invalid(e.to_string()))?;
        if let Message::Packets(p) = &m {
            if p.packets.len() > MAX_BATCH {
                return Err(MessageError::Invalid(format!(
                    "{} packets in one batch (at most {MAX_BATCH})",
                    p.packets.len()
                )));
            }
        }
        Ok(m)
    }
}

/// An `Ack` frame: every message up to number `upto` (counted from 1 on this connection, acks
/// and errors excluded) reached `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The level reached.
    pub level: AckLevel,
    /// The last message covered.
    pub upto: u64,
}

impl Ack {
    /// Bytes of the payload.
    pub const LEN: usize = 9;

    /// Appends the payload.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.level.to_u8());
        buf.put_u64(self.upto);
    }

    /// Decodes the payload.
    pub fn decode(payload: &[u8]) -> Result<Ack, DecodeError> {
        let bad = DecodeError::BadLength {
            what: "ack",
            expected: Self::LEN as u64,
            actual: payload.len() as u64,
        };
        if payload.len() != Self::LEN {
            return Err(bad);
        }
        let mut r = Reader::new(payload);
        match (r.u8().and_then(AckLevel::from_u8), r.u64()) {
            (Some(level), Some(upto)) => Ok(Ack { level, upto }),
            _ => Err(bad),
        }
    }
}

/// An `Error` frame: a code and a human-readable reason; the connection ends after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// A code ([`ErrorFrame::PROTOCOL`], …).
    pub code: u32,
    /// Why.
    pub message: String,
}

impl ErrorFrame {
    /// The peer broke the protocol.
    pub const PROTOCOL: u32 = 1;
    /// The relay refused the request (names, limits, unknown stream).
    pub const REFUSED: u32 = 2;
    /// The relay could not store the data (its session failed).
    pub const STORAGE: u32 = 3;

    /// Appends the payload (the message cut to 1000 bytes).
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.code);
        let mut end = self.message.len().min(1000);
        while !self.message.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        buf.put_slice(self.message.get(..end).unwrap_or_default().as_bytes());
    }

    /// Decodes the payload.
    pub fn decode(payload: &[u8]) -> Result<ErrorFrame, DecodeError> {
        let mut r = Reader::new(payload);
        let code = r.u32().ok_or(DecodeError::BadLength {
            what: "error",
            expected: 4,
            actual: payload.len() as u64,
        })?;
        Ok(ErrorFrame {
            code,
            message: String::from_utf8_lossy(r.rest()).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index() -> impl Strategy<Value = Option<IndexFields>> {
        proptest::option::of(any::<[u64; 8]>().prop_map(|v| IndexFields {
            packet_size_bits: v[0],
            content_size_bits: v[1],
            timestamp_begin: v[2],
            timestamp_end: v[3],
            events_discarded: v[4],
            stream_id: v[5],
            stream_instance_id: v[6],
            packet_seq_num: v[7],
        }))
    }

    fn messages() -> impl Strategy<Value = Message> {
        let packets = proptest::collection::vec(
            (any::<u64>(), any::<u32>(), any::<u32>(), index()).prop_map(
                |(seq, content, padding, index)| PacketMeta {
                    seq,
                    content,
                    padding,
                    index,
                },
            ),
            0..20,
        );
        prop_oneof![
            (
                any::<[u8; 16]>(),
                ".{0,20}",
                ".{0,20}",
                any::<u32>(),
                any::<u64>()
            )
                .prop_map(|(session, name, hostname, live_timer_us, creation_time)| {
                    Message::Open(Open {
                        session,
                        name,
                        hostname,
                        live_timer_us,
                        creation_time,
                        ack: AckLevel::Committed,
                    })
                }),
            (any::<u32>(), packets)
                .prop_map(|(stream, packets)| Message::Packets(Packets { stream, packets })),
            (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(stream, offset, len)| {
                Message::Metadata {
                    stream,
                    offset,
                    len,
                }
            }),
            (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(stream, next_seq, metadata)| {
                Message::StreamAdded {
                    stream,
                    resume: Resume { next_seq, metadata },
                }
            }),
            Just(Message::Commit),
            Just(Message::Close),
            (any::<[u8; 16]>(), ".{0,20}", any::<u32>(), any::<bool>()).prop_map(
                |(session, name, live_timer_us, ctf2)| {
                    Message::OpenTraced(OpenTraced {
                        open: Open {
                            session,
                            name: name.clone(),
                            hostname: name,
                            live_timer_us,
                            creation_time: 7,
                            ack: AckLevel::Received,
                        },
                        trace_format: if ctf2 {
                            TraceFormat::Ctf2
                        } else {
                            TraceFormat::Ctf1_8
                        },
                    })
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn messages_round_trip(m in messages()) {
            let b = m.to_bytes().unwrap();
            prop_assert_eq!(Message::from_bytes(&b).unwrap(), m);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::from_bytes(&b);
            let _ = Ack::decode(&b);
            let _ = ErrorFrame::decode(&b);
        }

        #[test]
        fn acks_round_trip(upto in any::<u64>(), committed in any::<bool>()) {
            let level = if committed { AckLevel::Committed } else { AckLevel::Received };
            let mut b = Vec::new();
            Ack { level, upto }.encode(&mut b);
            prop_assert_eq!(Ack::decode(&b).unwrap(), Ack { level, upto });
        }
    }

    /// The variants that existed before `OpenTraced` keep their encodings (an older relay
    /// decodes them as before), `OpenTraced` encodes as `Open` behind a new variant index with
    /// the format after it, and a format value out of range is refused.
    #[test]
    fn open_traced_extends_the_encoding_compatibly() {
        let open = Open {
            session: [9; 16],
            name: "s".into(),
            hostname: "h".into(),
            live_timer_us: 0,
            creation_time: 1,
            ack: AckLevel::Committed,
        };
        let plain = Message::Open(open.clone()).to_bytes().unwrap();
        assert_eq!(plain[0], 0, "Open is variant 0");
        assert_eq!(Message::Close.to_bytes().unwrap(), [10]);
        let traced = Message::OpenTraced(OpenTraced {
            open,
            trace_format: TraceFormat::Ctf2,
        })
        .to_bytes()
        .unwrap();
        assert_eq!(traced[0], 11, "OpenTraced comes after every older variant");
        assert_eq!(&traced[1..traced.len() - 1], &plain[1..]);
        assert_eq!(traced.last(), Some(&1), "CTF 2 is format 1");
        let mut bad = traced.clone();
        *bad.last_mut().unwrap() = 2;
        assert!(Message::from_bytes(&bad).is_err());
    }

    #[test]
    fn batches_over_the_cap_are_refused() {
        let m = Message::Packets(Packets {
            stream: 1,
            packets: vec![
                PacketMeta {
                    seq: 0,
                    content: 1,
                    padding: 0,
                    index: None
                };
                MAX_BATCH + 1
            ],
        });
        let b = m.to_bytes().unwrap();
        assert!(Message::from_bytes(&b).is_err());
    }
}
