//! Byte order of tracer-written structures and a cursor that reads in either order.

use bytes::BufMut;

use crate::codec::Reader;

/// Byte order of a trace (the tracer's native order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first (x86, most ARM).
    Little,
    /// Most significant byte first.
    Big,
}

impl ByteOrder {
    /// The order in which the four bytes `first` read as `magic`, if any.
    pub fn detect(first: [u8; 4], magic: u32) -> Option<ByteOrder> {
        if u32::from_le_bytes(first) == magic {
            Some(ByteOrder::Little)
        } else if u32::from_be_bytes(first) == magic {
            Some(ByteOrder::Big)
        } else {
            None
        }
    }

    pub(crate) fn put_u32(self, buf: &mut impl BufMut, v: u32) {
        match self {
            ByteOrder::Little => buf.put_u32_le(v),
            ByteOrder::Big => buf.put_u32(v),
        }
    }

    pub(crate) fn put_u64(self, buf: &mut impl BufMut, v: u64) {
        match self {
            ByteOrder::Little => buf.put_u64_le(v),
            ByteOrder::Big => buf.put_u64(v),
        }
    }
}

/// A bounds-checked cursor reading integers in a given byte order.
pub(crate) struct OrderedReader<'a> {
    inner: Reader<'a>,
    order: ByteOrder,
}

impl<'a> OrderedReader<'a> {
    pub(crate) fn new(buf: &'a [u8], order: ByteOrder) -> Self {
        OrderedReader {
            inner: Reader::new(buf),
            order,
        }
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.inner.u8()
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.inner.array()
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.inner.array()?;
        Some(match self.order {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        })
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        let b = self.inner.array()?;
        Some(match self.order {
            ByteOrder::Little => u64::from_le_bytes(b),
            ByteOrder::Big => u64::from_be_bytes(b),
        })
    }
}
