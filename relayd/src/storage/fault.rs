//! A fault-injecting [`FileSystem`] for tests: it forwards to another file system and fails the
//! operations its rules choose.
//!
//! A [`Rule`] names an operation, a path fragment, how many matching calls to let through first,
//! how many to fail (or all of them until the rule is cleared), and how to fail: an errno, or a
//! short write that takes only some bytes (what a disk filling up mid-write looks like). Rules can
//! be added and cleared while the relay runs, so a test can fill the disk and free it again.

use super::fs::{DirEntry, FileSystem, Fs, Meta, Op};
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How a matching call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with this errno (for example `libc::ENOSPC`, `libc::EIO`).
    Errno(i32),
    /// Writes and splices take at most this many bytes (and at least one), then report success;
    /// other operations are not affected.
    Short(usize),
}

/// Which calls fail.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Operation matched.
    pub op: Op,
    /// Matched when the path contains this (empty: every path).
    pub path: String,
    /// Matching calls let through before the rule fires.
    pub skip: u64,
    /// Matching calls failed once it fires (`None`: until cleared).
    pub times: Option<u64>,
    /// How they fail.
    pub fault: Fault,
}

impl Rule {
    /// Fails every `op` on paths containing `path` with `errno`, until cleared.
    pub fn new(op: Op, path: &str, errno: i32) -> Rule {
        Rule {
            op,
            path: path.to_owned(),
            skip: 0,
            times: None,
            fault: Fault::Errno(errno),
        }
    }

    /// Lets `n` matching calls through first.
    pub fn after(mut self, n: u64) -> Rule {
        self.skip = n;
        self
    }

    /// Fails only `n` calls.
    pub fn times(mut self, n: u64) -> Rule {
        self.times = Some(n);
        self
    }

    /// Makes writes short instead of failing them.
    pub fn short(mut self, max: usize) -> Rule {
        self.fault = Fault::Short(max.max(1));
        self
    }
}

#[derive(Debug)]
struct Armed {
    rule: Rule,
    seen: u64,
    fired: u64,
}

/// The rules and what they did; shared between a [`FaultFs`] and the test driving it.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Armed>>,
    fired: Mutex<u64>,
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, rule: Rule) {
        lock(&self.rules).push(Armed {
            rule,
            seen: 0,
            fired: 0,
        });
    }

    /// Removes every rule (the disk has room again, the device works again).
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// Calls failed (or shortened) so far.
    pub fn fired(&self) -> u64 {
        *lock(&self.fired)
    }

    fn check(&self, op: Op, path: &Path) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let p = path.to_string_lossy();
        let mut chosen = None;
        // Every matching rule counts the call, so `after(n)` means "after n matching calls"
        // whatever other rules did with them; the first rule that is due fails it.
        for a in rules.iter_mut() {
            if a.rule.op != op || !p.contains(a.rule.path.as_str()) {
                continue;
            }
            a.seen += 1;
            let due = a.seen > a.rule.skip && a.rule.times.is_none_or(|t| a.fired < t);
            if due && chosen.is_none() {
                a.fired += 1;
                chosen = Some(a.rule.fault);
            }
        }
        if chosen.is_some() {
            *lock(&self.fired) += 1;
        }
        chosen
    }

    fn fail(&self, op: Op, path: &Path) -> io::Result<()> {
        match self.check(op, path) {
            Some(Fault::Errno(e)) => Err(io::Error::from_raw_os_error(e)),
            _ => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A file system that fails what its [`Faults`] say and forwards the rest.
#[derive(Debug)]
pub struct FaultFs {
    inner: Fs,
    faults: Arc<Faults>,
}

impl FaultFs {
    /// Wraps `inner`; returns the file system and the handle that arms it.
    pub fn wrap(inner: Fs) -> (Fs, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        let fs = Arc::new(FaultFs {
            inner,
            faults: faults.clone(),
        });
        (fs, faults)
    }
}

impl FileSystem for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.faults.fail(Op::CreateDir, dir)?;
        self.inner.create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        self.faults.fail(Op::Create, path)?;
        self.inner.create(path)
    }

    fn open(&self, path: &Path, write: bool) -> io::Result<File> {
        self.faults.fail(Op::Open, path)?;
        self.inner.open(path, write)
    }

    fn write_at(
        &self,
        file: &File,
        path: &Path,
        bufs: &[IoSlice<'_>],
        offset: u64,
    ) -> io::Result<usize> {
        match self.faults.check(Op::Write, path) {
            Some(Fault::Errno(e)) => Err(io::Error::from_raw_os_error(e)),
            Some(Fault::Short(max)) => {
                let first = bufs.iter().find(|b| !b.is_empty());
                let Some(first) = first else {
                    return Ok(0);
                };
                let n = first.len().min(max);
                let part = first.get(..n).unwrap_or_default();
                self.inner
                    .write_at(file, path, &[IoSlice::new(part)], offset)
            }
            None => self.inner.write_at(file, path, bufs, offset),
        }
    }

    fn splice_in(
        &self,
        pipe: BorrowedFd<'_>,
        file: &File,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        match self.faults.check(Op::Splice, path) {
            Some(Fault::Errno(e)) => Err(io::Error::from_raw_os_error(e)),
            Some(Fault::Short(max)) => self.inner.splice_in(pipe, file, path, offset, len.min(max)),
            None => self.inner.splice_in(pipe, file, path, offset, len),
        }
    }

    fn read_at(&self, file: &File, path: &Path, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.faults.fail(Op::Read, path)?;
        self.inner.read_at(file, path, buf, offset)
    }

    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        self.faults.fail(Op::SyncData, path)?;
        self.inner.sync_data(file, path)
    }

    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        self.faults.fail(Op::SetLen, path)?;
        self.inner.set_len(file, path, len)
    }

    fn len(&self, file: &File, path: &Path) -> io::Result<u64> {
        self.faults.fail(Op::Stat, path)?;
        self.inner.len(file, path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.faults.fail(Op::Rename, from)?;
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.faults.fail(Op::Remove, path)?;
        self.inner.remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.faults.fail(Op::Remove, path)?;
        self.inner.remove_dir(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.faults.fail(Op::Remove, path)?;
        self.inner.remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.faults.fail(Op::SyncDir, path)?;
        self.inner.sync_dir(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.faults.fail(Op::ReadDir, path)?;
        self.inner.read_dir(path)
    }

    fn stat(&self, path: &Path) -> io::Result<Meta> {
        self.faults.fail(Op::Stat, path)?;
        self.inner.stat(path)
    }

    fn send_file(
        &self,
        sock: BorrowedFd<'_>,
        file: &File,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        self.faults.fail(Op::SendFile, path)?;
        self.inner.send_file(sock, file, path, offset, len)
    }

    fn free_space(&self, path: &Path) -> io::Result<u64> {
        self.faults.fail(Op::FreeSpace, path)?;
        self.inner.free_space(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::RealFs;

    #[test]
    fn rules_skip_fire_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let (fs, faults) = FaultFs::wrap(RealFs::shared());
        faults.add(Rule::new(Op::SyncData, "a", libc::EIO).after(1).times(1));
        let a = fs.create(&dir.path().join("a")).unwrap();
        let pa = dir.path().join("a");
        assert!(fs.sync_data(&a, &pa).is_ok());
        let e = fs.sync_data(&a, &pa).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        assert!(fs.sync_data(&a, &pa).is_ok());
        faults.add(Rule::new(Op::Write, "a", libc::ENOSPC));
        assert!(fs.write_at(&a, &pa, &[IoSlice::new(b"x")], 0).is_err());
        faults.clear();
        assert_eq!(fs.write_at(&a, &pa, &[IoSlice::new(b"xy")], 0).unwrap(), 2);
        assert_eq!(faults.fired(), 2);
    }

    #[test]
    fn short_writes_take_part() {
        let dir = tempfile::tempdir().unwrap();
        let (fs, faults) = FaultFs::wrap(RealFs::shared());
        let p = dir.path().join("f");
        let f = fs.create(&p).unwrap();
        faults.add(Rule::new(Op::Write, "f", 0).short(3).times(1));
        let n = fs
            .write_at(&f, &p, &[IoSlice::new(b"abcdef"), IoSlice::new(b"gh")], 0)
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
    }
}
