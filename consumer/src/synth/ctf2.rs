//! The CTF 2 metadata of synthetic traces: the same trace as [`super::tsdl`] declares (LTTng's
//! 64-bit little-endian packet header and context, a nanosecond clock named `synthetic`, a
//! compact `{ u16 id; u32 timestamp }` event header, one event record class
//! `trelay:synthetic { u32 instance; u32 index; string msg }`), written as a JSON text sequence:
//! each record is `0x1E`, one JSON object, `\n`.
//!
//! Records, in order: `preamble` (version 2, the trace UUID every packet carries), `trace-class`
//! (environment, packet header), `clock-class`, `data-stream-class` (id 0), `event-record-class`
//! (id 0). Roles tell readers which fields are the magic, the UUID, the stream ids, the
//! timestamps, the packet sizes, the sequence number and the discarded-event counter. The JSON is
//! built with `serde_json`; strings (host and trace names) are escaped by it.

use serde_json::{json, Value};
use trelay_proto::ctf::format::RECORD_SEPARATOR;

use super::tsdl::{uuid_text, TsdlParams};

/// Name and id of the synthetic clock class.
const CLOCK: &str = "synthetic";

/// A byte-aligned little-endian unsigned integer field class of `bits` bits, with `roles`.
fn uint(bits: u32, roles: &[&str]) -> Value {
    let mut v = json!({
        "type": "fixed-length-unsigned-integer",
        "length": bits,
        "byte-order": "little-endian",
        "alignment": 8,
    });
    if !roles.is_empty() {
        v["roles"] = json!(roles);
    }
    v
}

/// A structure field class of `(name, field class)` members.
fn structure(members: Vec<(&str, Value)>) -> Value {
    let members: Vec<Value> = members
        .into_iter()
        .map(|(name, fc)| json!({ "name": name, "field-class": fc }))
        .collect();
    json!({ "type": "structure", "member-classes": members })
}

/// The records of a synthetic trace's CTF 2 metadata, in order.
pub fn synthetic_records(p: &TsdlParams) -> Vec<Value> {
    let packet_header = structure(vec![
        ("magic", uint(32, &["packet-magic-number"])),
        (
            "uuid",
            json!({ "type": "static-length-blob", "length": 16, "roles": ["metadata-stream-uuid"] }),
        ),
        ("stream_id", uint(32, &["data-stream-class-id"])),
        ("stream_instance_id", uint(64, &["data-stream-id"])),
    ]);
    let packet_context = structure(vec![
        ("timestamp_begin", uint(64, &["default-clock-timestamp"])),
        (
            "timestamp_end",
            uint(64, &["packet-end-default-clock-timestamp"]),
        ),
        ("content_size", uint(64, &["packet-content-length"])),
        ("packet_size", uint(64, &["packet-total-length"])),
        ("packet_seq_num", uint(64, &["packet-sequence-number"])),
        (
            "events_discarded",
            uint(64, &["discarded-event-record-counter-snapshot"]),
        ),
        ("cpu_id", uint(32, &[])),
    ]);
    let event_header = structure(vec![
        ("id", uint(16, &["event-record-class-id"])),
        ("timestamp", uint(32, &["default-clock-timestamp"])),
    ]);
    let payload = structure(vec![
        ("instance", uint(32, &[])),
        ("index", uint(32, &[])),
        ("msg", json!({ "type": "null-terminated-string" })),
    ]);
    vec![
        json!({ "type": "preamble", "version": 2, "uuid": p.uuid }),
        json!({
            "type": "trace-class",
            "uid": uuid_text(&p.uuid),
            "environment": {
                "hostname": p.hostname,
                "trace_name": p.trace_name,
                "tracer_name": "trelay-consumer",
                "tracer_major": 0,
                "tracer_minor": 1,
                "architecture_bit_width": 64,
            },
            "packet-header-field-class": packet_header,
        }),
        json!({
            "type": "clock-class",
            "id": CLOCK,
            "name": CLOCK,
            "uid": uuid_text(&p.clock_uuid),
            "description": "trelay-consumer synthetic clock",
            "frequency": 1_000_000_000u64,
            "origin": "unix-epoch",
            "offset-from-origin": { "seconds": p.clock_offset_s, "cycles": 0 },
        }),
        json!({
            "type": "data-stream-class",
            "id": 0,
            "default-clock-class-id": CLOCK,
            "packet-context-field-class": packet_context,
            "event-record-header-field-class": event_header,
        }),
        json!({
            "type": "event-record-class",
            "id": 0,
            "data-stream-class-id": 0,
            "name": "trelay:synthetic",
            "payload-field-class": payload,
        }),
    ]
}

/// The CTF 2 metadata stream of a synthetic trace: its records as a JSON text sequence.
pub fn synthetic_ctf2(p: &TsdlParams) -> Vec<u8> {
    let mut out = Vec::new();
    for r in synthetic_records(p) {
        out.push(RECORD_SEPARATOR);
        // Serializing a `Value` to a vector cannot fail.
        out.extend_from_slice(r.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> TsdlParams {
        TsdlParams {
            uuid: [0x11; 16],
            clock_uuid: [0x22; 16],
            hostname: "h\"o\\st".to_owned(),
            trace_name: "t\u{1}".to_owned(),
            clock_offset_s: 1_700_000_000,
        }
    }

    #[test]
    fn every_record_is_one_json_object_after_a_separator() {
        let bytes = synthetic_ctf2(&params());
        assert_eq!(bytes.first(), Some(&RECORD_SEPARATOR));
        let records: Vec<Value> = bytes
            .split(|&b| b == RECORD_SEPARATOR)
            .skip(1)
            .map(|r| serde_json::from_slice(r).unwrap())
            .collect();
        let types: Vec<&str> = records
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "preamble",
                "trace-class",
                "clock-class",
                "data-stream-class",
                "event-record-class"
            ]
        );
        assert_eq!(records[1]["environment"]["hostname"], "h\"o\\st");
        assert_eq!(
            records[2]["offset-from-origin"]["seconds"],
            1_700_000_000u64
        );
        assert_eq!(records[0]["uuid"][0], 0x11);
    }
}
