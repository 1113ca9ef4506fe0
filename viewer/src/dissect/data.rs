//! Data port (5343): data headers and the CTF packets they carry. The relay never writes on
//! this port.

use trelay_proto::ctf::packet::{PacketHeader, WordSize};
use trelay_proto::lttng::relayd::{DataHeader, DATA_HEADER_LEN};
use trelay_proto::Decoded;

use super::{Side, Transcript};

/// Decodes a data connection.
pub fn dissect(client: Option<&[u8]>, server: Option<&[u8]>, t: &mut Transcript) {
    if let Some(s) = server.filter(|s| !s.is_empty()) {
        t.error(
            Side::Server,
            0,
            format!(
                "{} bytes from the relay on the data port, which is one-way",
                s.len()
            ),
        );
    }
    let Some(client) = client else { return };
    let mut pos = 0usize;
    while pos < client.len() {
        let rest = client.get(pos..).unwrap_or(&[]);
        let h = match DataHeader::decode(rest) {
            Decoded::Done { msg, .. } => msg,
            Decoded::Incomplete { .. } => {
                let (left, needed) = (rest.len(), DATA_HEADER_LEN);
                t.incomplete(Side::Client, pos as u64, "data header", left, needed);
                return;
            }
        };
        let end = DATA_HEADER_LEN.saturating_add(h.data_size as usize);
        let Some(payload) = rest.get(DATA_HEADER_LEN..end) else {
            t.error(
                Side::Client,
                pos as u64,
                format!(
                    "incomplete packet: header announces {} bytes, {} left",
                    h.data_size,
                    rest.len().saturating_sub(DATA_HEADER_LEN)
                ),
            );
            return;
        };
        t.line(
            Side::Client,
            pos as u64,
            format!(
                "DATA stream={} net_seq={} size={} padding={}{}",
                h.stream_id,
                h.net_seq,
                h.data_size,
                h.padding_size,
                packet_text(payload)
            ),
        );
        pos += end;
    }
}

/// A short description of the CTF packet header at the start of `payload`, if there is one.
pub fn ctf_summary(payload: &[u8]) -> Option<String> {
    match PacketHeader::decode(payload, WordSize::Bits32) {
        Ok(Decoded::Done { msg: p, .. }) => Some(format!(
            " | CTF class={} instance={} seq={} begin={} end={} content={}b packet={}b",
            p.stream_id,
            p.stream_instance_id,
            p.packet_seq_num,
            p.timestamp_begin,
            p.timestamp_end,
            p.content_size,
            p.packet_size
        )),
        _ => None,
    }
}

fn packet_text(payload: &[u8]) -> String {
    ctf_summary(payload).unwrap_or_else(|| " | not a CTF packet".to_owned())
}
