//! GET_PACKET: one packet read in chunks of at most the configured size, each reply checked to
//! be as long as asked.

use trelay_proto::lttng::live::{
    GetPacketStatus, IndexReply, ViewerFlags, ViewerReply, ViewerRequest, MAX_PACKET_LEN,
};
use trelay_proto::{CtfTraceId, StreamId};

use super::client::{Client, Sink};
use super::LiveError;

impl<S: Sink> Client<'_, S> {
    /// Reads the packet of `ix` into `self.packet`; false if the stream ended meanwhile.
    pub(super) fn fetch_packet(
        &mut self,
        id: StreamId,
        trace: CtfTraceId,
        ix: &IndexReply,
    ) -> Result<bool, LiveError> {
        if ix.packet_size == 0 || ix.packet_size % 8 != 0 || ix.packet_size / 8 > MAX_PACKET_LEN {
            return Err(LiveError::Protocol(format!(
                "stream {id}: index packet_size {} bits is not a sane packet size",
                ix.packet_size
            )));
        }
        let size = ix.packet_size / 8;
        let chunk = u64::from(self.settings().chunk.max(1));
        let poll = self.settings().poll;
        self.packet.clear();
        while (self.packet.len() as u64) < size {
            if self.stopping() {
                return Ok(false);
            }
            let have = self.packet.len() as u64;
            let want = u32::try_from((size - have).min(chunk)).unwrap_or(u32::MAX);
            let offset = ix.offset.saturating_add(have);
            let req = ViewerRequest::GetPacket {
                stream_id: id,
                offset,
                len: want,
            };
            let (status, flags) = match self.conn.call(&req)? {
                ViewerReply::Packet {
                    status: GetPacketStatus::Ok,
                    data,
                    ..
                } => {
                    if data.len() as u64 != u64::from(want) {
                        return Err(LiveError::Protocol(format!(
                            "GET_PACKET on stream {id}: asked {want} bytes, got {}",
                            data.len()
                        )));
                    }
                    self.packet.extend_from_slice(data);
                    continue;
                }
                ViewerReply::Packet { status, flags, .. } => (status, flags),
                other => {
                    return Err(LiveError::Protocol(format!(
                        "GET_PACKET answered {other:?}"
                    )))
                }
            };
            match status {
                GetPacketStatus::Retry => std::thread::sleep(poll),
                GetPacketStatus::Error
                    if flags.contains(ViewerFlags::NEW_METADATA)
                        || flags.contains(ViewerFlags::NEW_STREAM) =>
                {
                    self.handle_flags(trace, flags)?
                }
                GetPacketStatus::Eof => {
                    self.end_stream(id);
                    return Ok(false);
                }
                _ => {
                    return Err(LiveError::Refused(format!(
                        "GET_PACKET on stream {id} at offset {offset}: {status:?}"
                    )))
                }
            }
        }
        Ok(true)
    }
}
