//! Frames back into messages: header frames are gathered (at most
//! [`super::message::MAX_HEADER`] bytes) until one ends the message ([`super::frame::END`]) or
//! announces its data ([`DATA_FOLLOWS`]); data frames then pass through as slices of the input,
//! never copied, until one carries `END`.

use super::frame::{Frame, Kind, DATA_FOLLOWS};
use super::hello::Hello;
use super::message::{Ack, ErrorFrame, Message, MessageError, MAX_HEADER};
use crate::codec::DecodeError;

/// What a frame completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The peer's hello.
    Hello(Hello),
    /// A header message; `data` says whether `Data` frames follow it.
    Header {
        /// The message.
        msg: Message,
        /// Data frames follow (the header frame did not end the message).
        data: bool,
    },
    /// Bytes of the current message's data; `end` on its last frame.
    Data {
        /// The bytes.
        bytes: &'a [u8],
        /// The message ends here.
        end: bool,
    },
    /// An acknowledgement.
    Ack(Ack),
    /// The peer's error; it closes the connection after it.
    Error(ErrorFrame),
    /// The peer abandoned the message in progress.
    Reset,
}

/// Why a frame does not fit where it came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    /// A frame that cannot come at this point of the exchange.
    #[error("{0}")]
    Unexpected(&'static str),
    /// A malformed payload.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A malformed header message.
    #[error(transparent)]
    Message(#[from] MessageError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the peer's hello.
    Greeting,
    /// Between messages.
    Idle,
    /// Gathering header frames.
    Header,
    /// Passing data frames.
    Data,
}

/// Reassembles one direction of a connection.
#[derive(Debug)]
pub struct Assembler {
    state: State,
    header: Vec<u8>,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Assembler {
    /// Expects the peer's hello first.
    pub fn new() -> Assembler {
        Assembler {
            state: State::Greeting,
            header: Vec::new(),
        }
    }

    /// Whether a message is in progress (a cut now loses it).
    pub fn in_message(&self) -> bool {
        matches!(self.state, State::Header | State::Data)
    }

    /// Takes one decoded frame; `None` while a header needs more frames.
    pub fn feed<'a>(&mut self, f: Frame<'a>) -> Result<Option<Event<'a>>, AssembleError> {
        use AssembleError::Unexpected;
        match (self.state, f.kind) {
            (State::Greeting, Kind::Hello) => {
                self.state = State::Idle;
                Ok(Some(Event::Hello(Hello::decode(f.payload)?)))
            }
            (State::Greeting, _) => Err(Unexpected("the first frame must be a hello")),
            (_, Kind::Hello) => Err(Unexpected("a second hello")),
            (_, Kind::Reset) => {
                self.header.clear();
                self.state = State::Idle;
                Ok(Some(Event::Reset))
            }
            (State::Idle, Kind::Ack) => Ok(Some(Event::Ack(Ack::decode(f.payload)?))),
            (State::Idle, Kind::Error) => Ok(Some(Event::Error(ErrorFrame::decode(f.payload)?))),
            (_, Kind::Ack | Kind::Error) => Err(Unexpected("ack or error inside a message")),
            (State::Idle | State::Header, Kind::Header) => {
                if self.header.len().saturating_add(f.payload.len()) > MAX_HEADER {
                    return Err(MessageError::TooLong(
                        self.header.len().saturating_add(f.payload.len()),
                    )
                    .into());
                }
                self.header.extend_from_slice(f.payload);
                let data = f.flags & DATA_FOLLOWS != 0;
                if !f.is_end() && !data {
                    self.state = State::Header;
                    return Ok(None);
                }
                if f.is_end() && data {
                    return Err(Unexpected(
                        "a header both ending its message and announcing data",
                    ));
                }
                self.state = if data { State::Data } else { State::Idle };
                let msg = Message::from_bytes(&self.header);
                self.header.clear();
                Ok(Some(Event::Header { msg: msg?, data }))
            }
            (State::Data, Kind::Header) => Err(Unexpected("a header inside a message's data")),
            (State::Header, Kind::Data) => Err(Unexpected("data before its header is complete")),
            (State::Data, Kind::Data) => {
                if f.is_end() {
                    self.state = State::Idle;
                }
                Ok(Some(Event::Data {
                    bytes: f.payload,
                    end: f.is_end(),
                }))
            }
            (State::Idle, Kind::Data) => Err(Unexpected("data without a header")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{self, END};
    use super::super::hello::{self, Hello};
    use super::super::message::{PacketMeta, Packets};
    use super::*;
    use crate::Decoded;
    use proptest::prelude::*;

    fn frames(buf: &[u8]) -> Vec<Frame<'_>> {
        let mut rest = buf;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let Decoded::Done { msg, used } = frame::decode(rest, 1 << 20).unwrap() else {
                panic!("incomplete")
            };
            out.push(msg);
            rest = &rest[used..];
        }
        out
    }

    fn hello() -> Vec<u8> {
        let mut b = Vec::new();
        Hello {
            version: hello::VERSION,
            max_frame: 64,
            features: 0,
        }
        .encode(&mut b);
        b
    }

    fn batch(n: u32) -> Message {
        Message::Packets(Packets {
            stream: 3,
            packets: (0..n)
                .map(|i| PacketMeta {
                    seq: u64::from(i),
                    content: 10,
                    padding: 2,
                    index: None,
                })
                .collect(),
        })
    }

    /// A batch message: its header split in frames of `max` bytes, then its data.
    fn encode_batch(m: &Message, data: &[u8], max: u32, buf: &mut Vec<u8>) {
        let h = m.to_bytes().unwrap();
        let chunks: Vec<&[u8]> = h.chunks(max as usize).collect();
        for (i, c) in chunks.iter().enumerate() {
            let flags = if i + 1 == chunks.len() {
                DATA_FOLLOWS
            } else {
                0
            };
            frame::encode(Kind::Header, flags, c, buf);
        }
        frame::encode_split(Kind::Data, data, max, true, buf);
    }

    proptest! {
        #[test]
        fn split_messages_come_back_whole(n in 0u32..40, max in 8u32..100, reset_first in any::<bool>()) {
            let mut b = hello();
            let m = batch(n);
            let data: Vec<u8> = (0..n * 10).map(|i| i as u8).collect();
            if reset_first {
                // A message abandoned half-way, then the real one.
                let h = m.to_bytes().unwrap();
                frame::encode(Kind::Header, 0, &h[..h.len() / 2], &mut b);
                frame::encode(Kind::Reset, END, &[], &mut b);
            }
            encode_batch(&m, &data, max, &mut b);
            let mut a = Assembler::new();
            let mut got_header = None;
            let mut got_data = Vec::new();
            let mut resets = 0;
            for f in frames(&b) {
                match a.feed(f).unwrap() {
                    Some(Event::Header { msg, data: true }) => got_header = Some(msg),
                    Some(Event::Data { bytes, .. }) => got_data.extend_from_slice(bytes),
                    Some(Event::Reset) => resets += 1,
                    _ => {}
                }
            }
            prop_assert_eq!(got_header, Some(m));
            prop_assert_eq!(got_data, data);
            prop_assert_eq!(resets, usize::from(reset_first));
            prop_assert!(!a.in_message());
        }

        #[test]
        fn any_frame_sequence_is_refused_or_taken_without_panic(
            seq in proptest::collection::vec((1u8..=6, 0u8..4, proptest::collection::vec(any::<u8>(), 0..40)), 0..30)
        ) {
            let mut b = hello();
            for (k, flags, payload) in &seq {
                frame::encode(Kind::from_u8(*k).unwrap(), *flags, payload, &mut b);
            }
            let mut rest = &b[..];
            let mut a = Assembler::new();
            while let Ok(Decoded::Done { msg, used }) = frame::decode(rest, 64) {
                if a.feed(msg).is_err() { break; }
                rest = &rest[used..];
            }
        }
    }

    #[test]
    fn out_of_place_frames_are_refused() {
        let mut a = Assembler::new();
        let data = Frame {
            kind: Kind::Data,
            flags: END,
            payload: b"x",
        };
        assert!(a.feed(data).is_err(), "nothing before the hello");
        let mut a = Assembler::new();
        let b = hello();
        a.feed(frames(&b)[0]).unwrap();
        assert!(a.feed(data).is_err(), "data without a header");
        assert!(a.feed(frames(&b)[0]).is_err(), "a second hello");
    }
}
