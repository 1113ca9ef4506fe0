//! Which version of CTF a trace's metadata is written in, told from the metadata itself.
//!
//! CTF 1.8 metadata is TSDL text, plain (starting with `/* CTF 1.8`) or packetized (each packet
//! starting with the metadata magic). CTF 2 metadata is a JSON text sequence (RFC 7464): every
//! record is introduced by the record separator `0x1E`, so a CTF 2 metadata stream starts with
//! that byte. LTTng 2.15 writes CTF 2 by default. The format type is
//! [`crate::lttng::TraceFormat`], re-exported here.

pub use crate::lttng::TraceFormat;

/// The byte that introduces every record of a CTF 2 metadata stream.
pub const RECORD_SEPARATOR: u8 = 0x1E;

impl TraceFormat {
    /// The format a metadata stream starting with `bytes` is in (`None` when it is empty): its
    /// first byte tells. Anything but the record separator is CTF 1.8 (TSDL text, or a metadata
    /// packet's magic).
    pub fn of_metadata(bytes: &[u8]) -> Option<TraceFormat> {
        match bytes.first()? {
            &RECORD_SEPARATOR => Some(TraceFormat::Ctf2),
            _ => Some(TraceFormat::Ctf1_8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctf::packet::METADATA_MAGIC;

    #[test]
    fn detects_both_formats() {
        assert_eq!(TraceFormat::of_metadata(b""), None);
        assert_eq!(TraceFormat::of_metadata(b"\x1e{"), Some(TraceFormat::Ctf2));
        assert_eq!(TraceFormat::of_metadata(b"/* C"), Some(TraceFormat::Ctf1_8));
        assert_eq!(
            TraceFormat::of_metadata(&METADATA_MAGIC.to_le_bytes()),
            Some(TraceFormat::Ctf1_8)
        );
    }
}
