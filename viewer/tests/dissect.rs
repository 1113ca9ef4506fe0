//! `trelay-viewer dissect` on the recorded LTTng 2.13 session: every byte of the capture and of
//! each connection file decodes, and damaged bytes make it fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/shared/fixtures/lttng-2.13-live-uid")
}

fn dissect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trelay-viewer"))
        .arg("dissect")
        .args(args)
        .output()
        .expect("run trelay-viewer")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

/// Message lines (not `#` headers).
fn messages(o: &Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `(offset, len)` of a message line.
fn span(line: &str) -> (u64, u64) {
    let off = line.split(" @").nth(1).unwrap().split(' ').next().unwrap();
    let len = line
        .split(" len=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    (off.parse().unwrap(), len.parse().unwrap())
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// Number of index entries lttng-relayd wrote for the session (one per data packet).
fn relay_index_entries() -> usize {
    let mut n = 0;
    let mut dirs = vec![fixture().join("relay-out")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "idx") {
                let len = std::fs::metadata(&p).unwrap().len();
                n += ((len - 32) / 64) as usize;
            }
        }
    }
    n
}

#[test]
fn every_byte_of_each_connection_file_decodes() {
    let streams = fixture().join("streams");
    for name in [
        "5342-0.client",
        "5342-0.server",
        "5343-0.client",
        "5344-0.client",
        "5344-0.server",
    ] {
        let path = streams.join(name);
        let out = dissect(&[path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = messages(&out);
        assert!(!lines.is_empty(), "{name}");
        // The messages tile the file: each starts where the previous ended, the last ends at EOF.
        let mut next = 0;
        for l in &lines {
            let (off, len) = span(l);
            assert_eq!(off, next, "{name}: {l}");
            next = off + len;
        }
        assert_eq!(next, std::fs::metadata(&path).unwrap().len(), "{name}");
    }
}

#[test]
fn each_file_shows_its_own_side_with_the_key_messages() {
    let streams = fixture().join("streams");
    let control = messages(&dissect(&[streams.join("5342-0.client").to_str().unwrap()]));
    assert!(control.iter().all(|l| l.contains("-> client")));
    assert!(
        control[0].contains("VERSION { major: 2, minor: 13 }"),
        "{}",
        control[0]
    );
    assert_eq!(count(&control, " ADD_STREAM "), 3);
    assert!(control
        .iter()
        .any(|l| l.contains("channel_name: \"metadata\"")));
    assert_eq!(count(&control, " SEND_METADATA "), 1);

    let replies = messages(&dissect(&[streams.join("5342-0.server").to_str().unwrap()]));
    assert!(replies.iter().all(|l| l.contains("<- server")));
    assert!(replies
        .iter()
        .any(|l| l.contains("CREATE_SESSION_REPLY") && l.contains("session_id: SessionId(1)")));
    // Every command but SEND_METADATA is answered.
    assert_eq!(replies.len(), control.len() - 1);

    let data = messages(&dissect(&[streams.join("5343-0.client").to_str().unwrap()]));
    assert_eq!(data.len(), relay_index_entries());
    assert!(data
        .iter()
        .all(|l| l.contains(" DATA ") && l.contains("ctf: stream_class=0")));

    let live = messages(&dissect(&[streams.join("5344-0.server").to_str().unwrap()]));
    assert!(live
        .iter()
        .any(|l| l.contains("LIST_SESSIONS_REPLY") && l.contains("fx3754")));
    assert!(live
        .iter()
        .any(|l| l.contains("GET_PACKET_REPLY") && l.contains("status: Ok")));
    assert!(live.iter().any(|l| l.contains("GET_METADATA_REPLY")));
}

#[test]
fn the_capture_decodes_completely_and_interleaves_replies() {
    let pcap = fixture().join("capture.pcap");
    let out = dissect(&[pcap.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    let text = stdout(&out);
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(headers.len(), 3, "{headers:?}");
    assert!(headers[0].contains("(control), client 11831 bytes, server 429 bytes"));
    assert!(headers[1].contains("(data), client 66610 bytes, server 0 bytes"));
    assert!(headers[2].contains("(live), client 4256 bytes, server 125516 bytes"));
    let lines = messages(&out);
    // The capture holds the same bytes as the connection files: same message counts.
    let streams = fixture().join("streams");
    for (prefix, file) in [
        ("[0] control -> client", "5342-0.client"),
        ("[0] control <- server", "5342-0.server"),
        ("[1] data -> client", "5343-0.client"),
        ("[2] live -> client", "5344-0.client"),
        ("[2] live <- server", "5344-0.server"),
    ] {
        let alone = messages(&dissect(&[streams.join(file).to_str().unwrap()]));
        assert_eq!(count(&lines, prefix), alone.len(), "{prefix}");
    }
    // Each request is directly followed by its reply.
    let i = lines
        .iter()
        .position(|l| l.contains(" GET_NEXT_INDEX "))
        .unwrap();
    assert!(
        lines[i + 1].contains("GET_NEXT_INDEX_REPLY"),
        "{}",
        lines[i + 1]
    );
    let i = lines
        .iter()
        .position(|l| l.contains(" ATTACH_SESSION "))
        .unwrap();
    assert!(lines[i + 1].contains("ATTACH_SESSION_REPLY"));
}

fn damaged(name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture().join("streams").join(name)).unwrap();
    edit(&mut bytes);
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn assert_fails_at(out: &Output, file: &Path, offset: u64, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stdout(out));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}: offset {offset}: ", file.display());
    assert!(err.contains(&want) && err.contains(what), "{err}");
}

#[test]
fn an_unknown_control_command_fails() {
    // The third command (CREATE_SESSION at offset 64) gets command number 99.
    let (_d, path) = damaged("5342-0.client", |b| {
        b[64 + 16..64 + 20].copy_from_slice(&99u32.to_be_bytes())
    });
    let out = dissect(&[path.to_str().unwrap()]);
    assert_fails_at(&out, &path, 64, "unknown command 99");
    // What came before still printed.
    assert_eq!(messages(&out).len(), 2);
}

#[test]
fn a_misframed_data_packet_fails() {
    // The first packet's data_size grows by 4: the next header lands inside the payload.
    let (_d, path) = damaged("5343-0.client", |b| {
        let size = u32::from_be_bytes(b[24..28].try_into().unwrap());
        b[24..28].copy_from_slice(&(size + 4).to_be_bytes());
    });
    let out = dissect(&[path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad magic"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_truncated_live_reply_fails() {
    let (_d, path) = damaged("5344-0.server", |b| b.truncate(b.len() - 3));
    std::fs::copy(
        fixture().join("streams/5344-0.client"),
        path.with_extension("client"),
    )
    .unwrap();
    let out = dissect(&[path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("message cut short"));
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
        // Ethernet + IPv4 (20-byte header) + TCP: destination port at 14 + 20 + 2.
        let dport = u16::from_be_bytes([frame[36], frame[37]]);
        let tcp_len = usize::from(frame[14 + 20 + 12] >> 4) * 4;
        let has_payload = frame.len() > 14 + 20 + tcp_len;
        if !dropped && dport == 5343 && has_payload {
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
    let res = dissect(&[path.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("bytes missing from the capture"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bytes.bin");
    std::fs::write(&path, [0u8; 40]).unwrap();
    assert_eq!(dissect(&[path.to_str().unwrap()]).status.code(), Some(2));
    assert_eq!(
        dissect(&["/nonexistent/5342-0.client"]).status.code(),
        Some(2)
    );
    // With the port and direction named, the same bytes are dissected (and fail to decode).
    let out = dissect(&[
        path.to_str().unwrap(),
        "--port",
        "5342",
        "--direction",
        "client",
    ]);
    assert_eq!(out.status.code(), Some(1));
}
