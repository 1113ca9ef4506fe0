//! The trace format of a session: CTF 1.8 (TSDL metadata) or CTF 2 (JSON metadata).
//!
//! LTTng 2.15 carries it in two places, with two different numberings:
//! - the control port's CREATE_SESSION (protocol minor 15 and later): `trace_format u32`, the
//!   value of `enum lttng_trace_format` (CTF 1.8 = 1, CTF 2 = 2);
//! - the live port's 2.15 session records: `trace_format u32`, the value of
//!   `enum lttng_live_trace_format` (CTF 1.8 = 0, CTF 2 = 1).
//!
//! Any other value is refused ([`DecodeError::InvalidValue`]). Sessions created at an older
//! minor, which cannot say, are CTF 1.8.

use crate::codec::DecodeError;

/// The trace format of a session.
///
/// Serialized by postcard (trelay://) as its variant index, 0 for CTF 1.8 and 1 for CTF 2; in
/// JSON (reports, manifests) as its [`cli_name`](TraceFormat::cli_name).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum TraceFormat {
    /// CTF 1.8: TSDL metadata, packetized metadata stream (every LTTng before 2.15).
    #[default]
    #[serde(rename = "ctf-1.8")]
    Ctf1_8,
    /// CTF 2: the metadata stream is a JSON text sequence (LTTng 2.15's default).
    #[serde(rename = "ctf-2")]
    Ctf2,
}

impl TraceFormat {
    /// Both formats, CTF 1.8 first.
    pub const ALL: [TraceFormat; 2] = [TraceFormat::Ctf1_8, TraceFormat::Ctf2];

    /// The control port's value (`enum lttng_trace_format`).
    pub fn to_control(self) -> u32 {
        match self {
            TraceFormat::Ctf1_8 => 1,
            TraceFormat::Ctf2 => 2,
        }
    }

    /// Reads the control port's value; anything but 1 and 2 is an error naming `field`.
    pub fn from_control(v: u32, field: &'static str) -> Result<TraceFormat, DecodeError> {
        match v {
            1 => Ok(TraceFormat::Ctf1_8),
            2 => Ok(TraceFormat::Ctf2),
            other => Err(DecodeError::InvalidValue {
                field,
                value: u64::from(other),
            }),
        }
    }

    /// The live port's value (`enum lttng_live_trace_format`).
    pub fn to_live(self) -> u32 {
        match self {
            TraceFormat::Ctf1_8 => 0,
            TraceFormat::Ctf2 => 1,
        }
    }

    /// Reads the live port's value; anything but 0 and 1 is an error naming `field`.
    pub fn from_live(v: u32, field: &'static str) -> Result<TraceFormat, DecodeError> {
        match v {
            0 => Ok(TraceFormat::Ctf1_8),
            1 => Ok(TraceFormat::Ctf2),
            other => Err(DecodeError::InvalidValue {
                field,
                value: u64::from(other),
            }),
        }
    }

    /// The name LTTng's tools print (`CTF 1.8`, `CTF 2`).
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Ctf1_8 => "CTF 1.8",
            TraceFormat::Ctf2 => "CTF 2",
        }
    }

    /// The value of `lttng create --trace-format` (`ctf-1.8`, `ctf-2`).
    pub fn cli_name(self) -> &'static str {
        match self {
            TraceFormat::Ctf1_8 => "ctf-1.8",
            TraceFormat::Ctf2 => "ctf-2",
        }
    }
}

impl std::fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TraceFormat {
    type Err = String;

    /// Accepts `ctf-1.8`/`ctf1.8`/`1.8` and `ctf-2`/`ctf2`/`2` (any case).
    fn from_str(s: &str) -> Result<TraceFormat, String> {
        match s.to_ascii_lowercase().as_str() {
            "ctf-1.8" | "ctf1.8" | "1.8" => Ok(TraceFormat::Ctf1_8),
            "ctf-2" | "ctf2" | "2" => Ok(TraceFormat::Ctf2),
            _ => Err(format!("unknown trace format {s:?} (ctf-1.8 or ctf-2)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numberings() {
        for f in TraceFormat::ALL {
            assert_eq!(TraceFormat::from_control(f.to_control(), "x"), Ok(f));
            assert_eq!(TraceFormat::from_live(f.to_live(), "x"), Ok(f));
            assert_eq!(f.cli_name().parse::<TraceFormat>(), Ok(f));
        }
        assert_eq!(TraceFormat::Ctf2.to_control(), 2);
        assert_eq!(TraceFormat::Ctf2.to_live(), 1);
        assert!(TraceFormat::from_control(0, "x").is_err());
        assert!(TraceFormat::from_control(3, "x").is_err());
        assert!(TraceFormat::from_live(2, "x").is_err());
        assert!("ctf-3".parse::<TraceFormat>().is_err());
    }
}
