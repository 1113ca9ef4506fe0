//! The hello frame, first each way: `version u16`, `max_frame u32`, `features u64` (big endian).

use super::frame::{self, Kind};
use crate::codec::{DecodeError, Reader};
use bytes::BufMut;

/// Protocol version spoken here.
pub const VERSION: u16 = 1;

/// Bytes of a hello payload.
pub const LEN: usize = 14;

/// Feature bit: the relay can commit on request and acknowledge at the committed level.
pub const FEATURE_COMMITTED_ACKS: u64 = 1;

/// Feature bit: the relay understands [`Message::OpenTraced`](super::message::Message), the
/// open that carries the session's trace format (CTF 1.8 or CTF 2). A sender sends it only to
/// a relay announcing this bit; to others it sends the plain `Open`, which means CTF 1.8.
pub const FEATURE_TRACE_FORMAT: u64 = 1 << 1;

/// What an end offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version.
    pub version: u16,
    /// Largest frame payload it accepts.
    pub max_frame: u32,
    /// Feature bits.
    pub features: u64,
}

impl Hello {
    /// Appends the hello frame.
    pub fn encode(&self, buf: &mut impl BufMut) {
        frame::encode_header(Kind::Hello, frame::END, LEN as u32, buf);
        buf.put_u16(self.version);
        buf.put_u32(self.max_frame);
        buf.put_u64(self.features);
    }

    /// Decodes a hello frame's payload.
    pub fn decode(payload: &[u8]) -> Result<Hello, DecodeError> {
        if payload.len() != LEN {
            return Err(DecodeError::BadLength {
                what: "hello",
                expected: LEN as u64,
                actual: payload.len() as u64,
            });
        }
        let mut r = Reader::new(payload);
        let short = DecodeError::BadLength {
            what: "hello",
            expected: LEN as u64,
            actual: payload.len() as u64,
        };
        let version = r.array::<2>().map(u16::from_be_bytes);
        match (version, r.u32(), r.u64()) {
            (Some(version), Some(max_frame), Some(features)) => Ok(Hello {
                version,
                max_frame,
                features,
            }),
            _ => Err(short),
        }
    }

    /// The frame size both ends use: the smaller maximum, at least [`frame::HELLO_MAX`].
    pub fn agree(&self, other: &Hello) -> u32 {
        self.max_frame.min(other.max_frame).max(frame::HELLO_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decoded;

    #[test]
    fn hello_round_trips_and_agrees_on_the_smaller_frame() {
        let h = Hello {
            version: VERSION,
            max_frame: 1 << 20,
            features: FEATURE_COMMITTED_ACKS,
        };
        let mut b = Vec::new();
        h.encode(&mut b);
        let Ok(Decoded::Done { msg, used }) = frame::decode(&b, frame::HELLO_MAX) else {
            panic!()
        };
        assert_eq!(used, b.len());
        assert_eq!(msg.kind, Kind::Hello);
        assert_eq!(Hello::decode(msg.payload).unwrap(), h);
        let small = Hello {
            max_frame: 64 << 10,
            ..h
        };
        assert_eq!(h.agree(&small), 64 << 10);
        let tiny = Hello { max_frame: 1, ..h };
        assert_eq!(h.agree(&tiny), frame::HELLO_MAX);
        assert!(Hello::decode(&[0; 3]).is_err());
    }
}
