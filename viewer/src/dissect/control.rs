//! The control port (5342): framed commands from the session or consumer daemon, headerless
//! replies from the relay whose shape follows from the command they answer and the protocol
//! minor both sides settled on with VERSION.

use trelay_proto::codec::Decoded;
use trelay_proto::lttng::relayd::{
    decode_framed, decode_reply, Command, CommandKind, ProtocolMinor, Reply, RELAYD_MINOR,
};

use super::format::{control_command, control_reply};
use super::{interleave, Direction, DissectError, Dissection, Line};

/// Dissects one control connection (see [`super::dissect`]).
pub fn dissect(client: Option<&[u8]>, server: Option<&[u8]>) -> Dissection {
    let mut out = Dissection::default();
    let Some(client) = client else {
        if server.is_some_and(|s| !s.is_empty()) {
            out.errors.push((
                Direction::Server,
                DissectError {
                    offset: 0,
                    what: "control replies cannot be decoded without the client's bytes".into(),
                },
            ));
        }
        return out;
    };
    // The relay's own minor, from its VERSION reply when it is at hand.
    let relay_minor = server
        .and_then(|s| decode_reply(CommandKind::Version, ProtocolMinor(0), s).ok())
        .and_then(|d| d.message())
        .and_then(|r| match r {
            Reply::Version(v) => Some(v.minor),
            _ => None,
        })
        .unwrap_or(RELAYD_MINOR);

    let mut requests = Vec::new();
    let mut asked: Vec<(CommandKind, ProtocolMinor)> = Vec::new();
    let mut answered = Vec::new();
    let mut minor = ProtocolMinor(0);
    let mut pos = 0usize;
    while let Some(rest) = client.get(pos..).filter(|r| !r.is_empty()) {
        match decode_framed(rest, minor) {
            Ok(Decoded::Done { msg, used }) => {
                let kind = msg.kind();
                requests.push(Line {
                    dir: Direction::Client,
                    offset: pos as u64,
                    len: used as u64,
                    name: kind.name().to_string(),
                    detail: control_command(&msg),
                });
                answered.push(kind.expects_reply());
                if kind.expects_reply() {
                    asked.push((kind, minor));
                }
                if let Command::Version(v) = &msg {
                    minor = ProtocolMinor::negotiate(v.minor, relay_minor);
                }
                pos = pos.saturating_add(used);
            }
            Ok(Decoded::Incomplete { needed }) => {
                out.errors
                    .push((Direction::Client, cut_short(pos, needed, rest.len())));
                break;
            }
            Err(e) => {
                out.errors.push((
                    Direction::Client,
                    DissectError {
                        offset: pos as u64,
                        what: e.to_string(),
                    },
                ));
                break;
            }
        }
    }

    let mut replies = Vec::new();
    if let Some(server) = server {
        let mut pos = 0usize;
        let mut asked = asked.into_iter();
        while let Some(rest) = server.get(pos..).filter(|r| !r.is_empty()) {
            let Some((kind, minor)) = asked.next() else {
                out.errors.push((
                    Direction::Server,
                    DissectError {
                        offset: pos as u64,
                        what: format!("{} bytes answer no command", rest.len()),
                    },
                ));
                break;
            };
            match decode_reply(kind, minor, rest) {
                Ok(Decoded::Done { msg, used }) => {
                    replies.push(Line {
                        dir: Direction::Server,
                        offset: pos as u64,
                        len: used as u64,
                        name: format!("{}_REPLY", kind.name()),
                        detail: control_reply(&msg),
                    });
                    pos = pos.saturating_add(used);
                }
                Ok(Decoded::Incomplete { needed }) => {
                    out.errors
                        .push((Direction::Server, cut_short(pos, needed, rest.len())));
                    break;
                }
                Err(e) => {
                    out.errors.push((
                        Direction::Server,
                        DissectError {
                            offset: pos as u64,
                            what: format!("reply to {}: {e}", kind.name()),
                        },
                    ));
                    break;
                }
            }
        }
    }
    out.lines = interleave(requests, &answered, replies);
    out
}

/// A message the stream ends in the middle of.
pub(crate) fn cut_short(pos: usize, needed: usize, have: usize) -> DissectError {
    DissectError {
        offset: pos as u64,
        what: format!("message cut short: needs {needed} bytes, {have} left"),
    }
}
