//! Field readers shared by the control-port decoders: every short read, oversized length, bad
//! flag or unterminated string becomes a typed [`DecodeError`] naming the field.

use bytes::BufMut;

use crate::codec::{str_from_counted, DecodeError, Reader};

/// A [`Reader`] whose reads fail with a [`DecodeError::PastEnd`] naming the field.
pub(crate) struct Fields<'a> {
    r: Reader<'a>,
}

impl<'a> Fields<'a> {
    /// Fields read from the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Fields {
            r: Reader::new(buf),
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.r.position()
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.r.remaining()
    }

    fn past_end(&self, field: &'static str, declared: usize) -> DecodeError {
        DecodeError::PastEnd {
            field,
            declared: declared as u64,
            available: self.r.remaining() as u64,
        }
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let err = self.past_end(field, n);
        self.r.bytes(n).ok_or(err)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let err = self.past_end(field, N);
        self.r.array().ok_or(err)
    }

    /// A `u8`.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    /// A big-endian `u32`.
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A `u8` that must be 0 or 1.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        let v = self.u8(field)?;
        bool_from(u64::from(v), field)
    }

    /// A counted string of `len` bytes (NUL included), `len` capped at `max` before any read.
    pub(crate) fn counted_str(
        &mut self,
        len: u32,
        max: u32,
        field: &'static str,
    ) -> Result<String, DecodeError> {
        check_cap(u64::from(len), u64::from(max), field)?;
        let n = usize::try_from(len).map_err(|_| self.past_end(field, usize::MAX))?;
        str_from_counted(self.bytes(n, field)?, field)
    }
}

/// A 0/1 value as a boolean; anything else is [`DecodeError::InvalidValue`].
pub(crate) fn bool_from(v: u64, field: &'static str) -> Result<bool, DecodeError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(DecodeError::InvalidValue { field, value }),
    }
}

/// [`DecodeError::TooLong`] unless `value <= max`.
pub(crate) fn check_cap(value: u64, max: u64, field: &'static str) -> Result<(), DecodeError> {
    if value > max {
        return Err(DecodeError::TooLong { field, value, max });
    }
    Ok(())
}

/// [`DecodeError::BadLength`] unless the payload is exactly `expected` bytes.
pub(crate) fn exact_len(
    what: &'static str,
    payload: &[u8],
    expected: usize,
) -> Result<(), DecodeError> {
    if payload.len() != expected {
        return Err(DecodeError::BadLength {
            what,
            expected: expected as u64,
            actual: payload.len() as u64,
        });
    }
    Ok(())
}

/// [`DecodeError::BadLength`] if bytes are left after an exact layout.
pub(crate) fn no_trailing(what: &'static str, f: &Fields<'_>) -> Result<(), DecodeError> {
    if f.remaining() != 0 {
        return Err(DecodeError::BadLength {
            what,
            expected: f.position() as u64,
            actual: (f.position() as u64).saturating_add(f.remaining() as u64),
        });
    }
    Ok(())
}

/// Wire length of a counted string: its bytes plus the NUL.
pub(crate) fn counted_len(s: &str) -> usize {
    s.len().saturating_add(1)
}

/// Wire length of a counted string as the `u32` length field (saturating; encoders only).
pub(crate) fn counted_len_u32(s: &str) -> u32 {
    u32::try_from(counted_len(s)).unwrap_or(u32::MAX)
}

/// Appends a counted string: its bytes, then a NUL.
pub(crate) fn put_counted(buf: &mut impl BufMut, s: &str) {
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
}
