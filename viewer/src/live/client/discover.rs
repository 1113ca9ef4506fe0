//! Stream discovery: GET_NEW_STREAMS for the sessions still open (HUP, or ERR for a session
//! whose every stream hung up, ends a session), and the flags a relay sets on its replies.

use trelay_proto::lttng::live::{NewStreamsStatus, ViewerFlags, ViewerReply, ViewerRequest};
use trelay_proto::{CtfTraceId, SessionId};

use super::{Client, Sink};
use crate::live::LiveError;

impl<S: Sink> Client<'_, S> {
    /// GET_NEW_STREAMS for every session still open; returns whether streams were added.
    pub(in crate::live) fn new_streams(&mut self) -> Result<bool, LiveError> {
        let mut added = false;
        for i in 0..self.sessions.len() {
            let Some(s) = self.sessions.get(i) else { break };
            if s.hup {
                continue;
            }
            let id = s.id;
            let (status, records) = match self
                .conn
                .call(&ViewerRequest::GetNewStreams { session_id: id })?
            {
                ViewerReply::NewStreams { status, streams } => (status, streams),
                other => {
                    return Err(LiveError::Protocol(format!(
                        "GET_NEW_STREAMS answered {other:?}"
                    )))
                }
            };
            match status {
                NewStreamsStatus::Ok => {
                    added |= !records.is_empty();
                    self.add_streams(id, records)?;
                }
                NewStreamsStatus::NoNew => {}
                NewStreamsStatus::Hup => {
                    if let Some(s) = self.sessions.get_mut(i) {
                        s.hup = true;
                    }
                }
                NewStreamsStatus::Error if self.session_drained(id) => {
                    // The relay forgot a session whose every stream hung up: it is over.
                    if let Some(s) = self.sessions.get_mut(i) {
                        s.hup = true;
                    }
                }
                NewStreamsStatus::Error => {
                    return Err(LiveError::Refused(format!("GET_NEW_STREAMS {id}: ERR")))
                }
            }
        }
        Ok(added)
    }

    /// Session `id` had data streams and every one of them hung up.
    fn session_drained(&self, id: SessionId) -> bool {
        let mut mine = self.streams.values().filter(|s| s.session == id).peekable();
        mine.peek().is_some() && mine.all(|s| s.hup)
    }

    pub(in crate::live) fn handle_flags(
        &mut self,
        trace: CtfTraceId,
        flags: ViewerFlags,
    ) -> Result<(), LiveError> {
        if flags.contains(ViewerFlags::NEW_METADATA) {
            self.fetch_metadata(trace)?;
        }
        if flags.contains(ViewerFlags::NEW_STREAM) {
            self.new_streams()?;
        }
        Ok(())
    }
}
