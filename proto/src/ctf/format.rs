//! Which version of CTF a trace's metadata is written in.
//!
//! CTF 1.8 metadata is TSDL text, plain (starting with `/* CTF 1.8`) or packetized (each packet
//! starting with the metadata magic). CTF 2 metadata is a JSON text sequence (RFC 7464): every
//! record is introduced by the record separator `0x1E`, so a CTF 2 metadata stream starts with
//! that byte. LTTng 2.15 writes CTF 2 by default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The byte that introduces every record of a CTF 2 metadata stream.
pub const RECORD_SEPARATOR: u8 = 0x1E;

/// The format of a trace (of its metadata stream; data packets look alike in both).
///
/// Serialized by postcard (trelay://) as its variant index, 0 for CTF 1.8 and 1 for CTF 2; in
/// JSON (reports, manifests) as its [`name`](TraceFormat::name).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum TraceFormat {
    /// CTF 1.8: TSDL metadata.
    #[default]
    #[serde(rename = "ctf-1.8")]
    Ctf1_8,
    /// CTF 2: JSON text sequence metadata.
    #[serde(rename = "ctf-2")]
    Ctf2,
}

impl TraceFormat {
    /// Every format, oldest first.
    pub const ALL: [TraceFormat; 2] = [TraceFormat::Ctf1_8, TraceFormat::Ctf2];

    /// The format a metadata stream starting with `bytes` is in (`None` when it is empty): its
    /// first byte tells. Anything but the record separator is CTF 1.8 (TSDL text, or a metadata
    /// packet's magic).
    pub fn of_metadata(bytes: &[u8]) -> Option<TraceFormat> {
        match bytes.first()? {
            &RECORD_SEPARATOR => Some(TraceFormat::Ctf2),
            _ => Some(TraceFormat::Ctf1_8),
        }
    }

    /// The name users type and read: `ctf-1.8` or `ctf-2` (as `lttng create --trace-format`).
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Ctf1_8 => "ctf-1.8",
            TraceFormat::Ctf2 => "ctf-2",
        }
    }

    /// The name as LTTng prints it: `CTF 1.8` or `CTF 2`.
    pub fn label(self) -> &'static str {
        match self {
            TraceFormat::Ctf1_8 => "CTF 1.8",
            TraceFormat::Ctf2 => "CTF 2",
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A trace format name that is neither `ctf-1.8` nor `ctf-2`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trace format {0:?} (expected ctf-1.8 or ctf-2)")]
pub struct UnknownTraceFormat(pub String);

impl FromStr for TraceFormat {
    type Err = UnknownTraceFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ctf-1.8" | "ctf1.8" | "1.8" => Ok(TraceFormat::Ctf1_8),
            "ctf-2" | "ctf2" | "2" => Ok(TraceFormat::Ctf2),
            _ => Err(UnknownTraceFormat(s.to_owned())),
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

    #[test]
    fn names_round_trip() {
        for f in TraceFormat::ALL {
            assert_eq!(f.name().parse::<TraceFormat>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        assert!("ctf-3".parse::<TraceFormat>().is_err());
    }
}
