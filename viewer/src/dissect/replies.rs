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
