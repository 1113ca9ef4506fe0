//! Byte layouts of the control commands and data header a 2.13 consumer sends, and of the
//! relay's replies (see `lttng-wire.md` §1.3–§2.3 for the tables these follow). Everything is
//! big-endian and packed; encoders append to a reused buffer.

use bytes::BufMut;
use trelay_proto::ctf::index::IndexEntry;

/// Control header size.
pub const CONTROL_HEADER_LEN: usize = 24;
/// Data header size.
pub const DATA_HEADER_LEN: usize = 32;
/// SEND_INDEX payload size (protocol minor ≥ 8).
pub const INDEX_LEN: usize = 80;
/// LTTNG_OK.
pub const LTTNG_OK: u32 = 10;

/// Control commands this sender uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Cmd {
    /// ADD_STREAM.
    AddStream = 1,
    /// CREATE_SESSION.
    CreateSession = 2,
    /// VERSION.
    Version = 5,
    /// SEND_METADATA (no reply).
    SendMetadata = 6,
    /// CLOSE_STREAM.
    CloseStream = 7,
    /// DATA_PENDING.
    DataPending = 8,
    /// QUIESCENT_CONTROL.
    QuiescentControl = 9,
    /// BEGIN_DATA_PENDING.
    BeginDataPending = 10,
    /// END_DATA_PENDING.
    EndDataPending = 11,
    /// SEND_INDEX.
    SendIndex = 13,
    /// STREAMS_SENT.
    StreamsSent = 16,
    /// ROTATE_STREAMS.
    RotateStreams = 18,
    /// CREATE_TRACE_CHUNK.
    CreateTraceChunk = 19,
    /// CLOSE_TRACE_CHUNK.
    CloseTraceChunk = 20,
    /// TRACE_CHUNK_EXISTS.
    TraceChunkExists = 21,
    /// GET_CONFIGURATION.
    GetConfiguration = 22,
}

impl Cmd {
    /// The command's protocol name.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::AddStream => "ADD_STREAM",
            Cmd::CreateSession => "CREATE_SESSION",
            Cmd::Version => "VERSION",
            Cmd::SendMetadata => "SEND_METADATA",
            Cmd::CloseStream => "CLOSE_STREAM",
            Cmd::DataPending => "DATA_PENDING",
            Cmd::QuiescentControl => "QUIESCENT_CONTROL",
            Cmd::BeginDataPending => "BEGIN_DATA_PENDING",
            Cmd::EndDataPending => "END_DATA_PENDING",
            Cmd::SendIndex => "SEND_INDEX",
            Cmd::StreamsSent => "STREAMS_SENT",
            Cmd::RotateStreams => "ROTATE_STREAMS",
            Cmd::CreateTraceChunk => "CREATE_TRACE_CHUNK",
            Cmd::CloseTraceChunk => "CLOSE_TRACE_CHUNK",
            Cmd::TraceChunkExists => "TRACE_CHUNK_EXISTS",
            Cmd::GetConfiguration => "GET_CONFIGURATION",
        }
    }
}

/// Appends a control header announcing `payload_len` bytes.
pub fn control_header(buf: &mut Vec<u8>, cmd: Cmd, payload_len: usize) {
    buf.put_u64(0);
    buf.put_u64(payload_len as u64);
    buf.put_u32(cmd as u32);
    buf.put_u32(0);
}

/// The data header of a packet.
pub fn data_header(stream: u64, seq: u64, data_size: u32, padding: u32) -> [u8; DATA_HEADER_LEN] {
    let mut h = [0u8; DATA_HEADER_LEN];
    let mut b = &mut h[..];
    b.put_u64(0);
    b.put_u64(stream);
    b.put_u64(seq);
    b.put_u32(data_size);
    b.put_u32(padding);
    h
}

/// CREATE_SESSION fields (2.11+ layout).
#[derive(Debug, Clone)]
pub struct CreateSession<'a> {
    /// Session name.
    pub name: &'a str,
    /// Hostname.
    pub hostname: &'a str,
    /// Base path ("" for none).
    pub base_path: &'a str,
    /// Live timer in µs (0: not live).
    pub live_timer: u32,
    /// Sessiond UUID (non-zero).
    pub uuid: [u8; 16],
    /// Sessiond session id.
    pub session_id: u64,
    /// Creation time, seconds since the Epoch.
    pub creation_time: u64,
}

/// Appends a whole CREATE_SESSION command.
pub fn create_session(buf: &mut Vec<u8>, c: &CreateSession<'_>) {
    let strings = [c.name, c.hostname, c.base_path];
    let len: usize = 59 + strings.iter().map(|s| s.len() + 1).sum::<usize>();
    control_header(buf, Cmd::CreateSession, len);
    for s in strings {
        buf.put_u32(s.len() as u32 + 1);
    }
    buf.put_u32(c.live_timer);
    buf.put_u8(0); // snapshot
    buf.put_u8(0); // name contains creation time
    buf.put_slice(&c.uuid);
    buf.put_u64(c.session_id);
    buf.put_u64(c.creation_time);
    buf.put_u8(0); // current chunk: unset
    buf.put_u64(0);
    for s in strings {
        buf.put_slice(s.as_bytes());
        buf.put_u8(0);
    }
}

/// Appends a whole ADD_STREAM command (2.11+ layout, no tracefile limits).
pub fn add_stream(buf: &mut Vec<u8>, name: &str, path: &str, chunk_id: u64) {
    control_header(buf, Cmd::AddStream, 32 + name.len() + 1 + path.len() + 1);
    buf.put_u32(name.len() as u32 + 1);
    buf.put_u32(path.len() as u32 + 1);
    buf.put_u64(0);
    buf.put_u64(0);
    buf.put_u64(chunk_id);
    buf.put_slice(name.as_bytes());
    buf.put_u8(0);
    buf.put_slice(path.as_bytes());
    buf.put_u8(0);
}

/// Appends a whole SEND_INDEX command. `seq` is the net sequence number of the packet.
pub fn send_index(buf: &mut Vec<u8>, stream: u64, seq: u64, e: &IndexEntry) {
    control_header(buf, Cmd::SendIndex, INDEX_LEN);
    buf.put_u64(stream);
    buf.put_u64(seq);
    buf.put_u64(e.packet_size);
    buf.put_u64(e.content_size);
    buf.put_u64(e.timestamp_begin);
    buf.put_u64(e.timestamp_end);
    buf.put_u64(e.events_discarded);
    buf.put_u64(e.stream_id);
    buf.put_u64(e.stream_instance_id);
    buf.put_u64(e.packet_seq_num);
}

/// Appends a command whose payload is a list of big-endian u64 values.
pub fn u64s(buf: &mut Vec<u8>, cmd: Cmd, values: &[u64]) {
    control_header(buf, cmd, 8 * values.len());
    for v in values {
        buf.put_u64(*v);
    }
}

/// Appends a CREATE_TRACE_CHUNK (no override name).
pub fn create_trace_chunk(buf: &mut Vec<u8>, chunk_id: u64, now: u64) {
    control_header(buf, Cmd::CreateTraceChunk, 20);
    buf.put_u64(chunk_id);
    buf.put_u64(now);
    buf.put_u32(0);
}

/// Appends a ROTATE_STREAMS to "no chunk", in the 20-byte-header layout x86-64 senders use.
pub fn rotate_streams_to_none(buf: &mut Vec<u8>, positions: &[(u64, u64)]) {
    control_header(buf, Cmd::RotateStreams, 20 + 16 * positions.len());
    buf.put_u32(positions.len() as u32);
    buf.put_u8(0);
    buf.put_bytes(0, 7);
    buf.put_u64(0);
    for (stream, at) in positions {
        buf.put_u64(*stream);
        buf.put_u64(*at);
    }
}

/// Appends a CLOSE_TRACE_CHUNK with no close command.
pub fn close_trace_chunk(buf: &mut Vec<u8>, chunk_id: u64, now: u64) {
    control_header(buf, Cmd::CloseTraceChunk, 21);
    buf.put_u64(chunk_id);
    buf.put_u64(now);
    buf.put_u8(0);
    buf.put_u32(0);
}

/// Appends the control header and sub-header of a SEND_METADATA carrying `len` bytes (which the
/// caller sends right after).
pub fn send_metadata_head(buf: &mut Vec<u8>, stream: u64, len: usize, padding: u32) {
    control_header(buf, Cmd::SendMetadata, 12 + len);
    buf.put_u64(stream);
    buf.put_u32(padding);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_capture() {
        let mut b = Vec::new();
        control_header(&mut b, Cmd::Version, 8);
        b.put_u32(2);
        b.put_u32(13);
        let expected = [
            0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2,
            0, 0, 0, 13,
        ];
        assert_eq!(b, expected);
    }

    #[test]
    fn sizes_match_the_reference() {
        let mut b = Vec::new();
        create_session(
            &mut b,
            &CreateSession {
                name: "fx3754",
                hostname: "vm",
                base_path: "",
                live_timer: 200_000,
                uuid: [1; 16],
                session_id: 1,
                creation_time: 1_795_414_943,
            },
        );
        assert_eq!(b.len(), CONTROL_HEADER_LEN + 59 + 7 + 3 + 1);
        assert_eq!(
            &b[CONTROL_HEADER_LEN..CONTROL_HEADER_LEN + 16],
            &[0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 1, 0, 3, 13, 64]
        );
        assert_eq!(&b[b.len() - 11..], b"fx3754\0vm\0\0");
        b.clear();
        add_stream(&mut b, "channel0_0", "ust/uid/0/64-bit", 0);
        assert_eq!(b.len(), CONTROL_HEADER_LEN + 32 + 11 + 17);
        b.clear();
        send_index(&mut b, 1, 0, &IndexEntry::default());
        assert_eq!(b.len(), CONTROL_HEADER_LEN + INDEX_LEN);
        b.clear();
        rotate_streams_to_none(&mut b, &[(1, 5), (2, 3)]);
        assert_eq!(b.len(), CONTROL_HEADER_LEN + 20 + 32);
        b.clear();
        close_trace_chunk(&mut b, 0, 5);
        assert_eq!(b.len(), CONTROL_HEADER_LEN + 21);
        b.clear();
        create_trace_chunk(&mut b, 0, 5);
        assert_eq!(b.len(), CONTROL_HEADER_LEN + 20);
        let h = data_header(1, 2, 3, 4);
        assert_eq!(
            &h[8..],
            &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]
        );
    }
}
