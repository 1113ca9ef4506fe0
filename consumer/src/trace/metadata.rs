//! The metadata file of a trace directory, cut into the chunks a consumer sends.
//!
//! LTTng writes packetized metadata (37-byte headers, TSDL text, zero padding): each complete
//! packet becomes one SEND_METADATA with the header and text as data and the rest as padding, so
//! the relay's file is the original byte for byte. A plain-text metadata file (no packet magic)
//! is sent as it grows, without padding. Like [`super::packets::PacketSource`], this serves
//! growing files: [`MetadataSource::next_chunk`] answers `None` until more is complete.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use trelay_proto::ctf::format::{TraceFormat, RECORD_SEPARATOR};
use trelay_proto::ctf::packet::metadata::METADATA_HEADER_LEN;
use trelay_proto::ctf::packet::{extract_tsdl, MetadataPacketHeader, WordSize, METADATA_MAGIC};
use trelay_proto::Decoded;

use super::TraceError;

/// Largest metadata packet accepted.
const MAX_METADATA_PACKET: usize = 64 << 20;
/// Largest plain-text chunk sent at once.
const MAX_TEXT_CHUNK: usize = 1 << 20;

/// One chunk of metadata to send: `len` bytes in the caller's buffer, then `padding` zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataChunk {
    /// Bytes of data.
    pub len: usize,
    /// Zero bytes following them in the file.
    pub padding: u32,
}

/// Reads a metadata file chunk by chunk.
#[derive(Debug)]
pub struct MetadataSource {
    path: PathBuf,
    file: File,
    pos: u64,
    packetized: Option<bool>,
}

impl MetadataSource {
    /// Opens the metadata file.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
        Ok(MetadataSource {
            path: path.to_owned(),
            file,
            pos: 0,
            packetized: None,
        })
    }

    /// Bytes of the file consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads the next complete chunk into `out` (cleared first).
    pub fn next_chunk(&mut self, out: &mut Vec<u8>) -> Result<Option<MetadataChunk>, TraceError> {
        out.clear();
        let len = self
            .file
            .metadata()
            .map_err(|e| TraceError::io(&self.path, e))?
            .len();
        let avail = len.saturating_sub(self.pos);
        if avail == 0 {
            return Ok(None);
        }
        let packetized = match self.packetized {
            Some(p) => p,
            None => {
                if avail < 4 {
                    return Ok(None);
                }
                let mut magic = [0u8; 4];
                self.read(&mut magic, self.pos)?;
                let p = u32::from_le_bytes(magic) == METADATA_MAGIC
                    || u32::from_be_bytes(magic) == METADATA_MAGIC;
                self.packetized = Some(p);
                p
            }
        };
        if !packetized {
            let n = avail.min(MAX_TEXT_CHUNK as u64) as usize;
            out.resize(n, 0);
            self.read(out, self.pos)?;
            self.pos += n as u64;
            return Ok(Some(MetadataChunk { len: n, padding: 0 }));
        }
        if avail < METADATA_HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut raw = [0u8; METADATA_HEADER_LEN];
        self.read(&mut raw, self.pos)?;
        let header = match MetadataPacketHeader::decode(&raw) {
            Ok(Decoded::Done { msg, .. }) => msg,
            Ok(Decoded::Incomplete { .. }) => return Ok(None),
            Err(e) => return Err(self.bad(e.to_string())),
        };
        let packet_len = header.packet_len();
        let content_len = (header.content_size / 8) as usize;
        if packet_len > MAX_METADATA_PACKET {
            return Err(self.bad(format!("metadata packet of {packet_len} bytes")));
        }
        if avail < packet_len as u64 {
            return Ok(None);
        }
        out.resize(content_len, 0);
        self.read(out, self.pos)?;
        self.pos += packet_len as u64;
        Ok(Some(MetadataChunk {
            len: content_len,
            padding: (packet_len - content_len) as u32,
        }))
    }

    fn read(&self, buf: &mut [u8], at: u64) -> Result<(), TraceError> {
        self.file
            .read_exact_at(buf, at)
            .map_err(|e| TraceError::io(&self.path, e))
    }

    fn bad(&self, reason: String) -> TraceError {
        TraceError::Packet {
            path: self.path.clone(),
            offset: self.pos,
            reason,
        }
    }
}

/// The TSDL text of a metadata file (packetized or not); complete packets only.
pub fn read_tsdl(path: &Path) -> Result<Vec<u8>, TraceError> {
    let raw = std::fs::read(path).map_err(|e| TraceError::io(path, e))?;
    let packetized = raw
        .get(..4)
        .map(|m| {
            let m: [u8; 4] = m.try_into().unwrap_or_default();
            u32::from_le_bytes(m) == METADATA_MAGIC || u32::from_be_bytes(m) == METADATA_MAGIC
        })
        .unwrap_or(false);
    if !packetized {
        return Ok(raw);
    }
    extract_tsdl(&raw)
        .map(|t| t.text)
        .map_err(|e| TraceError::Packet {
            path: path.to_owned(),
            offset: 0,
            reason: e.to_string(),
        })
}

/// The format of the metadata file at `path`: `None` while it is empty or unreadable.
pub fn trace_format_of(path: &Path) -> Option<TraceFormat> {
    let mut first = [0u8; 1];
    let f = File::open(path).ok()?;
    match f.read_at(&mut first, 0) {
        Ok(1) => TraceFormat::of_metadata(&first),
        _ => None,
    }
}

/// A string value of the trace's environment: `env { KEY = "VALUE"; }` in TSDL text, the
/// `environment` object of the `trace-class` record in CTF 2 metadata (a JSON text sequence,
/// parsed with `serde_json`; records cut short at the end are skipped).
pub fn env_string(metadata: &[u8], key: &str) -> Option<String> {
    if TraceFormat::of_metadata(metadata) != Some(TraceFormat::Ctf2) {
        return tsdl_env_string(metadata, key);
    }
    ctf2_env(metadata, key)?.as_str().map(str::to_owned)
}

/// The value of `key` in the `environment` of a CTF 2 metadata stream's `trace-class` record.
fn ctf2_env(metadata: &[u8], key: &str) -> Option<serde_json::Value> {
    metadata
        .split(|&b| b == RECORD_SEPARATOR)
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(r).ok())
        .find(|r| r.get("type").and_then(|t| t.as_str()) == Some("trace-class"))?
        .get("environment")?
        .get(key)
        .cloned()
}

/// A quoted `env` value of a TSDL text (`key = "value";`).
fn tsdl_env_string(tsdl: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(tsdl);
    let env = &text[text.find("env {")?..];
    let env = &env[..env.find("};")?];
    let at = env
        .find(&format!("\t{key} "))
        .or_else(|| env.find(&format!(" {key} ")))?
        + key.len()
        + 1;
    let rest = env[at..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// The width of the tracer's `unsigned long` declared by a TSDL text (the size of the integer
/// aliased to `unsigned long`, else `env.architecture_bit_width`); 64 bits when neither says.
///
/// For CTF 2 metadata: the environment's `architecture_bit_width`.
pub fn word_size(tsdl: &[u8]) -> WordSize {
    if TraceFormat::of_metadata(tsdl) == Some(TraceFormat::Ctf2) {
        return match ctf2_env(tsdl, "architecture_bit_width").and_then(|v| v.as_u64()) {
            Some(32) => WordSize::Bits32,
            _ => WordSize::Bits64,
        };
    }
    let text = String::from_utf8_lossy(tsdl);
    let size_before = |end: usize| -> Option<u32> {
        let start = text[..end].rfind("typealias integer")?;
        number_after(&text[start..end], "size =")
    };
    let bits = text
        .find(":= unsigned long;")
        .and_then(size_before)
        .or_else(|| number_after(&text, "architecture_bit_width ="));
    match bits {
        Some(32) => WordSize::Bits32,
        _ => WordSize::Bits64,
    }
}

/// The decimal number after the first `key` in `text` (blanks between them skipped).
fn number_after(text: &str, key: &str) -> Option<u32> {
    let at = text.find(key)? + key.len();
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_strings_of_both_formats() {
        let mut p = crate::synth::SynthTrace::new("host\"1", "t", 4096).params;
        p.trace_name = "name".into();
        let tsdl = crate::synth::synthetic_tsdl(&p);
        assert_eq!(
            env_string(tsdl.as_bytes(), "trace_name").as_deref(),
            Some("name")
        );
        let json = crate::synth::ctf2::synthetic_ctf2(&p);
        assert_eq!(env_string(&json, "trace_name").as_deref(), Some("name"));
        assert_eq!(env_string(&json, "hostname").as_deref(), Some("host\"1"));
        assert_eq!(env_string(&json, "tracer_major"), None, "not a string");
        assert_eq!(env_string(&json[..20], "hostname"), None);
    }

    #[test]
    fn word_size_from_tsdl() {
        let t64 = b"typealias integer { size = 64; align = 8; signed = false; } := unsigned long;";
        let t32 = b"typealias integer { size = 8; } := uint8_t;\ntypealias integer { size = 32; align = 8; signed = false; } := unsigned long;";
        assert_eq!(word_size(t64), WordSize::Bits64);
        assert_eq!(word_size(t32), WordSize::Bits32);
        assert_eq!(
            word_size(b"env { architecture_bit_width = 32; };"),
            WordSize::Bits32
        );
        assert_eq!(word_size(b""), WordSize::Bits64);
    }

    #[test]
    fn packetized_metadata_chunks_reproduce_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let trace = crate::synth::SynthTrace::new("h", "t", 4096);
        crate::synth::write_trace_dir(&trace, dir.path(), 1, 1).unwrap();
        let path = dir.path().join("metadata");
        let orig = std::fs::read(&path).unwrap();
        let mut src = MetadataSource::open(&path).unwrap();
        let mut rebuilt = Vec::new();
        let mut buf = Vec::new();
        while let Some(c) = src.next_chunk(&mut buf).unwrap() {
            rebuilt.extend_from_slice(&buf[..c.len]);
            rebuilt.resize(rebuilt.len() + c.padding as usize, 0);
        }
        assert_eq!(rebuilt, orig);
        assert_eq!(word_size(&read_tsdl(&path).unwrap()), WordSize::Bits64);
    }

    #[test]
    fn partial_packet_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        let packets = crate::synth::packetize(&[b'x'; 5000], [1; 16]);
        let mut file = packets[0].content.clone();
        file.resize(4096, 0);
        file.extend_from_slice(&packets[1].content[..100]);
        std::fs::write(&path, &file).unwrap();
        let mut src = MetadataSource::open(&path).unwrap();
        let mut buf = Vec::new();
        assert_eq!(src.next_chunk(&mut buf).unwrap().unwrap().len, 4096);
        assert!(src.next_chunk(&mut buf).unwrap().is_none());
        assert_eq!(src.position(), 4096);
    }
}
