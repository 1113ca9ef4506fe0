//! A local reader that honours trelayd's OFD locks: while real lttng-sessiond data streams
//! through trelayd, a reader loop asks F_OFD_GETLK where the relay's lock on each data and index
//! file begins (the committed end) and reads only what lies before it. Every index entry it reads
//! points inside the data the locks say is committed. Then trelayd is SIGKILLed: every byte the
//! reader read is still on disk, identical, and still after a restarted trelayd ran crash recovery
//! on the folder.

use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use trelay_integration::lttng::{lttng, sessiond, steady_allocs, Workload};
use trelay_integration::relay::Trelayd;
use trelay_integration::session::small_buffer_session;
use trelay_integration::{files_under, wait_for};
use trelay_relayd::storage::lock::{first_locked, range_locked};

/// What the reader read of one file: its bytes from offset 0.
#[derive(Default)]
struct Seen {
    bytes: BTreeMap<PathBuf, Vec<u8>>,
    /// Committed entries seen per index file (each checked against the data's committed end).
    entries: BTreeMap<PathBuf, usize>,
}

impl Seen {
    fn entries_checked(&self) -> usize {
        self.entries.values().sum()
    }
}

/// One pass over every stream file pair under `root`: read what is committed, check the index.
fn read_committed(root: &Path, seen: &mut Seen) -> Result<()> {
    for rel in files_under(root) {
        let s = rel.to_string_lossy().into_owned();
        let Some(stem) = s.strip_suffix(".idx") else {
            continue;
        };
        let data_rel = PathBuf::from(stem.replace("/index/", "/"));
        let idx = File::open(root.join(&rel))?;
        let data = File::open(root.join(&data_rel))?;
        // The index first: its committed part was committed after the data it points to.
        let idx_bytes = read_file_committed(&idx, seen.bytes.entry(rel.clone()).or_default())?;
        let data_end = match first_locked(&data, 0)? {
            Some(end) => end,
            None => continue, // closed or no relay: nothing proven committed
        };
        if idx_bytes.len() > 16 {
            let entry_len = u32::from_be_bytes(idx_bytes[12..16].try_into()?) as usize;
            let mut n = 0;
            for e in idx_bytes[16..].chunks_exact(entry_len) {
                let offset = u64::from_be_bytes(e[0..8].try_into()?);
                let size = u64::from_be_bytes(e[8..16].try_into()?) / 8;
                ensure!(
                    offset + size <= data_end,
                    "{s}: committed entry [{offset}, +{size}) past the data's committed end {data_end}"
                );
                n += 1;
            }
            seen.entries.insert(rel.clone(), n);
        }
        read_file_committed(&data, seen.bytes.entry(data_rel).or_default())?;
    }
    Ok(())
}

/// Reads `file` from `have.len()` up to where the relay's lock starts; returns all read so far.
fn read_file_committed(file: &File, have: &mut Vec<u8>) -> Result<Vec<u8>> {
    let pos = have.len() as u64;
    if let Some(end) = first_locked(file, pos)? {
        if end > pos {
            ensure!(
                !range_locked(file, pos, end - pos)?,
                "range below the lock is locked"
            );
            let mut buf = vec![0u8; (end - pos) as usize];
            file.read_exact_at(&mut buf, pos)
                .context("reading a committed range")?;
            have.extend_from_slice(&buf);
        }
    }
    Ok(have.clone())
}

fn check_on_disk(root: &Path, seen: &Seen, when: &str) -> Result<()> {
    for (rel, bytes) in &seen.bytes {
        let disk = std::fs::read(root.join(rel)).with_context(|| format!("{when}: {rel:?}"))?;
        ensure!(
            disk.len() >= bytes.len(),
            "{when}: {rel:?} holds {} bytes, the reader read {}",
            disk.len(),
            bytes.len()
        );
        ensure!(
            &disk[..bytes.len()] == bytes.as_slice(),
            "{when}: {rel:?} changed under what the reader read"
        );
    }
    Ok(())
}

#[test]
fn reader_honouring_locks_reads_only_durable_bytes() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-ofd-").tempdir()?;
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(&tmp.path().join("run1"), &out, &[])?;
    let tag = trelay_integration::unique("ofd");
    let work = Workload::python(tmp.path(), &tag)?;
    let guard = small_buffer_session(&format!("{tag}a"), &relay.ports, true, &work)?;
    let mut app = work.spawn(&["-c", &steady_allocs(10, 100)])?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (seen, stop, out) = (seen.clone(), stop.clone(), out.clone());
        std::thread::spawn(move || -> Result<()> {
            while !stop.load(Ordering::Acquire) {
                let mut s = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                read_committed(&out, &mut s)?;
                drop(s);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        })
    };
    let progress = || {
        seen.lock()
            .map(|s| {
                (
                    s.entries_checked(),
                    s.bytes.values().map(Vec::len).sum::<usize>(),
                )
            })
            .unwrap_or((0, 0))
    };
    let waited = wait_for(
        Duration::from_secs(60),
        "the reader reading committed packets",
        || reader.is_finished() || progress().0 >= 20,
    );
    // Kill the relay while the reader is still going.
    relay.kill9()?;
    stop.store(true, Ordering::Release);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    waited.with_context(|| relay.log_tail())?;
    let _ = app.wait();
    let _ = lttng(&["destroy", &guard.0]);
    drop(guard);

    let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let (entries, bytes) = (
        seen.entries_checked(),
        seen.bytes.values().map(Vec::len).sum::<usize>(),
    );
    ensure!(entries > 0 && bytes > 0, "the reader read nothing");
    check_on_disk(&out, &seen, "after SIGKILL")?;
    // Crash recovery of a restarted relay cuts only what was never committed.
    let mut relay = Trelayd::start_with_output(&tmp.path().join("run2"), &out, &[])?;
    check_on_disk(&out, &seen, "after recovery")?;
    relay.stop_ok()?;
    eprintln!(
        "reader: {entries} committed index entries checked against the data lock, {bytes} committed bytes read and still on disk"
    );
    Ok(())
}
