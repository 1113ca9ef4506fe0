//! The few facts the viewer needs from a trace's TSDL metadata: its clocks (name, frequency,
//! offset from the Epoch) and the tracer's word size (`env.architecture_bit_width`).
//!
//! This is not a TSDL parser. It strips comments, tokenizes, and reads `key = value;`
//! assignments found directly inside top-level `clock { ... };` and `env { ... };` blocks;
//! everything else (type declarations, nested structures) is skipped by brace matching.
//!
//! The metadata file is either packetized (each packet starts with the metadata magic
//! `0x75D11D57` in the tracer's byte order) or plain text (starting with `/* CTF`); both are
//! accepted by [`Metadata::from_file_bytes`], and so is CTF 2 metadata (a JSON text sequence,
//! starting with `0x1E`), which [`crate::ctf2`] reads into the same [`Metadata`] (defined in [`crate::metadata`]).

use std::collections::BTreeMap;

use trelay_proto::ctf::format::TraceFormat;
use trelay_proto::ctf::packet::{append_tsdl, METADATA_MAGIC};

pub use crate::metadata::{Clock, Metadata, MetadataError};

impl Metadata {
    /// Extracts the TSDL text of a metadata file, packetized or plain. Trailing bytes that do not
    /// form a whole packet (a file being written) are ignored.
    pub fn text_of_file(bytes: &[u8]) -> Result<String, MetadataError> {
        let packetized = bytes
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| {
                u32::from_le_bytes(b) == METADATA_MAGIC || u32::from_be_bytes(b) == METADATA_MAGIC
            })
            .unwrap_or(false);
        let text = if packetized {
            let mut out = Vec::new();
            append_tsdl(bytes, &mut out)?;
            out
        } else {
            bytes.to_vec()
        };
        // Packet padding and plain files padded with zeros: stop at the first NUL of each run.
        let text: Vec<u8> = text.into_iter().filter(|&b| b != 0).collect();
        String::from_utf8(text).map_err(|_| MetadataError::NotUtf8)
    }

    /// Reads the clocks and environment of a metadata file's bytes: CTF 1.8 (packetized or
    /// plain TSDL) or CTF 2 (a JSON text sequence).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Metadata, MetadataError> {
        if TraceFormat::of_metadata(bytes) == Some(TraceFormat::Ctf2) {
            return crate::ctf2::parse(bytes);
        }
        Metadata::parse(&Metadata::text_of_file(bytes)?)
    }

    /// Reads the clocks and environment of TSDL text.
    pub fn parse(text: &str) -> Result<Metadata, MetadataError> {
        let tokens = tokenize(text);
        let mut md = Metadata::default();
        let mut i = 0usize;
        let mut depth = 0usize;
        while let Some(tok) = tokens.get(i) {
            match tok.as_str() {
                "{" => depth = depth.saturating_add(1),
                "}" => depth = depth.saturating_sub(1),
                "clock" | "env" | "stream"
                    if depth == 0 && tokens.get(i + 1).map(String::as_str) == Some("{") =>
                {
                    let (fields, next, closed) = block_assignments(&tokens, i + 2);
                    // A block cut off by the end of the text (metadata still arriving) is not
                    // read: its values may be missing.
                    match tok.as_str() {
                        _ if !closed => {}
                        "clock" => md.clocks.push(clock_from(&fields)?),
                        "env" => md.env.extend(fields),
                        _ => md.stream_classes = md.stream_classes.saturating_add(1),
                    }
                    i = next;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(md)
    }
}

fn clock_from(fields: &BTreeMap<String, String>) -> Result<Clock, MetadataError> {
    let name = fields.get("name").cloned().unwrap_or_default();
    let int = |key: &str, default: i128| -> Result<i128, MetadataError> {
        match fields.get(key) {
            None => Ok(default),
            Some(v) => parse_int(v).ok_or_else(|| MetadataError::BadClockValue {
                clock: name.clone(),
                key: key.to_owned(),
                value: v.clone(),
            }),
        }
    };
    let bad = |key: &str| MetadataError::BadClockValue {
        clock: name.clone(),
        key: key.to_owned(),
        value: fields.get(key).cloned().unwrap_or_default(),
    };
    let freq = u64::try_from(int("freq", 1_000_000_000)?)
        .ok()
        .filter(|&f| f > 0)
        .ok_or_else(|| bad("freq"))?;
    let offset_s = i64::try_from(int("offset_s", 0)?).map_err(|_| bad("offset_s"))?;
    let offset = i64::try_from(int("offset", 0)?).map_err(|_| bad("offset"))?;
    Ok(Clock {
        name,
        freq,
        offset_s,
        offset,
    })
}

/// Parses a TSDL integer literal: decimal, `0x` hex, leading-zero octal, optional sign and
/// `u`/`l` suffixes.
pub fn parse_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let t = t.trim_end_matches(['u', 'U', 'l', 'L']);
    let v = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i128::from_str_radix(hex, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i128::from_str_radix(t.get(1..)?, 8).ok()?
    } else {
        t.parse::<i128>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Collects `key = value;` pairs directly inside a block whose body starts at `start`; returns
/// them, the index after the block's closing brace (and its `;`), and whether that brace was
/// found.
fn block_assignments(tokens: &[String], start: usize) -> (BTreeMap<String, String>, usize, bool) {
    let mut out = BTreeMap::new();
    let mut i = start;
    let mut depth = 0usize;
    while let Some(tok) = tokens.get(i) {
        match tok.as_str() {
            "{" => depth = depth.saturating_add(1),
            "}" if depth == 0 => {
                i += 1;
                if tokens.get(i).map(String::as_str) == Some(";") {
                    i += 1;
                }
                return (out, i, true);
            }
            "}" => depth -= 1,
            "=" if depth == 0 => {
                if let (Some(key), Some(value)) = (
                    i.checked_sub(1).and_then(|k| tokens.get(k)),
                    tokens.get(i + 1),
                ) {
                    // A negative value arrives as two tokens: "-" and the number.
                    let value = if value == "-" {
                        format!("-{}", tokens.get(i + 2).map(String::as_str).unwrap_or(""))
                    } else {
                        value.clone()
                    };
                    out.insert(key.clone(), unquote(&value));
                }
            }
            _ => {}
        }
        i += 1;
    }
    (out, i, false)
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_owned())
}

/// Splits TSDL into tokens: identifiers/numbers (with `.` and `:` kept inside, e.g.
/// `clock.monotonic.value`), quoted strings (quotes kept), and single punctuation characters.
/// Comments are dropped.
fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut s = String::from('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    s.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push(s);
            }
            c if c.is_whitespace() => {}
            c if c.is_alphanumeric() || c == '_' => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '.' {
                        s.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(s);
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use trelay_proto::ctf::packet::WordSize;

    const SAMPLE: &str = r#"/* CTF 1.8 */
typealias integer { size = 64; align = 8; signed = false; } := uint64_t;
trace { major = 1; minor = 8; byte_order = le;
  packet.header := struct { uint32_t magic; };
};
env {
	hostname = "vm";
	architecture_bit_width = 32;
};
clock {
	name = "monotonic";
	uuid = "a528ddab-3424-4f28-8a45-a981b8598438";
	description = "Monotonic Clock";
	freq = 1000000000; /* Frequency, in Hz */
	/* clock value offset from Epoch is: offset * (1/freq) */
	offset = 1795411540087266030;
};
clock { name = other; freq = 0x10; offset_s = -3; };
stream { event.header := struct { uint64_t timestamp; }; };
"#;

    #[test]
    fn reads_clocks_and_env() {
        let md = Metadata::parse(SAMPLE).unwrap();
        assert_eq!(md.clocks.len(), 2);
        let c = md.clock().unwrap();
        assert_eq!(c.name, "monotonic");
        assert_eq!(c.freq, 1_000_000_000);
        assert_eq!(c.offset, 1_795_411_540_087_266_030);
        assert_eq!(c.offset_s, 0);
        let o = &md.clocks[1];
        assert_eq!((o.name.as_str(), o.freq, o.offset_s), ("other", 16, -3));
        assert_eq!(md.env.get("hostname").unwrap(), "vm");
        assert_eq!(md.word_size(), WordSize::Bits32);
    }

    #[test]
    fn nested_blocks_named_clock_are_ignored() {
        let md = Metadata::parse("stream { clock { freq = 5; }; }; ").unwrap();
        assert!(md.clocks.is_empty());
    }

    #[test]
    fn bad_freq_is_an_error() {
        assert!(Metadata::parse("clock { name = a; freq = 0; };").is_err());
        assert!(Metadata::parse("clock { name = a; freq = zz; };").is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("0x1F"), Some(31));
        assert_eq!(parse_int("017"), Some(15));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("12UL"), Some(12));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("x"), None);
    }

    #[test]
    fn metadata_cut_short_reads_no_partial_clock() {
        // Cut inside the first clock block, before its offset: no clock yet, not usable.
        let cut = SAMPLE.find("offset = 1795").unwrap();
        let md = Metadata::parse(&SAMPLE[..cut]).unwrap();
        assert!(md.clocks.is_empty() && !md.timing_known(), "{md:?}");
        // Whole clocks but no stream class yet: the clock is known.
        let cut = SAMPLE.find("stream {").unwrap();
        let md = Metadata::parse(&SAMPLE[..cut]).unwrap();
        assert_eq!(md.clocks.len(), 2);
        assert!(md.timing_known() && md.stream_classes == 0);
        // A trace without any clock is known once its stream class is read.
        let md = Metadata::parse("trace { major = 1; };\nstream { id = 0; };").unwrap();
        assert!(md.clock().is_none() && md.timing_known());
        assert!(!Metadata::parse("trace { major = 1; };\nstream { id = 0;")
            .unwrap()
            .timing_known());
    }

    #[test]
    fn packetized_file() {
        use trelay_proto::ctf::packet::{ByteOrder, MetadataPacketHeader};
        let text = SAMPLE.as_bytes();
        let mut file = Vec::new();
        for part in text.chunks(100) {
            let content = (37 + part.len()) as u32 * 8;
            MetadataPacketHeader {
                byte_order: ByteOrder::Little,
                uuid: [0; 16],
                checksum: 0,
                content_size: content,
                packet_size: content + 64,
                compression_scheme: 0,
                encryption_scheme: 0,
                checksum_scheme: 0,
                major: 1,
                minor: 8,
            }
            .encode(&mut file);
            file.extend_from_slice(part);
            file.extend_from_slice(&[0; 8]);
        }
        let md = Metadata::from_file_bytes(&file).unwrap();
        assert_eq!(md.clock().unwrap().offset, 1_795_411_540_087_266_030);
        assert_eq!(Metadata::text_of_file(&file).unwrap(), SAMPLE);
    }
}
