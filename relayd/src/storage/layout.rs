//! Where things go under the output root, and which peer-supplied names are acceptable.
//!
//! Session directory (relative to the output root), as lttng-relayd lays it out for 2.11+ peers:
//! - group by host: `HOST/BASE_PATH` when a base path is given, `HOST/NAME` when the name already
//!   carries its creation time (`auto-…` sessions), else `HOST/NAME-YYYYmmdd-HHMMSS`;
//! - group by session: `NAME/HOST-YYYYmmdd-HHMMSS[/BASE_PATH]`.
//!
//! Date-times use the relay's local time zone. Chunk names are `START[-END]-ID` with
//! `YYYYmmddTHHMMSS+ZZZZ` stamps.
//!
//! Names from peers are validated as path components here: a component is non-empty, is not `.`
//! or `..`, does not start with `.`, holds no `/` and no NUL, and is at most 255 bytes. Paths
//! (stream path, base path) are sequences of such components; one leading `/` of a stream path is
//! stripped (pre-2.11 senders send absolute-looking paths).

use crate::config::GroupBy;
use chrono::{Local, TimeZone};
use std::path::PathBuf;

/// Why a peer-supplied name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}: {value:?}")]
pub struct NameError {
    /// Which field.
    pub field: &'static str,
    /// Why.
    pub reason: &'static str,
    /// The value (as received, for the log).
    pub value: String,
}

const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;

/// Validates one path component.
pub fn component<'a>(field: &'static str, value: &'a str) -> Result<&'a str, NameError> {
    let err = |reason| NameError {
        field,
        reason,
        value: value.chars().take(300).collect(),
    };
    if value.is_empty() {
        return Err(err("empty name"));
    }
    if value.len() > NAME_MAX {
        return Err(err("name longer than 255 bytes"));
    }
    if value.starts_with('.') {
        return Err(err("name starts with '.'"));
    }
    if value.contains('/') {
        return Err(err("name contains '/'"));
    }
    if value.contains('\0') {
        return Err(err("name contains NUL"));
    }
    Ok(value)
}

/// Validates a relative path made of valid components (empty is allowed when `allow_empty`);
/// returns the path without its leading `/` and without empty components from doubled slashes
/// rejected.
pub fn relative_path(
    field: &'static str,
    value: &str,
    allow_empty: bool,
) -> Result<String, NameError> {
    let trimmed = value.strip_prefix('/').unwrap_or(value);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return if allow_empty {
            Ok(String::new())
        } else {
            Err(NameError {
                field,
                reason: "empty path",
                value: value.into(),
            })
        };
    }
    if trimmed.len() > PATH_MAX {
        return Err(NameError {
            field,
            reason: "path longer than 4096 bytes",
            value: value.chars().take(300).collect(),
        });
    }
    for c in trimmed.split('/') {
        component(field, c)?;
    }
    Ok(trimmed.to_owned())
}

/// `YYYYmmdd-HHMMSS` of `secs` since the epoch in local time.
pub fn datetime(secs: u64) -> String {
    local(secs).format("%Y%m%d-%H%M%S").to_string()
}

/// `YYYYmmddTHHMMSS+ZZZZ` of `secs` since the epoch in local time.
pub fn iso_basic(secs: u64) -> String {
    local(secs).format("%Y%m%dT%H%M%S%z").to_string()
}

fn local(secs: u64) -> chrono::DateTime<Local> {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    Local
        .timestamp_opt(secs, 0)
        .single()
        .unwrap_or_else(|| Local.timestamp_opt(0, 0).single().unwrap_or_default())
}

/// A chunk's name: `START-ID` while open, `START-END-ID` once closed.
pub fn chunk_name(start: u64, end: Option<u64>, id: u64) -> String {
    match end {
        Some(end) => format!("{}-{}-{}", iso_basic(start), iso_basic(end), id),
        None => format!("{}-{}", iso_basic(start), id),
    }
}

/// What identifies a session directory.
#[derive(Debug, Clone)]
pub struct SessionNames<'a> {
    /// Session name (validated component).
    pub name: &'a str,
    /// Host name (validated component).
    pub hostname: &'a str,
    /// Base path (validated relative path, possibly empty).
    pub base_path: &'a str,
    /// Creation time, seconds since the epoch.
    pub creation_time: u64,
    /// Whether the name already carries the creation time.
    pub name_has_time: bool,
}

/// The session directory relative to the output root.
pub fn session_dir(group: GroupBy, n: &SessionNames<'_>) -> PathBuf {
    let stamp = datetime(n.creation_time);
    let mut p = PathBuf::new();
    match group {
        GroupBy::Host => {
            p.push(n.hostname);
            if !n.base_path.is_empty() {
                p.push(n.base_path);
            } else if n.name_has_time {
                p.push(n.name);
            } else {
                p.push(format!("{}-{}", n.name, stamp));
            }
        }
        GroupBy::Session => {
            p.push(n.name);
            p.push(format!("{}-{}", n.hostname, stamp));
            if !n.base_path.is_empty() {
                p.push(n.base_path);
            }
        }
    }
    p
}

/// `NAME` or `NAME_N` (the `_N` suffix only when tracefiles are size-limited), plus `suffix`.
pub fn stream_file_name(name: &str, tracefile_size: u64, file_no: u64, suffix: &str) -> String {
    if tracefile_size > 0 {
        format!("{name}_{file_no}{suffix}")
    } else {
        format!("{name}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        assert!(component("f", "channel0_0").is_ok());
        for bad in ["", ".", "..", ".hidden", "a/b", "a\0b", &"x".repeat(256)] {
            assert!(component("f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            relative_path("p", "ust/uid/0/64-bit", false).unwrap(),
            "ust/uid/0/64-bit"
        );
        assert_eq!(relative_path("p", "/kernel", false).unwrap(), "kernel");
        assert_eq!(relative_path("p", "", true).unwrap(), "");
        for bad in [
            "",
            "../x",
            "a/../../b",
            "a//b",
            "//etc",
            "a/./b",
            "ust/.tmp_new_chunk",
        ] {
            assert!(relative_path("p", bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn session_dirs() {
        // The capture: creation time 1795414943 is 2026-11-23 06:22:23 UTC.
        std::env::set_var("TZ", "UTC");
        let n = SessionNames {
            name: "fx3754",
            hostname: "vm",
            base_path: "",
            creation_time: 1_795_414_943,
            name_has_time: false,
        };
        assert_eq!(
            session_dir(GroupBy::Host, &n),
            PathBuf::from("vm/fx3754-20261123-062223")
        );
        assert_eq!(
            session_dir(GroupBy::Session, &n),
            PathBuf::from("fx3754/vm-20261123-062223")
        );
        let auto = SessionNames {
            name: "auto-20261123-062223",
            name_has_time: true,
            ..n.clone()
        };
        assert_eq!(
            session_dir(GroupBy::Host, &auto),
            PathBuf::from("vm/auto-20261123-062223")
        );
        let based = SessionNames {
            base_path: "my/base",
            ..n
        };
        assert_eq!(
            session_dir(GroupBy::Host, &based),
            PathBuf::from("vm/my/base")
        );
        assert_eq!(
            chunk_name(1_795_414_943, Some(1_795_414_950), 3),
            "20261123T062223+0000-20261123T062230+0000-3"
        );
        assert_eq!(
            stream_file_name("channel0_0", 0, 0, ".idx"),
            "channel0_0.idx"
        );
        assert_eq!(stream_file_name("channel0_0", 4096, 2, ""), "channel0_0_2");
    }
}
