//! The mirror on disk: the layout of a relay's output, rooted at the output folder.
//!
//! ```text
//! DIR/<stream path>/metadata
//! DIR/<stream path>/<channel>              packets, back to back, as received
//! DIR/<stream path>/index/<channel>.idx    v1.1 index, offsets in the mirror's own file
//! ```
//!
//! A packet is written whole before its index entry, so a reader (babeltrace2) opening the
//! mirror at any moment finds every indexed packet complete. Names from the relay are validated
//! as path components: no absolute path, no `..`, no empty or dot component, no NUL.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use trelay_proto::ctf::index::{encode_header, IndexEntry, IndexVersion};

use super::LiveError;

/// Checks one path component from the relay.
pub fn safe_component(c: &str) -> Result<&str, String> {
    if c.is_empty() || c == "." || c == ".." || c.contains('/') || c.contains('\0') {
        return Err(format!("unsafe path component {c:?}"));
    }
    Ok(c)
}

/// Checks a relative path from the relay (one leading `/` is tolerated, as LTTng does).
pub fn safe_rel_path(p: &str) -> Result<PathBuf, String> {
    let p = p.strip_prefix('/').unwrap_or(p);
    let mut out = PathBuf::new();
    for c in p.split('/') {
        out.push(safe_component(c).map_err(|e| format!("path {p:?}: {e}"))?);
    }
    Ok(out)
}

fn create(path: &Path) -> Result<File, LiveError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| LiveError::Write(parent.to_owned(), e))?;
    }
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| LiveError::Write(path.to_owned(), e))
}

/// The metadata file of one mirrored trace.
#[derive(Debug)]
pub struct MetadataOut {
    path: PathBuf,
    file: File,
    /// Bytes written so far.
    pub len: u64,
}

impl MetadataOut {
    /// Creates (truncates) `dir/metadata`.
    pub fn create(dir: &Path) -> Result<MetadataOut, LiveError> {
        let path = dir.join("metadata");
        let file = create(&path)?;
        Ok(MetadataOut { path, file, len: 0 })
    }

    /// Appends metadata bytes as served.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), LiveError> {
        self.file
            .write_all(bytes)
            .map_err(|e| LiveError::Write(self.path.clone(), e))?;
        self.len = self.len.saturating_add(bytes.len() as u64);
        Ok(())
    }
}

/// The data and index files of one mirrored stream.
#[derive(Debug)]
pub struct StreamOut {
    data_path: PathBuf,
    index_path: PathBuf,
    data: File,
    index: File,
    /// Size of the data file: where the next packet goes.
    pub offset: u64,
    entry: Vec<u8>,
}

impl StreamOut {
    /// Creates (truncates) `dir/<channel>` and `dir/index/<channel>.idx` (with its header).
    pub fn create(dir: &Path, channel: &str) -> Result<StreamOut, LiveError> {
        let data_path = dir.join(channel);
        let index_path = dir.join("index").join(format!("{channel}.idx"));
        let data = create(&data_path)?;
        let mut index = create(&index_path)?;
        let mut header = Vec::with_capacity(16);
        encode_header(IndexVersion::V1_1, &mut header);
        index
            .write_all(&header)
            .map_err(|e| LiveError::Write(index_path.clone(), e))?;
        Ok(StreamOut {
            data_path,
            index_path,
            data,
            index,
            offset: 0,
            entry: Vec::with_capacity(72),
        })
    }

    /// Appends `packet`, then its index entry (with the packet's offset in this file); returns
    /// the entry written.
    pub fn append(
        &mut self,
        packet: &[u8],
        mut entry: IndexEntry,
    ) -> Result<IndexEntry, LiveError> {
        self.data
            .write_all(packet)
            .map_err(|e| LiveError::Write(self.data_path.clone(), e))?;
        entry.offset = self.offset;
        self.offset = self.offset.saturating_add(packet.len() as u64);
        self.entry.clear();
        entry.encode(IndexVersion::V1_1, &mut self.entry);
        self.index
            .write_all(&self.entry)
            .map_err(|e| LiveError::Write(self.index_path.clone(), e))?;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            safe_rel_path("ust/uid/0/64-bit").unwrap(),
            PathBuf::from("ust/uid/0/64-bit")
        );
        assert_eq!(safe_rel_path("/kernel").unwrap(), PathBuf::from("kernel"));
        for bad in ["", "a//b", "../x", "a/./b", "//abs", "a/b/..", "a\0b"] {
            assert!(safe_rel_path(bad).is_err(), "{bad:?}");
        }
        assert!(safe_component("channel0_0").is_ok());
        assert!(safe_component("a/b").is_err());
    }

    #[test]
    fn packet_then_entry() {
        let d = tempfile::tempdir().unwrap();
        let mut s = StreamOut::create(d.path(), "ch_0").unwrap();
        let e = s
            .append(
                &[1u8; 100],
                IndexEntry {
                    offset: 777,
                    packet_size: 800,
                    ..IndexEntry::default()
                },
            )
            .unwrap();
        assert_eq!(e.offset, 0);
        let e = s
            .append(
                &[2u8; 50],
                IndexEntry {
                    offset: 5,
                    packet_size: 400,
                    ..IndexEntry::default()
                },
            )
            .unwrap();
        assert_eq!(e.offset, 100);
        let idx = std::fs::read(d.path().join("index/ch_0.idx")).unwrap();
        let f = trelay_proto::ctf::index::IndexFile::parse(&idx).unwrap();
        assert_eq!(
            f.entries.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [0, 100]
        );
        assert_eq!(std::fs::metadata(d.path().join("ch_0")).unwrap().len(), 150);
    }
}
