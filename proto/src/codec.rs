//! Shared decoding machinery: the decode outcome, the error type and a bounds-checked reader.

use bytes::BufMut;

/// Outcome of a successful decode attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// The slice holds only part of the message; at least `needed` bytes in total are required
    /// (counted from the start of the slice) before trying again.
    Incomplete {
        /// Total number of bytes the decoder needs to see, from the start of the slice.
        needed: usize,
    },
    /// A whole message was decoded.
    Done {
        /// The decoded message.
        msg: T,
        /// How many bytes from the start of the slice the message occupied.
        used: usize,
    },
}

impl<T> Decoded<T> {
    /// Maps the message of a [`Decoded::Done`], keeping `used`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        match self {
            Decoded::Incomplete { needed } => Decoded::Incomplete { needed },
            Decoded::Done { msg, used } => Decoded::Done { msg: f(msg), used },
        }
    }

    /// The message, if one was decoded.
    pub fn message(self) -> Option<T> {
        match self {
            Decoded::Incomplete { .. } => None,
            Decoded::Done { msg, .. } => Some(msg),
        }
    }
}

/// Why bytes could not be decoded. Every variant names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A length declared by the peer exceeds the cap for that field.
    #[error("{field}: declared length {value} exceeds the maximum {max}")]
    TooLong {
        /// The field carrying the length.
        field: &'static str,
        /// The declared value.
        value: u64,
        /// The cap.
        max: u64,
    },
    /// A payload's size does not match what its layout requires.
    #[error("{what}: payload is {actual} bytes, expected {expected}")]
    BadLength {
        /// The message or structure.
        what: &'static str,
        /// What the layout requires.
        expected: u64,
        /// What was received.
        actual: u64,
    },
    /// Declared lengths reach past the end of the payload that carries them.
    #[error(
        "{field}: declared length {declared} reaches past the payload ({available} bytes left)"
    )]
    PastEnd {
        /// The field at fault.
        field: &'static str,
        /// The declared length.
        declared: u64,
        /// Bytes actually available.
        available: u64,
    },
    /// A string field lacks its terminating NUL.
    #[error("{field}: string is not NUL-terminated")]
    Unterminated {
        /// The field at fault.
        field: &'static str,
    },
    /// A string field is not valid UTF-8.
    #[error("{field}: string is not valid UTF-8")]
    NotUtf8 {
        /// The field at fault.
        field: &'static str,
    },
    /// A command number this protocol does not know.
    #[error("unknown command {0}")]
    UnknownCommand(u32),
    /// A command that exists but is not valid with the negotiated protocol version.
    #[error("command {cmd} is not valid with protocol minor {minor}")]
    NotInVersion {
        /// The command number.
        cmd: u32,
        /// The negotiated minor.
        minor: u32,
    },
    /// A field holds a value outside its domain (an enum, a flag, a boolean).
    #[error("{field}: invalid value {value}")]
    InvalidValue {
        /// The field at fault.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A magic number did not match.
    #[error("{what}: bad magic {found:#010x}, expected {expected:#010x}")]
    BadMagic {
        /// The structure.
        what: &'static str,
        /// The expected magic.
        expected: u32,
        /// What was found.
        found: u32,
    },
}

/// A bounds-checked big-endian cursor over a byte slice. Every read returns `None` when the slice
/// is too short, so decoders turn a short read into [`Decoded::Incomplete`] or an error.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, advancing past them.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    /// A `u8`.
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// The rest of the slice.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }
}

/// Reads a NUL-terminated string from a field of exactly `field.len()` bytes: the text runs up to
/// the first NUL, which must exist inside the field; bytes after it are ignored (they need not be
/// zero).
pub fn str_from_fixed(field: &[u8], name: &'static str) -> Result<String, DecodeError> {
    let end = field
        .iter()
        .position(|&b| b == 0)
        .ok_or(DecodeError::Unterminated { field: name })?;
    let text = field
        .get(..end)
        .ok_or(DecodeError::Unterminated { field: name })?;
    std::str::from_utf8(text)
        .map(str::to_owned)
        .map_err(|_| DecodeError::NotUtf8 { field: name })
}

/// Reads a string that occupies exactly `field` (its declared length, NUL included): the last byte
/// must be NUL and no NUL may appear before it.
pub fn str_from_counted(field: &[u8], name: &'static str) -> Result<String, DecodeError> {
    match field.split_last() {
        Some((0, text)) if !text.contains(&0) => std::str::from_utf8(text)
            .map(str::to_owned)
            .map_err(|_| DecodeError::NotUtf8 { field: name }),
        _ => Err(DecodeError::Unterminated { field: name }),
    }
}

/// Writes `s` into a fixed field of `width` bytes: the text, then zeros. The text is truncated so
/// that at least one NUL always fits.
pub fn put_fixed_str(buf: &mut impl BufMut, s: &str, width: usize) {
    let text = s.as_bytes();
    let n = text.len().min(width.saturating_sub(1));
    buf.put_slice(text.get(..n).unwrap_or(&[]));
    buf.put_bytes(0, width.saturating_sub(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_short_reads() {
        let mut r = Reader::new(&[0, 0, 0, 5, 1]);
        assert_eq!(r.u32(), Some(5));
        assert_eq!(r.u32(), None);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u8(), None);
        assert_eq!(r.bytes(usize::MAX), None);
    }

    #[test]
    fn fixed_strings() {
        assert_eq!(str_from_fixed(b"ab\0garbage", "f").unwrap(), "ab");
        assert!(matches!(
            str_from_fixed(b"abc", "f"),
            Err(DecodeError::Unterminated { .. })
        ));
        let mut v = Vec::new();
        put_fixed_str(&mut v, "abcdef", 4);
        assert_eq!(v, b"abc\0");
    }

    #[test]
    fn counted_strings() {
        assert_eq!(str_from_counted(b"vm\0", "f").unwrap(), "vm");
        assert!(str_from_counted(b"v\0m\0", "f").is_err());
        assert!(str_from_counted(b"vm", "f").is_err());
        assert!(str_from_counted(b"", "f").is_err());
    }
}
