//! `trelay-viewer dissect` on the recorded LTTng 2.13 session (in-repo fixture): every byte of
//! the capture and of each connection file decodes, the capture and the connection files give
//! the same messages, and damaged bytes make it fail with `FILE: offset N: what`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::fixture;

/// The connection files that hold bytes (the relay sends nothing on the data port).
const NON_EMPTY_FILES: [&str; 5] = [
    "5342-0.client",
    "5342-0.server",
    "5343-0.client",
    "5344-0.client",
    "5344-0.server",
];

fn dissect(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trelay-viewer"))
        .arg("dissect")
        .args(args)
        .output()
        .expect("run trelay-viewer")
}

fn stream(name: &str) -> PathBuf {
    fixture().join("streams").join(name)
}

/// Message lines (not `#` headers).
fn messages(o: &Output) -> Vec<String> {
    String::from_utf8(o.stdout.clone())
        .expect("utf-8")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `@OFFSET` of a message line.
fn offset(line: &str) -> u64 {
    let tail = line
        .split(" @")
        .nth(1)
        .unwrap_or_else(|| panic!("no offset: {line}"));
    tail.split(' ').next().unwrap().parse().unwrap()
}

/// The value of `key=` in a line.
fn field(line: &str, key: &str) -> u64 {
    let tail = line
        .split(&format!(" {key}="))
        .nth(1)
        .unwrap_or_else(|| panic!("no {key}: {line}"));
    tail.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// Index entries lttng-relayd wrote for the session: one per data packet.
fn relay_index_entries() -> u64 {
    let mut n = 0;
    let mut dirs = vec![fixture().join("relay-out")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "idx") {
                let len = std::fs::metadata(&p).unwrap().len();
                let entry = u64::from(u32::from_be_bytes(
                    std::fs::read(&p).unwrap()[12..16].try_into().unwrap(),
                ));
                n += (len - 16) / entry;
            }
        }
    }
    n
}

#[test]
fn every_connection_file_decodes_with_increasing_offsets() {
    for name in NON_EMPTY_FILES {
        let path = stream(name);
        let out = dissect(&[&path]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{name}: {}", stderr(&out));
        let lines = messages(&out);
        assert!(!lines.is_empty(), "{name}");
        assert_eq!(offset(&lines[0]), 0, "{name}");
        let len = std::fs::metadata(&path).unwrap().len();
        for w in lines.windows(2) {
            assert!(offset(&w[0]) < offset(&w[1]), "{name}: {w:?}");
        }
        assert!(offset(lines.last().unwrap()) < len, "{name}");
    }
}

#[test]
fn data_packets_tile_the_data_connection_and_match_the_relays_index() {
    let path = stream("5343-0.client");
    let lines = messages(&dissect(&[&path]));
    let mut next = 0;
    for l in &lines {
        assert!(l.contains(" DATA "), "{l}");
        assert_eq!(offset(l), next, "{l}");
        next += 32 + field(l, "size");
    }
    assert_eq!(next, std::fs::metadata(&path).unwrap().len());
    assert_eq!(lines.len() as u64, relay_index_entries());
}

#[test]
fn each_file_shows_the_key_messages() {
    let control = messages(&dissect(&[&stream("5342-0.client")]));
    assert!(
        control[0].contains("VERSION") && control[0].contains("minor=13"),
        "{}",
        control[0]
    );
    assert_eq!(count(&control, " ADD_STREAM "), 3);
    assert_eq!(count(&control, "\"metadata\""), 1);
    assert_eq!(count(&control, " SEND_METADATA "), 1);
    assert!(count(&control, " SEND_INDEX ") > 8);

    // Every command but SEND_METADATA is answered, in order.
    let replies = messages(&dissect(&[&stream("5342-0.server")]));
    assert_eq!(replies.len(), control.len() - 1);
    assert!(replies[0].contains("VERSION"));
    assert!(replies
        .iter()
        .any(|l| l.contains("CREATE_SESSION") && l.contains("fx3754")));

    let live = messages(&dissect(&[&stream("5344-0.server")]));
    assert!(live
        .iter()
        .any(|l| l.contains("LIST_SESSIONS") && l.contains("fx3754")));
    assert!(live
        .iter()
        .any(|l| l.contains("GET_PACKET") && l.contains("Ok")));
    assert!(live
        .iter()
        .any(|l| l.contains("GET_METADATA") && l.contains("Ok")));
    let requests = messages(&dissect(&[&stream("5344-0.client")]));
    // The live relay answers every request.
    assert_eq!(requests.len(), live.len());
}

#[test]
fn the_capture_decodes_like_the_connection_files() {
    let out = dissect(&[&fixture().join("capture.pcap")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let lines = messages(&out);
    let mut total = 0;
    for name in NON_EMPTY_FILES {
        let alone = messages(&dissect(&[&stream(name)]));
        total += alone.len();
        // The same messages, in the same order, at the same offsets.
        let (conn, side) = name.split_once('.').unwrap();
        let arrow = if side == "client" { "C>" } else { "S<" };
        let from_pcap: Vec<u64> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("{conn} {arrow} ")))
            .map(|l| offset(l))
            .collect();
        let from_file: Vec<u64> = alone.iter().map(|l| offset(l)).collect();
        assert_eq!(from_pcap, from_file, "{name}");
    }
    assert_eq!(lines.len(), total);
    // A request is directly followed by its reply.
    let i = lines
        .iter()
        .position(|l| l.contains(" ATTACH_SESSION "))
        .unwrap();
    assert!(lines[i + 1].contains("S<") && lines[i + 1].contains("ATTACH_SESSION"));
}

/// A copy of a connection file (and its sibling) with `edit` applied.
fn damaged(name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (conn, side) = name.split_once('.').unwrap();
    let other = if side == "client" { "server" } else { "client" };
    let sibling = format!("{conn}.{other}");
    std::fs::copy(stream(&sibling), dir.path().join(&sibling)).unwrap();
    let mut bytes = std::fs::read(stream(name)).unwrap();
    edit(&mut bytes);
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn assert_fails_at(out: &Output, offset: u64, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    assert!(
        err.contains(&format!("offset {offset}:")) && err.contains(what),
        "want offset {offset}: {what}; got {err}"
    );
}

#[test]
fn an_unknown_control_command_fails() {
    // CREATE_SESSION at offset 64 gets command number 99 (cmd is at byte 16 of the header).
    let (_d, path) = damaged("5342-0.client", |b| {
        b[64 + 16..64 + 20].copy_from_slice(&99u32.to_be_bytes())
    });
    let out = dissect(&[&path]);
    assert_fails_at(&out, 64, "99");
    // What came before is still printed.
    assert_eq!(messages(&out).len(), 2);
}

#[test]
fn a_misframed_data_packet_fails() {
    // The first packet's data_size grows by 4: the next header lands inside the payload.
    let (_d, path) = damaged("5343-0.client", |b| {
        let size = u32::from_be_bytes(b[24..28].try_into().unwrap());
        b[24..28].copy_from_slice(&(size + 4).to_be_bytes());
    });
    let out = dissect(&[&path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("offset "), "{}", stderr(&out));
}

#[test]
fn a_truncated_live_reply_fails() {
    let (_d, path) = damaged("5344-0.server", |b| b.truncate(b.len() - 3));
    let out = dissect(&[&path]);
    let last = offset(
        messages(&dissect(&[&stream("5344-0.server")]))
            .last()
            .unwrap(),
    );
    assert_fails_at(&out, last, "");
}

#[test]
fn bytes_left_after_the_last_reply_fail() {
    let (_d, path) = damaged("5342-0.server", |b| b.extend_from_slice(&[0, 0, 0, 10]));
    let out = dissect(&[&path]);
    let len = std::fs::metadata(stream("5342-0.server")).unwrap().len();
    assert_fails_at(&out, len, "");
}

#[test]
fn a_capture_missing_a_segment_fails() {
    // Drop the first frame carrying payload to the data port.
    let bytes = std::fs::read(fixture().join("capture.pcap")).unwrap();
    let mut out = bytes[..24].to_vec();
    let mut pos = 24;
    let mut dropped = false;
    while pos < bytes.len() {
        let incl = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let frame = &bytes[pos + 16..pos + 16 + incl];
        // Ethernet (14) + IPv4 (20) + TCP: destination port at 36.
        let dport = u16::from_be_bytes([frame[36], frame[37]]);
        let tcp_len = usize::from(frame[14 + 20 + 12] >> 4) * 4;
        if !dropped && dport == 5343 && frame.len() > 14 + 20 + tcp_len {
            dropped = true;
        } else {
            out.extend_from_slice(&bytes[pos..pos + 16 + incl]);
        }
        pos += 16 + incl;
    }
    assert!(dropped);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, out).unwrap();
    let res = dissect(&[&path]);
    assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bytes.bin");
    std::fs::write(&path, [0u8; 40]).unwrap();
    assert_eq!(dissect(&[&path]).status.code(), Some(2));
    let missing = dissect(&[Path::new("/nonexistent/5342-0.client")]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("/nonexistent/5342-0.client"),
        "{}",
        stderr(&missing)
    );
}
