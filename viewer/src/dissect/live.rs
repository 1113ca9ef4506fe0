//! The live port (5344): 16-byte-headed requests from a viewer; the relay answers each one in
//! order, with a reply whose shape depends on the request.

use trelay_proto::codec::Decoded;
use trelay_proto::lttng::live::{decode_reply, decode_request, Command, HEADER_LEN};

use super::control::cut_short;
use super::format::{live_command_name, live_reply, live_request};
use super::{interleave, Direction, DissectError, Dissection, Line};

/// Dissects one live connection (see [`super::dissect`]).
pub fn dissect(client: Option<&[u8]>, server: Option<&[u8]>) -> Dissection {
    let mut out = Dissection::default();
    let Some(client) = client else {
        if server.is_some_and(|s| !s.is_empty()) {
            out.errors.push((
                Direction::Server,
                DissectError {
                    offset: 0,
                    what: "live replies cannot be decoded without the viewer's bytes".into(),
                },
            ));
        }
        return out;
    };
    let mut requests = Vec::new();
    let mut asked: Vec<Command> = Vec::new();
    let mut pos = 0usize;
    while let Some(rest) = client.get(pos..).filter(|r| !r.is_empty()) {
        match decode_request(rest) {
            Ok(Decoded::Done { msg, used }) => {
                let cmd = msg.command();
                requests.push(Line {
                    dir: Direction::Client,
                    offset: pos as u64,
                    len: used as u64,
                    name: live_command_name(cmd).to_string(),
                    detail: live_request(&msg),
                });
                asked.push(cmd);
                pos = pos.saturating_add(used);
            }
            Ok(Decoded::Incomplete { needed }) => {
                out.errors.push((
                    Direction::Client,
                    cut_short(pos, needed.max(HEADER_LEN), rest.len()),
                ));
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
    let answered = vec![true; requests.len()];
    let mut replies = Vec::new();
    if let Some(server) = server {
        let mut pos = 0usize;
        let mut asked = asked.into_iter();
        while let Some(rest) = server.get(pos..).filter(|r| !r.is_empty()) {
            let Some(cmd) = asked.next() else {
                out.errors.push((
                    Direction::Server,
                    DissectError {
                        offset: pos as u64,
                        what: format!("{} bytes answer no request", rest.len()),
                    },
                ));
                break;
            };
            match decode_reply(cmd, rest) {
                Ok(Decoded::Done { msg, used }) => {
                    replies.push(Line {
                        dir: Direction::Server,
                        offset: pos as u64,
                        len: used as u64,
                        name: format!("{}_REPLY", live_command_name(cmd)),
                        detail: live_reply(&msg),
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
                            what: format!("reply to {}: {e}", live_command_name(cmd)),
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
