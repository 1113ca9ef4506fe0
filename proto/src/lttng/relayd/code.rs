//! The `ret_code` carried by control-port replies: an LTTng error code (`enum lttng_error_code`).
//! Values this crate has no name for are kept as they are.

/// An LTTng return code as sent in a reply (`u32`, big-endian on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReturnCode(pub u32);

impl ReturnCode {
    /// `LTTNG_OK`: success.
    pub const OK: ReturnCode = ReturnCode(10);
    /// `LTTNG_ERR_UNK`: unknown error; also the reply to an unknown command.
    pub const UNK: ReturnCode = ReturnCode(11);
    /// `LTTNG_ERR_FATAL`: fatal error (CREATE_SESSION failures).
    pub const FATAL: ReturnCode = ReturnCode(25);
    /// `LTTNG_ERR_NOMEM`: out of memory (also used for an unknown chunk at CLOSE_TRACE_CHUNK).
    pub const NOMEM: ReturnCode = ReturnCode(26);
    /// `LTTNG_ERR_INVALID`: invalid argument.
    pub const INVALID: ReturnCode = ReturnCode(97);
    /// `LTTNG_ERR_RELAYD_CONNECT_FAIL`: only used inside the session daemon.
    pub const RELAYD_CONNECT_FAIL: ReturnCode = ReturnCode(104);
    /// `LTTNG_ERR_RELAYD_VERSION_FAIL`: only used inside the session daemon.
    pub const RELAYD_VERSION_FAIL: ReturnCode = ReturnCode(105);
    /// `LTTNG_ERR_INVALID_PROTOCOL`: the peer broke the protocol.
    pub const INVALID_PROTOCOL: ReturnCode = ReturnCode(152);
    /// `LTTNG_ERR_FILE_CREATION_ERROR`: a file could not be created.
    pub const FILE_CREATION_ERROR: ReturnCode = ReturnCode(153);

    /// Whether this is [`ReturnCode::OK`].
    pub fn is_ok(self) -> bool {
        self == ReturnCode::OK
    }

    /// The LTTng name of a known code, `None` for others.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            ReturnCode::OK => "LTTNG_OK",
            ReturnCode::UNK => "LTTNG_ERR_UNK",
            ReturnCode::FATAL => "LTTNG_ERR_FATAL",
            ReturnCode::NOMEM => "LTTNG_ERR_NOMEM",
            ReturnCode::INVALID => "LTTNG_ERR_INVALID",
            ReturnCode::RELAYD_CONNECT_FAIL => "LTTNG_ERR_RELAYD_CONNECT_FAIL",
            ReturnCode::RELAYD_VERSION_FAIL => "LTTNG_ERR_RELAYD_VERSION_FAIL",
            ReturnCode::INVALID_PROTOCOL => "LTTNG_ERR_INVALID_PROTOCOL",
            ReturnCode::FILE_CREATION_ERROR => "LTTNG_ERR_FILE_CREATION_ERROR",
            _ => return None,
        })
    }
}

impl std::fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "code {}", self.0),
        }
    }
}

impl From<u32> for ReturnCode {
    fn from(v: u32) -> Self {
        ReturnCode(v)
    }
}

impl From<ReturnCode> for u32 {
    fn from(c: ReturnCode) -> u32 {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_unknown_values() {
        assert!(ReturnCode(10).is_ok());
        assert!(!ReturnCode::UNK.is_ok());
        assert_eq!(ReturnCode(152).name(), Some("LTTNG_ERR_INVALID_PROTOCOL"));
        assert_eq!(ReturnCode(12345).name(), None);
        assert_eq!(ReturnCode(12345).to_string(), "code 12345");
        assert_eq!(ReturnCode::OK.to_string(), "LTTNG_OK (10)");
    }
}
