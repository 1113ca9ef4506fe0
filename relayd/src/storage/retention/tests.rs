use super::*;
use crate::storage::RealFs;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

const DAY: u64 = 86_400;

/// Time zero of the tests' virtual clock.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Writes a file of `len` bytes dated `at` seconds after t0 (its directories dated the same).
fn file(root: &Path, rel: &str, len: usize, at: u64) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, vec![7u8; len]).unwrap();
    let t = TimeSpec::from_duration(t0().duration_since(SystemTime::UNIX_EPOCH).unwrap())
        + TimeSpec::new(at as i64, 0);
    let mut d = p.as_path();
    while d != root {
        utimensat(None, d, &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
        d = d.parent().unwrap();
    }
}

fn policy(max_bytes: u64, max_session_bytes: u64, max_age_s: u64) -> RetentionSettings {
    RetentionSettings {
        max_bytes,
        max_session_bytes,
        max_age_s,
        interval_s: 60,
    }
}

/// host/old: closed session (day 0); host/live: open session with three archived chunks (days
/// 1, 2, 3) and its current chunk being written (marker).
fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    file(r, "host/old/ust/c_0", 64 << 10, 0);
    file(r, "host/live/archives/a1/ust/c_0", 64 << 10, DAY);
    file(r, "host/live/archives/a2/ust/c_0", 64 << 10, 2 * DAY);
    file(r, "host/live/archives/a3/ust/c_0", 64 << 10, 3 * DAY);
    file(r, "host/live/ust/c_0", 64 << 10, 4 * DAY);
    file(r, &format!("host/live/ust/{MARKER}"), 0, 4 * DAY);
    d
}

fn names(r: &Report) -> Vec<String> {
    r.deleted
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn age_limit_deletes_old_closed_traces_only() {
    let d = tree();
    let fs = RealFs::shared();
    let now = t0() + Duration::from_secs(5 * DAY);
    let r = apply(&fs, d.path(), &policy(0, 0, 3 * DAY + 1), now, &|_| false);
    assert_eq!(names(&r), ["old", "a1"]);
    assert!(!d.path().join("host/old").exists());
    assert!(d.path().join("host/live/archives/a2").exists());
    assert!(
        d.path().join("host/live/ust/c_0").exists(),
        "open data stays"
    );
    // Nothing is old enough at day 1.
    let d = tree();
    let r = apply(
        &fs,
        d.path(),
        &policy(0, 0, 3 * DAY),
        t0() + Duration::from_secs(DAY),
        &|_| false,
    );
    assert!(r.deleted.is_empty());
}

#[test]
fn folder_quota_goes_oldest_first_and_stops_under_it() {
    let d = tree();
    let fs = RealFs::shared();
    let before = apply(&fs, d.path(), &policy(u64::MAX, 0, 0), t0(), &|_| false).used;
    assert!(before >= 5 * (64 << 10), "{before}");
    // Room for about three of the five 64 KiB files.
    let quota = before - 2 * (64 << 10) + 1024;
    let r = apply(&fs, d.path(), &policy(quota, 0, 0), t0(), &|_| false);
    assert_eq!(names(&r), ["old", "a1"]);
    assert!(r.used <= quota && !r.unmet, "{r:?}");
    // A quota below what is open cannot be met: everything closed goes, the open part stays.
    let r = apply(&fs, d.path(), &policy(1, 0, 0), t0(), &|_| false);
    assert_eq!(names(&r), ["a2", "a3"]);
    assert!(r.unmet);
    assert!(d.path().join("host/live/ust/c_0").exists());
}

#[test]
fn session_quota_takes_that_sessions_chunks() {
    let d = tree();
    let fs = RealFs::shared();
    let r = apply(&fs, d.path(), &policy(0, 3 * (64 << 10), 0), t0(), &|_| {
        false
    });
    assert_eq!(names(&r), ["a1", "a2"]);
    assert!(
        d.path().join("host/old").exists(),
        "another session is not touched"
    );
}

#[test]
fn held_sessions_and_disabled_policy_keep_everything() {
    let d = tree();
    let fs = RealFs::shared();
    let old = d.path().join("host/old");
    let r = apply(&fs, d.path(), &policy(1, 0, 0), t0(), &|p| p == old);
    assert!(!names(&r).contains(&"old".to_owned()));
    assert!(old.exists());
    let r = apply(
        &fs,
        d.path(),
        &RetentionSettings::default(),
        t0() + Duration::from_secs(99 * DAY),
        &|_| false,
    );
    assert!(r.deleted.is_empty());
}

#[test]
fn what_waits_for_its_archive_is_not_deleted() {
    let d = tree();
    let fs = RealFs::shared();
    let r = d.path();
    // Only a2 is archived: an age limit taking everything takes a2 alone.
    file(
        r,
        &format!("host/live/archives/a2/{}", crate::archive::MARKER),
        2,
        2 * DAY,
    );
    let archived = |dir: &Path| crate::archive::is_archived(&fs, dir);
    let rep = apply_guarded(
        &fs,
        r,
        &policy(0, 0, 1),
        t0() + Duration::from_secs(10 * DAY),
        &|_| false,
        &|dir| !archived(dir),
    );
    assert_eq!(names(&rep), ["a2"]);
    assert!(r.join("host/old").exists() && r.join("host/live/archives/a1").exists());
}
