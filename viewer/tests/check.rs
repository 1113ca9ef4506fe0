//! `check` on the recorded fixture and on copies with injected damage: each kind of damage is
//! reported with its own line.

mod support;

use std::os::unix::fs::FileExt;
use support::*;

fn check(root: &std::path::Path) -> (i32, Vec<String>) {
    let o = viewer(&["check", root.to_str().unwrap()]);
    (
        o.status.code().unwrap_or(-1),
        stdout(&o).lines().map(str::to_owned).collect(),
    )
}

fn data(root: &std::path::Path) -> std::path::PathBuf {
    root.join(TRACE_REL).join("channel0_0")
}

fn index(root: &std::path::Path) -> std::path::PathBuf {
    root.join(TRACE_REL).join("index/channel0_0.idx")
}

fn patch(path: &std::path::Path, at: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn read_u64(path: &std::path::Path, at: u64) -> u64 {
    let f = std::fs::File::open(path).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, at).unwrap();
    u64::from_be_bytes(b)
}

fn assert_reported(lines: &[String], expected: &str) {
    assert!(
        lines.iter().any(|l| l == expected),
        "expected line\n  {expected}\nin\n  {}",
        lines.join("\n  ")
    );
}

const ENTRY: u64 = 72;
const HDR: u64 = 16;

#[test]
fn the_fixture_is_clean() {
    let (code, lines) = check(&fixture().join("relay-out"));
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.is_empty(), "{lines:?}");
}

#[test]
fn usage_errors_exit_2() {
    let o = viewer(&["check", "/nonexistent/trelay"]);
    assert_eq!(o.status.code(), Some(2));
    let o = viewer(&["check"]);
    assert_eq!(o.status.code(), Some(2));
    let empty = tempfile::tempdir().unwrap();
    let o = viewer(&["check", empty.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn truncated_data_file() {
    let (_t, root) = fixture_copy();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(data(&root))
        .unwrap();
    f.set_len(55000).unwrap();
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/channel0_0: offset 53248: entry 4: packet of 4096 bytes ends at 57344, past the end of the data file (55000 bytes)"
    ));
}

#[test]
fn index_entry_past_the_end() {
    let (_t, root) = fixture_copy();
    patch(&index(&root), HDR + 4 * ENTRY, &57344u64.to_be_bytes());
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/channel0_0: offset 57344: entry 4: packet of 4096 bytes ends at 61440, past the end of the data file (57344 bytes)"
    ));
}

#[test]
fn bad_index_magic() {
    let (_t, root) = fixture_copy();
    patch(&index(&root), 0, &0xdead_beefu32.to_be_bytes());
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/index/channel0_0.idx: offset 0: bad index magic 0xdeadbeef, expected 0xc1f1dcc1"
    ));
}

#[test]
fn bad_packet_magic() {
    let (_t, root) = fixture_copy();
    patch(&data(&root), 4096, &[0xde, 0xad, 0xbe, 0xef]);
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/channel0_0: offset 4096: entry 1: bad packet magic 0xefbeadde, expected 0xc1fc1fc1"
    ));
}

#[test]
fn flipped_packet_size() {
    let (_t, root) = fixture_copy();
    let at = HDR + ENTRY + 8; // entry 1, packet_size
    let size = read_u64(&index(&root), at);
    assert_eq!(size, 131072);
    patch(&index(&root), at, &(size ^ (1 << 20)).to_be_bytes());
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/channel0_0: offset 4096: entry 1: packet header has packet_size 131072, index entry says 1179648"
    ));
}

#[test]
fn flipped_packet_size_in_the_packet_header() {
    let (_t, root) = fixture_copy();
    // packet_size sits at byte 56 of the packet header (little-endian here).
    patch(&data(&root), 4096 + 56, &(131072u64 ^ 8).to_le_bytes());
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/channel0_0: offset 4096: entry 1: packet header has packet_size 131080, index entry says 131072"
    ));
}

#[test]
fn entry_out_of_order() {
    let (_t, root) = fixture_copy();
    let idx = index(&root);
    let bytes = std::fs::read(&idx).unwrap();
    let (a, b) = ((HDR + ENTRY) as usize, (HDR + 2 * ENTRY) as usize);
    let mut swapped = bytes.clone();
    swapped[a..a + 72].copy_from_slice(&bytes[b..b + 72]);
    swapped[b..b + 72].copy_from_slice(&bytes[a..a + 72]);
    std::fs::write(&idx, swapped).unwrap();
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/index/channel0_0.idx: offset 160: entry 2: out of order: packet offset 4096 is before the end of the previous packet (36864)"
    ));
}

#[test]
fn torn_tails() {
    let (_t, root) = fixture_copy();
    let append = |p: &std::path::Path, n: usize| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .unwrap()
            .write_all(&vec![7u8; n])
            .unwrap();
    };
    append(&index(&root), 10);
    append(&data(&root), 100);
    let (code, lines) = check(&root);
    assert_eq!(code, 1);
    assert_reported(&lines, &format!(
        "{TRACE_REL}/index/channel0_0.idx: offset 376: torn tail: 10 bytes after the last whole entry (72-byte entries)"
    ));
    assert_reported(&lines, &format!(
        "{TRACE_REL}/channel0_0: offset 57344: 100 bytes after the last indexed packet (torn tail or unindexed data)"
    ));
    assert_eq!(lines.len(), 2, "{lines:?}");
}
