//! The same facts as [`crate::tsdl`], read from CTF 2 metadata: a JSON text sequence (RFC
//! 7464), one JSON object per record, each introduced by the record separator `0x1E`.
//!
//! Records are parsed with `serde_json`; what is read:
//!
//! - `preamble`: `version` must be 2;
//! - `trace-class`: its `environment` object becomes [`Metadata::env`] (strings as written,
//!   numbers in decimal);
//! - `clock-class`: `name` (else `id`), `frequency`, `offset-from-origin` (`seconds`,
//!   `cycles`); each becomes a [`Clock`];
//! - `data-stream-class`: counted in [`Metadata::stream_classes`].
//!
//! Other records (event record classes, field-class aliases) are skipped. The last record may
//! be cut short when the metadata is still being written: it is then not read, as a TSDL block
//! cut off by the end of the text is not.

use serde::Deserialize;
use serde_json::Value;
use trelay_proto::ctf::format::{TraceFormat, RECORD_SEPARATOR};

use crate::metadata::{Clock, Metadata, MetadataError};

/// A clock class's offset from its origin.
#[derive(Debug, Default, Deserialize)]
struct Offset {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    cycles: u64,
}

/// The members of a `clock-class` record the viewer reads.
#[derive(Debug, Deserialize)]
struct ClockClass {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    frequency: u64,
    #[serde(default, rename = "offset-from-origin")]
    offset: Option<Offset>,
}

/// Reads the clocks, environment and stream classes of CTF 2 metadata bytes.
pub fn parse(bytes: &[u8]) -> Result<Metadata, MetadataError> {
    let mut md = Metadata {
        format: TraceFormat::Ctf2,
        ..Metadata::default()
    };
    let records: Vec<&[u8]> = bytes.split(|&b| b == RECORD_SEPARATOR).skip(1).collect();
    let last = records.len().saturating_sub(1);
    for (n, raw) in records.into_iter().enumerate() {
        // Padding a file with zeros (as a tracer may) is not part of any record.
        let raw = trim(raw);
        if raw.is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) if e.is_eof() && n == last => break,
            Err(e) => {
                return Err(MetadataError::Json {
                    record: n,
                    reason: e.to_string(),
                })
            }
        };
        read_record(n, value, &mut md)?;
    }
    Ok(md)
}

fn trim(raw: &[u8]) -> &[u8] {
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0)
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
        .map_or(start, |e| e + 1);
    raw.get(start..end).unwrap_or_default()
}

fn read_record(n: usize, value: Value, md: &mut Metadata) -> Result<(), MetadataError> {
    let bad = |reason: String| MetadataError::Json { record: n, reason };
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a record without a string \"type\"".to_owned()))?;
    match kind {
        "preamble" => match value.get("version").and_then(Value::as_u64) {
            Some(2) => {}
            v => return Err(bad(format!("preamble version {v:?}, expected 2"))),
        },
        "trace-class" => {
            if let Some(env) = value.get("environment").and_then(Value::as_object) {
                for (k, v) in env {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    md.env.insert(k.clone(), text);
                }
            }
        }
        "clock-class" => {
            let c: ClockClass =
                serde_json::from_value(value).map_err(|e| bad(format!("clock class: {e}")))?;
            let name = c.name.or(c.id).unwrap_or_default();
            if c.frequency == 0 {
                return Err(MetadataError::BadClockValue {
                    clock: name,
                    key: "frequency".to_owned(),
                    value: "0".to_owned(),
                });
            }
            let off = c.offset.unwrap_or_default();
            let offset = i64::try_from(off.cycles).map_err(|_| MetadataError::BadClockValue {
                clock: name.clone(),
                key: "offset-from-origin.cycles".to_owned(),
                value: off.cycles.to_string(),
            })?;
            md.clocks.push(Clock {
                name,
                freq: c.frequency,
                offset_s: off.seconds,
                offset,
            });
        }
        "data-stream-class" => md.stream_classes = md.stream_classes.saturating_add(1),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trelay_proto::ctf::packet::WordSize;

    fn seq(records: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            out.push(RECORD_SEPARATOR);
            out.extend_from_slice(r.as_bytes());
            out.push(b'\n');
        }
        out
    }

    const PREAMBLE: &str =
        r#"{"type":"preamble","version":2,"uuid":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}"#;
    const TRACE: &str = r#"{"type":"trace-class","environment":{"hostname":"vm","architecture_bit_width":32,"trace_name":"s"}}"#;
    const CLOCK: &str = r#"{"type":"clock-class","id":"monotonic","name":"monotonic","frequency":1000000000,"origin":"unix-epoch","offset-from-origin":{"seconds":1796691742,"cycles":181395452}}"#;
    const STREAM: &str = r#"{"type":"data-stream-class","default-clock-class-id":"monotonic"}"#;

    #[test]
    fn reads_clock_env_and_stream_classes() {
        let md = parse(&seq(&[PREAMBLE, TRACE, CLOCK, STREAM])).unwrap();
        assert_eq!(md.format, TraceFormat::Ctf2);
        let c = md.clock().unwrap();
        assert_eq!(
            (c.name.as_str(), c.freq, c.offset_s, c.offset),
            ("monotonic", 1_000_000_000, 1_796_691_742, 181_395_452)
        );
        assert_eq!(md.env.get("hostname").unwrap(), "vm");
        assert_eq!(md.word_size(), WordSize::Bits32);
        assert_eq!(md.stream_classes, 1);
        assert!(md.timing_known());
    }

    #[test]
    fn a_record_cut_short_at_the_end_is_not_read() {
        let whole = seq(&[PREAMBLE, TRACE, CLOCK]);
        let cut = &whole[..whole.len() - 20];
        let md = parse(cut).unwrap();
        assert!(md.clocks.is_empty() && !md.timing_known(), "{md:?}");
        assert_eq!(md.env.get("trace_name").unwrap(), "s");
    }

    #[test]
    fn damaged_records_are_errors() {
        assert!(parse(&seq(&[PREAMBLE, "{\"type\":", CLOCK])).is_err());
        assert!(parse(&seq(&["{\"type\":\"preamble\",\"version\":1}"])).is_err());
        assert!(parse(&seq(&["[1,2]"])).is_err());
        let zero = CLOCK.replace("1000000000", "0");
        assert!(parse(&seq(&[PREAMBLE, &zero])).is_err());
        let neg = CLOCK.replace("\"cycles\":181395452", "\"cycles\":-1");
        assert!(parse(&seq(&[PREAMBLE, &neg])).is_err());
    }

    #[test]
    fn id_names_a_clock_without_name_and_offsets_default_to_zero() {
        let md = parse(&seq(&[
            PREAMBLE,
            r#"{"type":"clock-class","id":"c","frequency":100}"#,
        ]))
        .unwrap();
        assert_eq!(
            md.clocks,
            vec![Clock {
                name: "c".to_owned(),
                freq: 100,
                offset_s: 0,
                offset: 0
            }]
        );
    }

    #[test]
    fn zero_padding_is_ignored() {
        let mut bytes = seq(&[PREAMBLE, CLOCK]);
        bytes.extend_from_slice(&[0; 64]);
        assert_eq!(parse(&bytes).unwrap().clocks.len(), 1);
    }
}
