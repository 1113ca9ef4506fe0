//! The relay's replies on a request/reply port (control, live), matched in order to the
//! requests that expect one. After a reply that does not decode, the rest of the replies are
//! not trusted and no longer decoded.

use std::fmt::Display;

use trelay_proto::Decoded;

use super::{Side, Transcript};

/// The reply side of a connection: its bytes (when captured) and how far they are decoded.
pub(super) struct Replies<'a> {
    server: Option<&'a [u8]>,
    pos: usize,
    ok: bool,
}

impl<'a> Replies<'a> {
    /// The replies in `server`, none decoded yet.
    pub(super) fn new(server: Option<&'a [u8]>) -> Self {
        Replies {
            server,
            pos: 0,
            ok: server.is_some(),
        }
    }

    /// Decodes the next reply with `decode`: the reply and its offset, or `None` when there is
    /// none to decode (no reply bytes, the capture ended, an earlier reply did not decode). A
    /// reply that does not decode is recorded as an error named after `label` (e.g. `VERSION
    /// reply`).
    pub(super) fn next<T, E: Display>(
        &mut self,
        t: &mut Transcript,
        label: impl FnOnce() -> String,
        decode: impl FnOnce(&'a [u8]) -> Result<Decoded<T>, E>,
    ) -> Option<(T, u64)> {
        let server = self.server.filter(|_| self.ok)?;
        let rest = server.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            // The capture ended before the reply (or the relay closed the connection).
            return None;
        }
        let at = self.pos as u64;
        match decode(rest) {
            Ok(Decoded::Done { msg, used }) => {
                self.pos += used;
                return Some((msg, at));
            }
            Ok(Decoded::Incomplete { needed }) => {
                t.incomplete(Side::Server, at, &label(), rest.len(), needed);
            }
            Err(e) => t.error(Side::Server, at, format!("{}: {e}", label())),
        }
        self.ok = false;
        None
    }

    /// Records the reply bytes left over after the last request (named `request`) as an error.
    pub(super) fn finish(self, t: &mut Transcript, request: &str) {
        if let Some(server) = self.server {
            if self.ok && self.pos < server.len() {
                t.error(
                    Side::Server,
                    self.pos as u64,
                    format!(
                        "{} bytes of replies to no {request}",
                        server.len() - self.pos
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{dissect_connection, Protocol, Side};
    use std::path::Path;

    fn fixture_stream(name: &str) -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/shared/fixtures/lttng-2.13-live-uid/streams");
        std::fs::read(dir.join(name)).expect("fixture stream")
    }

    /// Cuts the replies of a recorded connection inside its second reply, then adds bytes after
    /// all of them: the cut reply is an error, later replies are not decoded, and leftover reply
    /// bytes are an error.
    fn damaged_replies(protocol: Protocol, port: u16, incomplete: &str, extra: &str) {
        let client = fixture_stream(&format!("{port}-0.client"));
        let server = fixture_stream(&format!("{port}-0.server"));
        let whole = dissect_connection(protocol, Some(&client), Some(&server));
        assert!(whole.errors.is_empty(), "{:?}", whole.errors);
        let replies: Vec<u64> = whole
            .lines
            .iter()
            .filter(|l| l.0 == Side::Server)
            .map(|l| l.1)
            .collect();
        let cut = usize::try_from(replies[1]).unwrap() + 2;
        let t = dissect_connection(protocol, Some(&client), Some(&server[..cut]));
        assert_eq!(t.errors.len(), 1, "{:?}", t.errors);
        assert_eq!(t.errors[0].0, Side::Server);
        assert_eq!(t.errors[0].1, replies[1]);
        let what = &t.errors[0].2;
        assert!(what.starts_with(incomplete), "{what}");
        assert!(
            what.contains(": 2 bytes left, ") && what.ends_with(" needed"),
            "{what}"
        );
        let server_lines = t.lines.iter().filter(|l| l.0 == Side::Server).count();
        assert_eq!(server_lines, 1);

        let mut longer = server.clone();
        longer.extend_from_slice(&[0; 3]);
        let t = dissect_connection(protocol, Some(&client), Some(&longer));
        assert_eq!(t.lines, whole.lines);
        assert_eq!(
            t.errors,
            vec![(
                Side::Server,
                server.len() as u64,
                format!("3 bytes of replies to no {extra}")
            )]
        );
    }

    #[test]
    fn damaged_control_replies_are_reported() {
        damaged_replies(Protocol::Control, 5342, "incomplete ", "command");
    }

    #[test]
    fn damaged_live_replies_are_reported() {
        damaged_replies(Protocol::Live, 5344, "incomplete reply to ", "request");
    }
}
