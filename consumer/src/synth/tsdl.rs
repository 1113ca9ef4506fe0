//! The TSDL metadata of synthetic traces, and its packetization in LTTng's metadata packet layout.
//!
//! The trace declares exactly the packet header and packet context LTTng 2.13 tracers use on
//! 64-bit little-endian machines (so relays and index tools see ordinary LTTng packets), a
//! nanosecond clock named `synthetic` (not `monotonic`: its values are not the machine's
//! monotonic clock, so `follow --flush-interval` does not date live beacons with it), a compact event header
//! `{ u16 id; u32 timestamp }` and one event class,
//! `trelay:synthetic { u32 instance; u32 index; string msg }`. Every type is byte-aligned, so
//! nothing in a packet is implicit padding.

use std::fmt::Write as _;

use trelay_proto::ctf::packet::metadata::METADATA_HEADER_LEN;
use trelay_proto::ctf::packet::{ByteOrder, MetadataPacketHeader};

/// Size of the metadata packets [`packetize`] produces (LTTng's metadata sub-buffer size).
pub const METADATA_PACKET_LEN: usize = 4096;

/// What varies between synthetic traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsdlParams {
    /// Trace UUID (also written in every packet header).
    pub uuid: [u8; 16],
    /// Clock UUID.
    pub clock_uuid: [u8; 16],
    /// `env.hostname`.
    pub hostname: String,
    /// `env.trace_name`.
    pub trace_name: String,
    /// Clock offset from the Epoch, in seconds (clock value 0 is this instant).
    pub clock_offset_s: u64,
}

/// Formats a UUID in its canonical 8-4-4-4-12 text form.
pub fn uuid_text(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Escapes a value for a TSDL string literal.
fn tsdl_string(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

/// The TSDL text of a synthetic trace.
pub fn synthetic_tsdl(p: &TsdlParams) -> String {
    format!(
        r#"/* CTF 1.8 */

typealias integer {{ size = 8; align = 8; signed = false; }} := uint8_t;
typealias integer {{ size = 16; align = 8; signed = false; }} := uint16_t;
typealias integer {{ size = 32; align = 8; signed = false; }} := uint32_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := uint64_t;

trace {{
	major = 1;
	minor = 8;
	uuid = "{uuid}";
	byte_order = le;
	packet.header := struct {{
		uint32_t magic;
		uint8_t  uuid[16];
		uint32_t stream_id;
		uint64_t stream_instance_id;
	}};
}};

env {{
	hostname = "{hostname}";
	trace_name = "{trace_name}";
	tracer_name = "trelay-consumer";
	tracer_major = 0;
	tracer_minor = 1;
	architecture_bit_width = 64;
}};

clock {{
	name = "synthetic";
	uuid = "{clock_uuid}";
	description = "trelay-consumer synthetic clock";
	freq = 1000000000;
	offset_s = {offset_s};
	offset = 0;
	absolute = FALSE;
}};

typealias integer {{
	size = 32; align = 8; signed = false;
	map = clock.synthetic.value;
}} := uint32_clock_synthetic_t;

typealias integer {{
	size = 64; align = 8; signed = false;
	map = clock.synthetic.value;
}} := uint64_clock_synthetic_t;

struct packet_context {{
	uint64_clock_synthetic_t timestamp_begin;
	uint64_clock_synthetic_t timestamp_end;
	uint64_t content_size;
	uint64_t packet_size;
	uint64_t packet_seq_num;
	uint64_t events_discarded;
	uint32_t cpu_id;
}};

struct event_header {{
	uint16_t id;
	uint32_clock_synthetic_t timestamp;
}};

stream {{
	id = 0;
	event.header := struct event_header;
	packet.context := struct packet_context;
}};

event {{
	name = "trelay:synthetic";
	id = 0;
	stream_id = 0;
	fields := struct {{
		uint32_t instance;
		uint32_t index;
		string msg;
	}};
}};
"#,
        uuid = uuid_text(&p.uuid),
        clock_uuid = uuid_text(&p.clock_uuid),
        hostname = tsdl_string(&p.hostname),
        trace_name = tsdl_string(&p.trace_name),
        offset_s = p.clock_offset_s,
    )
}

/// One packet of packetized metadata: header plus text, then zero padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPacket {
    /// Header and text (what SEND_METADATA carries as data).
    pub content: Vec<u8>,
    /// Zero bytes completing the packet (SEND_METADATA's padding_size).
    pub padding: u32,
}

/// Cuts `tsdl` into little-endian metadata packets of [`METADATA_PACKET_LEN`] bytes each.
pub fn packetize(tsdl: &[u8], uuid: [u8; 16]) -> Vec<MetadataPacket> {
    let text_per_packet = METADATA_PACKET_LEN - METADATA_HEADER_LEN;
    tsdl.chunks(text_per_packet)
        .map(|text| {
            let content_len = METADATA_HEADER_LEN + text.len();
            let header = MetadataPacketHeader {
                byte_order: ByteOrder::Little,
                uuid,
                checksum: 0,
                content_size: bits32(content_len),
                packet_size: bits32(METADATA_PACKET_LEN),
                compression_scheme: 0,
                encryption_scheme: 0,
                checksum_scheme: 0,
                major: 1,
                minor: 8,
            };
            let mut content = Vec::with_capacity(content_len);
            header.encode(&mut content);
            content.extend_from_slice(text);
            MetadataPacket {
                content,
                padding: (METADATA_PACKET_LEN - content_len) as u32,
            }
        })
        .collect()
}

/// Size in bits of a metadata packet part (always far below 2^29 bytes here).
fn bits32(bytes: usize) -> u32 {
    u32::try_from(bytes * 8).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trelay_proto::ctf::packet::extract_tsdl;

    fn params() -> TsdlParams {
        TsdlParams {
            uuid: [0x11; 16],
            clock_uuid: [0x22; 16],
            hostname: "host\"x".into(),
            trace_name: "t".into(),
            clock_offset_s: 1_700_000_000,
        }
    }

    #[test]
    fn uuid_is_canonical() {
        let mut u = [0u8; 16];
        for (i, b) in u.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(uuid_text(&u), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }

    #[test]
    fn tsdl_escapes_strings() {
        let t = synthetic_tsdl(&params());
        assert!(t.contains(r#"hostname = "host\"x";"#));
        assert!(t.contains(r#"uuid = "11111111-1111-1111-1111-111111111111";"#));
    }

    #[test]
    fn packetized_metadata_round_trips() {
        let text = synthetic_tsdl(&params()).repeat(3);
        let packets = packetize(text.as_bytes(), [0x11; 16]);
        assert!(packets.len() > 1);
        let mut file = Vec::new();
        for p in &packets {
            assert_eq!(p.content.len() + p.padding as usize, METADATA_PACKET_LEN);
            file.extend_from_slice(&p.content);
            file.resize(file.len() + p.padding as usize, 0);
        }
        let tsdl = extract_tsdl(&file).unwrap();
        assert_eq!(tsdl.used, file.len());
        assert_eq!(tsdl.text, text.as_bytes());
    }
}
