//! The data port (5343): a 32-byte header and a CTF packet, again and again; the relay sends
//! nothing back. Each payload must start with a CTF packet header (magic 0xC1FC1FC1) whose sizes
//! fit the payload: framing that went wrong shows up there.

use trelay_proto::codec::Decoded;
use trelay_proto::ctf::packet::{PacketHeader, WordSize};
use trelay_proto::lttng::relayd::{DataHeader, DATA_HEADER_LEN};

use super::control::cut_short;
use super::{Direction, DissectError, Dissection, Line};

/// Dissects one data connection (see [`super::dissect`]).
pub fn dissect(client: Option<&[u8]>, server: Option<&[u8]>) -> Dissection {
    let mut out = Dissection::default();
    if let Some(server) = server.filter(|s| !s.is_empty()) {
        out.errors.push((
            Direction::Server,
            DissectError {
                offset: 0,
                what: format!(
                    "the relay sent {} bytes on the data port, which has no replies",
                    server.len()
                ),
            },
        ));
    }
    let client = client.unwrap_or_default();
    let mut pos = 0usize;
    while let Some(rest) = client.get(pos..).filter(|r| !r.is_empty()) {
        let Decoded::Done { msg: head, .. } = DataHeader::decode(rest) else {
            out.errors.push((
                Direction::Client,
                cut_short(pos, DATA_HEADER_LEN, rest.len()),
            ));
            break;
        };
        let size = head.data_size as usize;
        let total = DATA_HEADER_LEN.saturating_add(size);
        let Some(payload) = rest.get(DATA_HEADER_LEN..total) else {
            out.errors
                .push((Direction::Client, cut_short(pos, total, rest.len())));
            break;
        };
        match packet(payload) {
            Ok(ctf) => out.lines.push(Line {
                dir: Direction::Client,
                offset: pos as u64,
                len: total as u64,
                name: "DATA".into(),
                detail: format!(
                    "stream_id={} net_seq={} data_size={} padding={} {ctf}",
                    head.stream_id.0, head.net_seq.0, head.data_size, head.padding_size
                ),
            }),
            Err(what) => {
                out.errors.push((
                    Direction::Client,
                    DissectError {
                        offset: pos as u64,
                        what: format!(
                            "data packet (stream_id={} net_seq={} data_size={}): {what}",
                            head.stream_id.0, head.net_seq.0, head.data_size
                        ),
                    },
                ));
                break;
            }
        }
        pos = pos.saturating_add(total);
    }
    out
}

/// The CTF packet header of a payload, rendered, or why it is not one.
fn packet(payload: &[u8]) -> Result<String, String> {
    // The header alone does not say the tracer's word size; 64-bit is by far the common case and
    // the fields before `events_discarded` are the same for both.
    let word = if payload.len() >= WordSize::Bits64.header_len() {
        WordSize::Bits64
    } else {
        WordSize::Bits32
    };
    let h = match PacketHeader::decode(payload, word) {
        Ok(Decoded::Done { msg, .. }) => msg,
        Ok(Decoded::Incomplete { needed }) => {
            return Err(format!(
                "payload of {} bytes is shorter than a CTF packet header ({needed})",
                payload.len()
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    let bytes = payload.len() as u64;
    if h.content_size > h.packet_size || h.packet_size % 8 != 0 {
        return Err(format!(
            "content_size {} bits and packet_size {} bits do not fit together",
            h.content_size, h.packet_size
        ));
    }
    if h.content_size.div_ceil(8) > bytes {
        return Err(format!(
            "content_size {} bits is larger than the {bytes}-byte payload",
            h.content_size
        ));
    }
    Ok(format!(
        "ctf: stream_class={} instance={} seq={} ts=[{}, {}] content={}b packet={}b discarded={} cpu={}",
        h.stream_id,
        h.stream_instance_id,
        h.packet_seq_num,
        h.timestamp_begin,
        h.timestamp_end,
        h.content_size,
        h.packet_size,
        h.events_discarded,
        h.cpu_id
    ))
}
