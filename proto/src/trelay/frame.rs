//! Frames: `kind u8`, `flags u8`, `reserved u16 = 0`, `len u32` (big endian), then `len` bytes.

use crate::codec::{DecodeError, Decoded};
use bytes::BufMut;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 8;

/// Flag: the last frame of its message.
pub const END: u8 = 0x01;

/// Flag on a header frame: the header is complete and `Data` frames follow.
pub const DATA_FOLLOWS: u8 = 0x02;

/// Largest frame payload before the hello exchange settled a maximum.
pub const HELLO_MAX: u32 = 4096;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The hello exchange (first frame each way).
    Hello,
    /// Part of a typed, serde-encoded message.
    Header,
    /// Raw bytes a header announced.
    Data,
    /// An acknowledgement (a whole message).
    Ack,
    /// An error (a whole message); the connection ends after it.
    Error,
    /// Abandon the message in progress.
    Reset,
}

impl Kind {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Kind::Hello => 1,
            Kind::Header => 2,
            Kind::Data => 3,
            Kind::Ack => 4,
            Kind::Error => 5,
            Kind::Reset => 6,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Hello,
            2 => Kind::Header,
            3 => Kind::Data,
            4 => Kind::Ack,
            5 => Kind::Error,
            6 => Kind::Reset,
            _ => return None,
        })
    }
}

/// A decoded frame; the payload borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Its flags ([`END`]).
    pub flags: u8,
    /// Its payload.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Whether it ends its message.
    pub fn is_end(&self) -> bool {
        self.flags & END != 0
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// An unknown frame kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// Flags other than [`END`] and [`DATA_FOLLOWS`], or a non-zero reserved field.
    #[error("frame: reserved bits set (flags {flags:#x}, reserved {reserved:#x})")]
    Reserved {
        /// The flags byte.
        flags: u8,
        /// The reserved field.
        reserved: u16,
    },
    /// The payload is longer than the agreed maximum.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Decodes one frame from `buf`, refusing payloads longer than `max` before reading them.
pub fn decode(buf: &[u8], max: u32) -> Result<Decoded<Frame<'_>>, FrameError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(Decoded::Incomplete { needed: HEADER_LEN });
    };
    let byte = |i: usize| head.get(i).copied().unwrap_or(0);
    let kind = Kind::from_u8(byte(0)).ok_or(FrameError::UnknownKind(byte(0)))?;
    let flags = byte(1);
    let reserved = u16::from_be_bytes([byte(2), byte(3)]);
    if flags & !(END | DATA_FOLLOWS) != 0 || reserved != 0 {
        return Err(FrameError::Reserved { flags, reserved });
    }
    let len = u32::from_be_bytes([byte(4), byte(5), byte(6), byte(7)]);
    if len > max {
        return Err(DecodeError::TooLong {
            field: "frame length",
            value: u64::from(len),
            max: u64::from(max),
        }
        .into());
    }
    let len = len as usize;
    let total = HEADER_LEN.saturating_add(len);
    let Some(payload) = buf.get(HEADER_LEN..total) else {
        return Ok(Decoded::Incomplete { needed: total });
    };
    Ok(Decoded::Done {
        msg: Frame {
            kind,
            flags,
            payload,
        },
        used: total,
    })
}

/// Appends a frame header announcing `len` payload bytes.
pub fn encode_header(kind: Kind, flags: u8, len: u32, buf: &mut impl BufMut) {
    buf.put_u8(kind.to_u8());
    buf.put_u8(flags);
    buf.put_u16(0);
    buf.put_u32(len);
}

/// Appends a whole frame.
pub fn encode(kind: Kind, flags: u8, payload: &[u8], buf: &mut impl BufMut) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    encode_header(kind, flags, len, buf);
    buf.put_slice(payload.get(..len as usize).unwrap_or(payload));
}

/// Appends `payload` split into frames of at most `max` bytes (at least one frame, the last one
/// flagged [`END`] when `end`).
pub fn encode_split(kind: Kind, payload: &[u8], max: u32, end: bool, buf: &mut impl BufMut) {
    let step = (max as usize).max(1);
    let mut chunks = payload.chunks(step).peekable();
    if chunks.peek().is_none() {
        encode(kind, if end { END } else { 0 }, &[], buf);
        return;
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        encode(kind, if last && end { END } else { 0 }, c, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_input_says_how_much_it_needs() {
        let mut b = Vec::new();
        encode(Kind::Data, END, b"abcdef", &mut b);
        assert_eq!(decode(&b[..3], 64), Ok(Decoded::Incomplete { needed: 8 }));
        assert_eq!(decode(&b[..9], 64), Ok(Decoded::Incomplete { needed: 14 }));
    }

    #[test]
    fn oversized_unknown_and_reserved_are_refused_before_reading() {
        let mut b = Vec::new();
        encode_header(Kind::Data, 0, 1 << 30, &mut b);
        assert!(matches!(
            decode(&b, 1 << 20),
            Err(FrameError::Decode(DecodeError::TooLong { .. }))
        ));
        assert_eq!(
            decode(&[9, 0, 0, 0, 0, 0, 0, 0], 64),
            Err(FrameError::UnknownKind(9))
        );
        assert!(matches!(
            decode(&[3, 0x84, 0, 0, 0, 0, 0, 0], 64),
            Err(FrameError::Reserved { .. })
        ));
    }

    fn kinds() -> impl Strategy<Value = Kind> {
        (1u8..=6).prop_map(|k| Kind::from_u8(k).unwrap())
    }

    proptest! {
        #[test]
        fn frames_round_trip(kind in kinds(), end in any::<bool>(),
                             payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = Vec::new();
            encode(kind, if end { END } else { 0 }, &payload, &mut b);
            let Decoded::Done { msg, used } = decode(&b, 300).unwrap() else { panic!() };
            prop_assert_eq!(used, b.len());
            prop_assert_eq!(msg.kind, kind);
            prop_assert_eq!(msg.is_end(), end);
            prop_assert_eq!(msg.payload, &payload[..]);
        }

        #[test]
        fn split_payloads_come_back_whole(payload in proptest::collection::vec(any::<u8>(), 0..1000),
                                          max in 1u32..200) {
            let mut b = Vec::new();
            encode_split(Kind::Data, &payload, max, true, &mut b);
            let mut rest = &b[..];
            let mut back = Vec::new();
            loop {
                let Decoded::Done { msg, used } = decode(rest, max).unwrap() else { panic!() };
                back.extend_from_slice(msg.payload);
                rest = &rest[used..];
                if msg.is_end() { break; }
            }
            prop_assert!(rest.is_empty());
            prop_assert_eq!(back, payload);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes, 32);
        }
    }
}
