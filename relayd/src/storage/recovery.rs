//! Crash recovery: cut the torn tails of the traces the relay was writing when it died.
//!
//! Every directory the relay creates stream files in gets a marker file, [`MARKER`]
//! (`.trelay-open`, hidden: babeltrace2 ignores it), when its first stream file is created. The
//! marker is removed when the trace chunk holding the directory is released, i.e. once every
//! stream that wrote there closed and its data was committed. A marker found at start therefore
//! names a trace whose writer did not finish (crash, SIGKILL, power loss, or a shutdown with
//! sessions still streaming).
//!
//! At start, before listening, [`recover`] walks the output folder for markers and, in each marked
//! directory:
//! 1. every `index/*.idx` file is cut to whole entries (a torn last entry goes), and cut before the
//!    first entry whose packet does not lie inside its data file (with `--durability=none` an index
//!    may reach the disk before its data);
//! 2. every data file with an index is truncated to the end of its last indexed packet: bytes past
//!    it were never committed (packets whose index never came, or a packet cut mid-write);
//! 3. the `metadata` file, when packetized (CTF metadata packets), is cut to whole packets, and
//!    when a CTF 2 JSON text sequence (first byte 0x1E), to whole records (a record torn
//!    mid-JSON goes, see [`super::json_seq`]); TSDL text metadata is left as it is;
//! 4. leftover temporaries of loss sidecar files are removed, then the marker.
//!
//! Everything cut is logged (warn) and counted in the returned [`Report`]. Data files without an
//! index file (snapshot sessions, peers without index support) are left as they are: nothing says
//! where their committed end was. An index file whose header is unreadable is left alone and
//! reported (babeltrace2 rebuilds such an index from the data file).

use super::error::{Result, StorageError};
use super::file::StorageFile;
use super::fs::{Fs, Op};
use std::path::{Path, PathBuf};
use trelay_proto::ctf::index::{IndexEntries, IndexHeader, HEADER_LEN};
use trelay_proto::Decoded;

/// Name of the marker file of a directory being written.
pub const MARKER: &str = ".trelay-open";

/// Directories deeper than this under the output folder are not searched.
const MAX_DEPTH: usize = 32;

/// Entries read per batch.
const BATCH_ENTRIES: usize = 4096;

/// What recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Marked directories recovered.
    pub dirs: usize,
    /// Index files cut.
    pub index_files_cut: usize,
    /// Index entries dropped (pointing past their data file).
    pub index_entries_dropped: u64,
    /// Torn bytes cut from index files (partial entries).
    pub index_bytes_cut: u64,
    /// Data files truncated.
    pub data_files_cut: usize,
    /// Bytes cut from data files.
    pub data_bytes_cut: u64,
    /// Metadata files truncated.
    pub metadata_files_cut: usize,
    /// Files that could not be recovered, and why.
    pub problems: Vec<String>,
}

/// Marks `dir` as being written (creates the marker; durable with `sync`).
pub fn mark(fs: &Fs, dir: &Path, sync: bool) -> Result<()> {
    let f = StorageFile::create(fs, dir.join(MARKER))?;
    if sync {
        f.sync_data()?;
        fs.sync_dir(dir)
            .map_err(|e| StorageError::new(Op::SyncDir, dir, e))?;
    }
    Ok(())
}

/// Removes the marker of `dir` (its writers finished).
pub fn unmark(fs: &Fs, dir: &Path) {
    match fs.remove_file(&dir.join(MARKER)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(dir = %dir.display(), "cannot remove the open-trace marker: {e}");
        }
        _ => {}
    }
}

/// Recovers every marked directory under `output` and logs a summary.
pub fn recover(fs: &Fs, output: &Path) -> Report {
    recover_keeping(fs, output, &|_| false)
}

/// Like [`recover`], but a directory for which `pinned` holds (a session that may still be
/// resumed, see [`crate::session::pins`]) keeps its marker after its cut: it is still open.
pub fn recover_keeping(fs: &Fs, output: &Path, pinned: &dyn Fn(&Path) -> bool) -> Report {
    let mut report = Report::default();
    for dir in marked_dirs(fs, output) {
        report.dirs += 1;
        if let Err(e) = recover_dir(fs, &dir, &mut report, !pinned(&dir)) {
            let msg = format!("{}: {e}", dir.display());
            tracing::error!("crash recovery: {msg}");
            report.problems.push(msg);
        }
    }
    if report.dirs > 0 {
        tracing::warn!(
            dirs = report.dirs,
            index_files_cut = report.index_files_cut,
            index_entries_dropped = report.index_entries_dropped,
            data_files_cut = report.data_files_cut,
            data_bytes_cut = report.data_bytes_cut,
            metadata_files_cut = report.metadata_files_cut,
            problems = report.problems.len(),
            "crash recovery: traces left open by a previous relay were cut back to what was committed"
        );
    }
    report
}

/// Directories under `root` holding a marker (symbolic links are not followed).
pub fn marked_dirs(fs: &Fs, root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = fs.read_dir(&dir) else {
            continue;
        };
        for e in rd {
            if e.meta.is_dir && depth < MAX_DEPTH && e.name != "index" {
                stack.push((dir.join(&e.name), depth + 1));
            } else if !e.meta.is_dir && e.name == MARKER {
                found.push(dir.clone());
            }
        }
    }
    found.sort();
    found
}

/// Recovers one marked directory (see the module docs), then removes its marker.
pub fn recover_dir(fs: &Fs, dir: &Path, report: &mut Report, unmark_after: bool) -> Result<()> {
    let index_dir = dir.join("index");
    if let Ok(rd) = fs.read_dir(&index_dir) {
        let mut names: Vec<String> = rd.into_iter().map(|e| e.name).collect();
        names.sort();
        for name in names {
            let path = index_dir.join(&name);
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs.remove_file(&path);
                continue;
            }
            let Some(stem) = name.strip_suffix(".idx") else {
                continue;
            };
            if let Err(e) = recover_pair(fs, &path, &dir.join(stem), report) {
                let msg = format!("{}: {e}", path.display());
                tracing::error!("crash recovery: {msg}");
                report.problems.push(msg);
            }
        }
    }
    let metadata = dir.join("metadata");
    if fs.stat(&metadata).is_ok_and(|m| !m.is_dir) {
        if let Err(e) = recover_metadata(fs, &metadata, report) {
            let msg = format!("{}: {e}", metadata.display());
            tracing::error!("crash recovery: {msg}");
            report.problems.push(msg);
        }
    }
    if unmark_after {
        unmark(fs, dir);
    }
    Ok(())
}

/// Cuts an index file to its valid entries and its data file to the end of the last one.
fn recover_pair(fs: &Fs, idx_path: &Path, data_path: &Path, report: &mut Report) -> Result<()> {
    let idx = StorageFile::open(fs, idx_path.to_path_buf(), true)?;
    let idx_len = idx.len()?;
    let mut head = [0u8; HEADER_LEN];
    if idx_len < HEADER_LEN as u64 {
        report
            .problems
            .push(format!("{}: no complete header", idx_path.display()));
        return Ok(());
    }
    idx.read_exact_at(&mut head, 0)?;
    let header = match IndexHeader::decode(&head) {
        Ok(Decoded::Done { msg, .. }) => msg,
        Ok(Decoded::Incomplete { .. }) | Err(_) => {
            report
                .problems
                .push(format!("{}: unreadable header", idx_path.display()));
            return Ok(());
        }
    };
    let data = match StorageFile::open(fs, data_path.to_path_buf(), true) {
        Ok(f) => Some(f),
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let data_len = match &data {
        Some(f) => f.len()?,
        None => 0,
    };
    let entry_len = u64::from(header.entry_len);
    let body = idx_len - HEADER_LEN as u64;
    let whole = body / entry_len;
    // Walk the entries: keep the prefix whose packets lie inside the data file.
    let mut kept = 0u64;
    let mut end = 0u64;
    let mut buf = vec![0u8; BATCH_ENTRIES * header.entry_len as usize];
    'outer: while kept < whole {
        let n = (whole - kept).min(BATCH_ENTRIES as u64);
        let bytes = buf.get_mut(..(n * entry_len) as usize).ok_or_else(|| {
            StorageError::corruption(Op::Read, idx_path, "batch larger than its buffer")
        })?;
        let pos = header.entry_position(kept).ok_or_else(|| {
            StorageError::corruption(Op::Read, idx_path, "index position overflows")
        })?;
        idx.read_exact_at(bytes, pos)?;
        for e in IndexEntries::new(header, bytes) {
            let inside = e
                .offset
                .checked_add(e.packet_size / 8)
                .filter(|packet_end| *packet_end <= data_len);
            let Some(packet_end) = inside else {
                break 'outer;
            };
            end = end.max(packet_end);
            kept += 1;
        }
    }
    let keep_len = HEADER_LEN as u64 + kept * entry_len;
    if keep_len < idx_len {
        let dropped = whole - kept;
        let torn = body % entry_len;
        tracing::warn!(
            index = %idx_path.display(),
            entries_kept = kept,
            entries_dropped = dropped,
            torn_bytes = torn,
            "crash recovery: index cut to its valid entries"
        );
        idx.set_len(keep_len)?;
        idx.sync_data()?;
        report.index_files_cut += 1;
        report.index_entries_dropped += dropped;
        report.index_bytes_cut += torn;
    }
    if let Some(data) = data {
        if data_len > end {
            tracing::warn!(
                data = %data_path.display(),
                from = data_len,
                to = end,
                "crash recovery: uncommitted bytes cut from the data file"
            );
            data.set_len(end)?;
            data.sync_data()?;
            report.data_files_cut += 1;
            report.data_bytes_cut += data_len - end;
        }
    }
    Ok(())
}

/// CTF metadata packet header: magic, uuid, checksum, content_size, packet_size, then five bytes.
const METADATA_MAGIC: u32 = 0x75D1_1D57;
const METADATA_HEADER_LEN: u64 = 37;

/// Cuts a packetized metadata file to whole packets (text metadata is left alone).
fn recover_metadata(fs: &Fs, path: &Path, report: &mut Report) -> Result<()> {
    let f = StorageFile::open(fs, path.to_path_buf(), true)?;
    let len = f.len()?;
    let mut magic = [0u8; 4];
    if len == 0 {
        return Ok(());
    }
    if len < 4 {
        f.read_exact_at(&mut magic[..1], 0)?;
        if magic[0] == super::json_seq::RS {
            return recover_json_seq(&f, path, len, report);
        }
        return Ok(());
    }
    f.read_exact_at(&mut magic, 0)?;
    let m = u32::from_le_bytes(magic);
    if magic[0] == super::json_seq::RS {
        return recover_json_seq(&f, path, len, report);
    }
    if m != METADATA_MAGIC && m.swap_bytes() != METADATA_MAGIC {
        return Ok(()); // not packetized
    }
    let mut pos = 0u64;
    let mut head = [0u8; METADATA_HEADER_LEN as usize];
    while pos < len {
        if len - pos < METADATA_HEADER_LEN {
            break;
        }
        f.read_exact_at(&mut head, pos)?;
        let word = |at: usize| -> [u8; 4] {
            let mut w = [0u8; 4];
            if let Some(b) = head.get(at..at + 4) {
                w.copy_from_slice(b);
            }
            w
        };
        let size_bits = if u32::from_le_bytes(word(0)) == METADATA_MAGIC {
            u32::from_le_bytes(word(28))
        } else if u32::from_be_bytes(word(0)) == METADATA_MAGIC {
            u32::from_be_bytes(word(28))
        } else {
            break;
        };
        let size = u64::from(size_bits / 8);
        if size < METADATA_HEADER_LEN || size > len - pos {
            break;
        }
        pos += size;
    }
    if pos < len {
        tracing::warn!(
            metadata = %path.display(),
            from = len,
            to = pos,
            "crash recovery: metadata cut to whole packets"
        );
        f.set_len(pos)?;
        f.sync_data()?;
        report.metadata_files_cut += 1;
    }
    Ok(())
}

/// Cuts a CTF 2 metadata file (JSON text sequence) to its whole records.
fn recover_json_seq(f: &StorageFile, path: &Path, len: u64, report: &mut Report) -> Result<()> {
    let mut units = super::json_seq::Units::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    while pos < len {
        let n = usize::try_from((len - pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = buf.get_mut(..n).ok_or_else(|| {
            StorageError::corruption(Op::Read, path, "read larger than its buffer")
        })?;
        f.read_exact_at(chunk, pos)?;
        units.feed(chunk);
        pos += n as u64;
    }
    let keep = units.whole();
    if keep < len {
        tracing::warn!(
            metadata = %path.display(),
            from = len,
            to = keep,
            "crash recovery: CTF 2 metadata cut to whole records"
        );
        f.set_len(keep)?;
        f.sync_data()?;
        report.metadata_files_cut += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
