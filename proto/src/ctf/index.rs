//! CTF index files (v1.0, v1.1), big-endian throughout.
//!
//! A file is a 16-byte header (magic `0xC1F1DCC1`, major 1, minor 0 or 1, entry length) followed
//! by fixed-size entries, one per packet of the matching data file, in packet order. v1.0 entries
//! are 56 bytes; v1.1 entries add `stream_instance_id` and `packet_seq_num` (72 bytes). Readers
//! honour the header's entry length: an entry may be longer than the fields this crate knows
//! (the extra bytes are skipped), never shorter than its version's fields.
//!
//! Entry fields, in order, all `u64`: offset (bytes, in the data file), packet_size (bits),
//! content_size (bits), timestamp_begin, timestamp_end, events_discarded, stream_id (CTF stream
//! class), then for v1.1 stream_instance_id and packet_seq_num.
//!
//! A file being written can end in the middle of an entry: [`IndexFile::parse`] reports such a
//! torn tail instead of failing.

use bytes::BufMut;

use crate::codec::{DecodeError, Decoded, Reader};

/// Magic number at the start of every index file.
pub const INDEX_MAGIC: u32 = 0xC1F1_DCC1;
/// Size of the index file header.
pub const HEADER_LEN: usize = 16;
/// Size of a v1.0 entry.
pub const ENTRY_LEN_V1_0: u32 = 56;
/// Size of a v1.1 entry.
pub const ENTRY_LEN_V1_1: u32 = 72;

/// Index file version: which entry layout the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexVersion {
    /// v1.0, 56-byte entries (peers with negotiated minor < 8).
    V1_0,
    /// v1.1, 72-byte entries (peers with negotiated minor >= 8).
    V1_1,
}

impl IndexVersion {
    /// The version a relay writes for a peer with the given negotiated protocol minor.
    pub fn for_minor(minor: u32) -> Self {
        if minor >= 8 {
            IndexVersion::V1_1
        } else {
            IndexVersion::V1_0
        }
    }

    /// The index minor version number written in the header.
    pub fn minor(self) -> u32 {
        match self {
            IndexVersion::V1_0 => 0,
            IndexVersion::V1_1 => 1,
        }
    }

    /// Entry length in bytes.
    pub fn entry_len(self) -> u32 {
        match self {
            IndexVersion::V1_0 => ENTRY_LEN_V1_0,
            IndexVersion::V1_1 => ENTRY_LEN_V1_1,
        }
    }
}

/// One index entry: where a packet sits in its data file and what its context says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IndexEntry {
    /// Byte offset of the packet in the data file (`u64::MAX` marks a lost packet).
    pub offset: u64,
    /// Packet size in bits, padding included.
    pub packet_size: u64,
    /// Content size in bits.
    pub content_size: u64,
    /// Timestamp of the first event (clock cycles).
    pub timestamp_begin: u64,
    /// Timestamp of the last event (clock cycles).
    pub timestamp_end: u64,
    /// Cumulative count of events the tracer discarded.
    pub events_discarded: u64,
    /// CTF stream class id.
    pub stream_id: u64,
    /// CTF stream instance id (v1.1; `u64::MAX` when unknown).
    pub stream_instance_id: u64,
    /// CTF packet sequence number (v1.1; `u64::MAX` when unknown).
    pub packet_seq_num: u64,
}

impl IndexEntry {
    /// Appends the entry in the layout of `version`.
    pub fn encode(&self, version: IndexVersion, buf: &mut impl BufMut) {
        buf.put_u64(self.offset);
        buf.put_u64(self.packet_size);
        buf.put_u64(self.content_size);
        buf.put_u64(self.timestamp_begin);
        buf.put_u64(self.timestamp_end);
        buf.put_u64(self.events_discarded);
        buf.put_u64(self.stream_id);
        if version == IndexVersion::V1_1 {
            buf.put_u64(self.stream_instance_id);
            buf.put_u64(self.packet_seq_num);
        }
    }
}

/// Appends an index file header for `version`.
pub fn encode_header(version: IndexVersion, buf: &mut impl BufMut) {
    buf.put_u32(INDEX_MAGIC);
    buf.put_u32(1);
    buf.put_u32(version.minor());
    buf.put_u32(version.entry_len());
}

/// Largest entry length accepted from a header (anything larger is not a sane index file).
pub const MAX_ENTRY_LEN: u32 = 4096;

/// A decoded index file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexHeader {
    /// Entry layout version.
    pub version: IndexVersion,
    /// Size of each entry in bytes (at least the version's entry length).
    pub entry_len: u32,
}

impl IndexHeader {
    /// The header a writer of `version` produces.
    pub fn new(version: IndexVersion) -> IndexHeader {
        IndexHeader {
            version,
            entry_len: version.entry_len(),
        }
    }

    /// Decodes the 16-byte header. Errors: wrong magic, major other than 1, minor other than 0
    /// or 1, entry length shorter than the version's fields or above [`MAX_ENTRY_LEN`].
    pub fn decode(buf: &[u8]) -> Result<Decoded<IndexHeader>, DecodeError> {
        let mut r = Reader::new(buf);
        let (Some(magic), Some(major), Some(minor), Some(entry_len)) =
            (r.u32(), r.u32(), r.u32(), r.u32())
        else {
            return Ok(Decoded::Incomplete { needed: HEADER_LEN });
        };
        if magic != INDEX_MAGIC {
            return Err(DecodeError::BadMagic {
                what: "index file header",
                expected: INDEX_MAGIC,
                found: magic,
            });
        }
        if major != 1 {
            return Err(DecodeError::InvalidValue {
                field: "index.major",
                value: u64::from(major),
            });
        }
        let version = match minor {
            0 => IndexVersion::V1_0,
            1 => IndexVersion::V1_1,
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "index.minor",
                    value: u64::from(minor),
                })
            }
        };
        if entry_len < version.entry_len() || entry_len > MAX_ENTRY_LEN {
            return Err(DecodeError::InvalidValue {
                field: "index.entry_len",
                value: u64::from(entry_len),
            });
        }
        Ok(Decoded::Done {
            msg: IndexHeader { version, entry_len },
            used: HEADER_LEN,
        })
    }

    /// Appends the 16-byte header (with this header's entry length).
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32(INDEX_MAGIC);
        buf.put_u32(1);
        buf.put_u32(self.version.minor());
        buf.put_u32(self.entry_len);
    }

    /// Byte position of entry number `n` in the file, if it fits in a `u64`.
    pub fn entry_position(&self, n: u64) -> Option<u64> {
        n.checked_mul(u64::from(self.entry_len))?
            .checked_add(HEADER_LEN as u64)
    }
}

impl IndexEntry {
    /// Decodes one entry laid out as `header` says, from the start of `buf`; consumes
    /// `header.entry_len` bytes. v1.0 entries get `u64::MAX` for the v1.1-only fields.
    pub fn decode(header: &IndexHeader, buf: &[u8]) -> Decoded<IndexEntry> {
        let len = usize::try_from(header.entry_len).unwrap_or(usize::MAX);
        let Some(bytes) = buf.get(..len) else {
            return Decoded::Incomplete { needed: len };
        };
        let mut r = Reader::new(bytes);
        let mut next = || r.u64();
        let known = (|| {
            let mut e = IndexEntry {
                offset: next()?,
                packet_size: next()?,
                content_size: next()?,
                timestamp_begin: next()?,
                timestamp_end: next()?,
                events_discarded: next()?,
                stream_id: next()?,
                stream_instance_id: u64::MAX,
                packet_seq_num: u64::MAX,
            };
            if header.version == IndexVersion::V1_1 {
                e.stream_instance_id = next()?;
                e.packet_seq_num = next()?;
            }
            Some(e)
        })();
        match known {
            Some(msg) => Decoded::Done { msg, used: len },
            // Only reachable with an entry_len below the version's size, which
            // `IndexHeader::decode` refuses; report the size the layout needs.
            None => Decoded::Incomplete {
                needed: header.version.entry_len() as usize,
            },
        }
    }
}

/// A whole index file: header, complete entries, and the size of a torn tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The header.
    pub header: IndexHeader,
    /// Every complete entry, in file order.
    pub entries: Vec<IndexEntry>,
    /// Bytes after the last complete entry (a partially written entry); 0 for a clean file.
    pub torn_tail: usize,
}

impl IndexFile {
    /// Parses the contents of an index file. A file shorter than the header is an error
    /// ([`DecodeError::BadLength`]); a partial last entry is reported in `torn_tail`.
    pub fn parse(buf: &[u8]) -> Result<IndexFile, DecodeError> {
        let header = match IndexHeader::decode(buf)? {
            Decoded::Done { msg, .. } => msg,
            Decoded::Incomplete { .. } => {
                return Err(DecodeError::BadLength {
                    what: "index file header",
                    expected: HEADER_LEN as u64,
                    actual: buf.len() as u64,
                })
            }
        };
        let body = buf.get(HEADER_LEN..).unwrap_or(&[]);
        let iter = IndexEntries::new(header, body);
        let torn_tail = iter.torn_tail();
        Ok(IndexFile {
            header,
            entries: iter.collect(),
            torn_tail,
        })
    }

    /// Appends the header and every entry (entries longer than the version's layout are written
    /// with zero filler up to `entry_len`).
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.header.encode(buf);
        let extra = (self.header.entry_len as usize)
            .saturating_sub(self.header.version.entry_len() as usize);
        for e in &self.entries {
            e.encode(self.header.version, buf);
            buf.put_bytes(0, extra);
        }
    }
}

/// An iterator over the complete entries of an index file body (the bytes after the header).
/// Allocation-free.
#[derive(Debug, Clone)]
pub struct IndexEntries<'a> {
    header: IndexHeader,
    body: &'a [u8],
}

impl<'a> IndexEntries<'a> {
    /// Iterates the entries of `body` (the file without its 16-byte header).
    pub fn new(header: IndexHeader, body: &'a [u8]) -> Self {
        IndexEntries { header, body }
    }

    /// Bytes left over after the last complete entry.
    pub fn torn_tail(&self) -> usize {
        let len = self.header.entry_len as usize;
        self.body.len().checked_rem(len).unwrap_or(self.body.len())
    }
}

impl Iterator for IndexEntries<'_> {
    type Item = IndexEntry;

    fn next(&mut self) -> Option<IndexEntry> {
        match IndexEntry::decode(&self.header, self.body) {
            Decoded::Done { msg, used } => {
                self.body = self.body.get(used..).unwrap_or(&[]);
                Some(msg)
            }
            Decoded::Incomplete { .. } => None,
        }
    }
}
