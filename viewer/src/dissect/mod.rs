//! A protocol analyser for the three LTTng relay protocols: control (5342), data (5343) and live
//! (5344).
//!
//! Input is either a pcap capture ([`pcap`]: TCP streams reassembled per connection and
//! direction) or the bytes one side of one connection sent (files such as `5342-0.client`). Each
//! message becomes one [`Line`]; replies are decoded with the command sequence of the opposite
//! direction, since their shape depends on the command they answer. Bytes that do not decode
//! (an unknown command, a bad length, a data payload that is not a CTF packet, a message cut
//! short, bytes left over) are a [`DissectError`] naming the stream offset.

pub mod control;
pub mod data;
pub mod format;
pub mod live;
pub mod pcap;
pub mod source;

use std::fmt;

/// The relay ports, in protocol order.
pub const RELAY_PORTS: [u16; 3] = [5342, 5343, 5344];

/// Which side of a connection sent some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer that connected (session daemon, consumer, viewer).
    Client,
    /// The relay.
    Server,
}

impl Direction {
    /// `client` or `server`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Client => "client",
            Direction::Server => "server",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The protocol spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Control port (sessiond/consumerd → relay commands, relay replies).
    Control,
    /// Data port (consumerd → relay packets; the relay never answers).
    Data,
    /// Live port (viewer requests, relay replies).
    Live,
}

impl Protocol {
    /// The protocol of a relay port (by its default number).
    pub fn from_port(port: u16) -> Option<Protocol> {
        match port {
            5342 => Some(Protocol::Control),
            5343 => Some(Protocol::Data),
            5344 => Some(Protocol::Live),
            _ => None,
        }
    }

    /// Short name used on each line.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Control => "control",
            Protocol::Data => "data",
            Protocol::Live => "live",
        }
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Who sent it.
    pub dir: Direction,
    /// Offset of its first byte in the sender's byte stream.
    pub offset: u64,
    /// Its length on the wire.
    pub len: u64,
    /// The message name (`ADD_STREAM`, `GET_PACKET`, `DATA`, ...).
    pub name: String,
    /// Its fields, rendered.
    pub detail: String,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.dir {
            Direction::Client => "->",
            Direction::Server => "<-",
        };
        write!(
            f,
            "{arrow} {} @{} len={} {}",
            self.dir, self.offset, self.len, self.name
        )?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        Ok(())
    }
}

/// Bytes that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset}: {what}")]
pub struct DissectError {
    /// Offset of the first undecodable byte in its stream.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

/// The outcome of dissecting one connection: every message decoded, then the first problem in
/// each direction, if any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dissection {
    /// Decoded messages, each request followed by its reply.
    pub lines: Vec<Line>,
    /// Problems, as `(direction, error)`.
    pub errors: Vec<(Direction, DissectError)>,
}

impl Dissection {
    /// Whether every byte decoded.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Dissects one connection of `proto`. `client` and `server` are the bytes each side sent;
/// `None` when that side is not available (then only the other side's messages are printed, and
/// replies cannot be decoded without the requests).
pub fn dissect(proto: Protocol, client: Option<&[u8]>, server: Option<&[u8]>) -> Dissection {
    match proto {
        Protocol::Control => control::dissect(client, server),
        Protocol::Data => data::dissect(client, server),
        Protocol::Live => live::dissect(client, server),
    }
}

/// Interleaves requests and their replies: `requests[i]` answers to `replies[i]` when
/// `answered[i]` says the request has a reply.
pub(crate) fn interleave(requests: Vec<Line>, answered: &[bool], replies: Vec<Line>) -> Vec<Line> {
    let mut out = Vec::with_capacity(requests.len().saturating_add(replies.len()));
    let mut replies = replies.into_iter();
    for (req, has_reply) in requests.into_iter().zip(answered.iter().copied()) {
        out.push(req);
        if has_reply {
            if let Some(rep) = replies.next() {
                out.push(rep);
            }
        }
    }
    out.extend(replies);
    out
}
