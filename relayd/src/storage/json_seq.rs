//! Whole units of a metadata stream, found as its bytes arrive.
//!
//! A CTF 1.8 metadata stream (TSDL text, or CTF metadata packets) is committed in whole
//! SEND_METADATA units: a commit never falls inside one. A CTF 2 metadata stream is a JSON text
//! sequence (RFC 7464): records, each an RS byte (0x1E) then one JSON object. LTTng 2.15's
//! consumer cuts it into ring-buffer packets without regard to records when the session is not
//! live (a 4 KiB sub-buffer carries the end of one record and the start of the next), so a
//! SEND_METADATA unit may end inside a record. [`Units`] follows the stream's structure byte by
//! byte (string, escape, nesting depth — no parsing) and tells where the last whole record ends,
//! so the relay commits, serves to live viewers and keeps after a crash only whole records.
//!
//! The format is told by the stream's first byte: RS means a JSON text sequence, anything else
//! means CTF 1.8. An RS byte always starts a record (RFC 7464), wherever it appears, so a
//! malformed record never holds back the ones after it.

/// RFC 7464 record separator: the first byte of every CTF 2 metadata record.
pub const RS: u8 = 0x1E;

/// The format of a metadata stream, from its first byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// No byte seen yet.
    #[default]
    Unknown,
    /// CTF 1.8 (TSDL text or metadata packets): every SEND_METADATA unit is whole.
    Ctf1,
    /// CTF 2: a JSON text sequence, whole at record boundaries.
    JsonSeq,
}

/// Tracks where the whole units of one metadata file end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Units {
    format: Format,
    /// Bytes seen (the file's length).
    pos: u64,
    /// End of the last whole unit.
    whole: u64,
    /// Nesting depth of the current record (objects and arrays open).
    depth: u32,
    /// Inside a JSON string.
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escape: bool,
}

impl Units {
    /// A stream whose file already holds `len` whole bytes, the first of them `first`
    /// (a reopened file, cut to whole units by crash recovery).
    pub fn resumed(len: u64, first: Option<u8>) -> Units {
        let format = match first {
            None => Format::Unknown,
            Some(RS) => Format::JsonSeq,
            Some(_) => Format::Ctf1,
        };
        Units {
            format,
            pos: len,
            whole: len,
            ..Units::default()
        }
    }

    /// The stream's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// End of the last whole unit: what may be committed.
    pub fn whole(&self) -> u64 {
        self.whole
    }

    /// Bytes seen.
    pub fn len(&self) -> u64 {
        self.pos
    }

    /// Whether no byte was seen.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Takes one SEND_METADATA unit: `bytes` then `padding` zero bytes. Returns the new end of
    /// the last whole unit.
    pub fn unit(&mut self, bytes: &[u8], padding: u64) -> u64 {
        self.feed(bytes);
        // Zero bytes change no structure: they are neither RS, quote, backslash nor bracket.
        self.escape = self.escape && padding == 0;
        self.pos = self.pos.saturating_add(padding);
        if self.format != Format::JsonSeq {
            self.whole = self.pos;
        }
        self.whole
    }

    /// Takes bytes of the stream (recovery reads a file through this; a SEND_METADATA unit goes
    /// through [`Units::unit`]).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos == 0 && self.format == Format::Unknown {
            if let Some(&first) = bytes.first() {
                self.format = if first == RS {
                    Format::JsonSeq
                } else {
                    Format::Ctf1
                };
            }
        }
        if self.format != Format::JsonSeq {
            self.pos = self.pos.saturating_add(bytes.len() as u64);
            return;
        }
        for (i, &b) in bytes.iter().enumerate() {
            let at = self.pos.saturating_add(i as u64);
            if b == RS {
                // A record starts here: whatever came before is over.
                self.whole = at;
                self.depth = 0;
                self.in_string = false;
                self.escape = false;
                continue;
            }
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.whole = at.saturating_add(1);
                    }
                }
                _ => {}
            }
        }
        self.pos = self.pos.saturating_add(bytes.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(body: &str) -> Vec<u8> {
        let mut v = vec![RS];
        v.extend_from_slice(body.as_bytes());
        v
    }

    fn sequence() -> Vec<u8> {
        let mut v = record("{\n  \"type\": \"preamble\",\n  \"version\": 2\n}");
        v.extend(record(
            "{\"type\": \"trace-class\", \"x\": [1, {\"s\": \"a}]\\\"{\"}]}",
        ));
        v.extend(record(
            "{\"type\": \"event-record-class\", \"name\": \"\\\\\"}\n",
        ));
        v
    }

    /// Record ends (exclusive) of `sequence()`.
    fn ends(seq: &[u8]) -> Vec<u64> {
        let mut starts: Vec<u64> = seq
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == RS)
            .map(|(i, _)| i as u64)
            .skip(1)
            .collect();
        // The last record ends at its closing brace (the newline after it is not part of it).
        starts.push(seq.len() as u64 - 1);
        starts
    }

    #[test]
    fn text_metadata_is_whole_at_every_unit() {
        let mut u = Units::default();
        assert_eq!(u.unit(b"/* CTF 1.8 */ trace {", 0), 21);
        assert_eq!(u.format(), Format::Ctf1);
        assert_eq!(u.unit(b" major = 1; ", 3), 36);
        assert_eq!(u.whole(), u.len());
    }

    #[test]
    fn json_records_are_whole_only_once_closed() {
        let seq = sequence();
        let mut u = Units::default();
        assert_eq!(u.unit(&seq[..10], 0), 0);
        assert_eq!(u.format(), Format::JsonSeq);
        let first_end = ends(&seq)[0];
        // Up to the closing brace of the first record.
        assert_eq!(u.unit(&seq[10..first_end as usize], 0), first_end);
        // The next RS keeps it there; a torn second record does not move it.
        assert_eq!(
            u.unit(&seq[first_end as usize..first_end as usize + 30], 0),
            first_end
        );
        assert_eq!(
            u.unit(&seq[first_end as usize + 30..], 0),
            seq.len() as u64 - 1
        );
    }

    #[test]
    fn brackets_inside_strings_and_escapes_do_not_count() {
        let mut u = Units::default();
        u.feed(&record("{\"a\": \"}}}\\\"]]\""));
        assert_eq!(u.whole(), 0);
        u.feed(b"}");
        assert_eq!(u.whole(), u.len());
    }

    #[test]
    fn a_malformed_record_ends_at_the_next_rs() {
        let mut u = Units::default();
        u.feed(&record("{\"a\": [1, 2"));
        assert_eq!(u.whole(), 0);
        let at = u.len();
        u.feed(&record("{}"));
        assert_eq!(u.whole(), at + 3);
        // An RS inside a string still starts a record.
        let mut u = Units::default();
        u.feed(&record("{\"a\": \"x"));
        let at = u.len();
        u.feed(&[RS, b'{', b'}']);
        assert_eq!(u.whole(), at + 3);
    }

    #[test]
    fn padding_keeps_the_structure() {
        let mut u = Units::default();
        let r = record("{\"a\": 1}");
        assert_eq!(u.unit(&r, 100), r.len() as u64);
        assert_eq!(u.len(), r.len() as u64 + 100);
        u.unit(&record("{\"b\": \""), 7);
        let at = u.len();
        u.unit(b"}\"}", 0);
        assert_eq!(u.whole(), at + 3);
    }

    #[test]
    fn resumed_streams_go_on() {
        let mut u = Units::resumed(50, Some(RS));
        assert_eq!(u.format(), Format::JsonSeq);
        u.unit(&record("{}"), 0);
        assert_eq!(u.whole(), 53);
        let mut t = Units::resumed(50, Some(b'/'));
        assert_eq!(t.unit(b"x", 0), 51);
        assert_eq!(Units::resumed(0, None).format(), Format::Unknown);
    }

    #[test]
    fn deep_nesting_saturates_and_the_next_record_commits() {
        let mut u = Units::default();
        u.feed(&[RS]);
        u.feed(&vec![b'['; 100_000]);
        assert_eq!(u.whole(), 0);
        let at = u.len();
        u.feed(&record("{}"));
        assert_eq!(u.whole(), at + 3);
    }

    #[test]
    fn lttng_215s_non_live_units_commit_whole_records() {
        // The real capture's four SEND_METADATA units (see testdata/README.md).
        let meta = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/ctf2/metadata"
        ))
        .unwrap();
        let starts: Vec<u64> = meta
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == RS)
            .map(|(i, _)| i as u64)
            .collect();
        let mut u = Units::default();
        let mut from = 0;
        for len in [4056, 4056, 4056, 1485] {
            let whole = u.unit(&meta[from..from + len], 0);
            from += len;
            let want = if from == meta.len() {
                from as u64
            } else {
                starts
                    .iter()
                    .copied()
                    .filter(|s| *s <= from as u64)
                    .max()
                    .unwrap()
            };
            assert_eq!(whole, want);
            assert!(
                whole < from as u64 || from == meta.len(),
                "each unit ends mid-record"
            );
        }
        assert_eq!(u.whole(), meta.len() as u64);
    }

    proptest! {
        /// However the stream is cut into units, the whole end after each one is the end of the
        /// last record closed in what was fed so far.
        #[test]
        fn any_cut_gives_record_ends(cuts in proptest::collection::vec(0usize..200, 0..12)) {
            let seq = sequence();
            let record_ends = ends(&seq);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (seq.len() + 1)).collect();
            points.push(seq.len());
            points.sort_unstable();
            let mut u = Units::default();
            let mut from = 0;
            for p in points {
                let whole = u.unit(&seq[from..p], 0);
                from = p;
                let want = record_ends.iter().copied().filter(|e| *e <= p as u64).max().unwrap_or(0);
                // A record is whole at its closing brace; the next RS confirms the same end.
                prop_assert_eq!(whole, want);
            }
        }
    }
}
