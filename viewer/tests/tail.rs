//! `tail` against a simulated relay holding OFD write locks on [frontier, ∞) of the data and
//! index files: it prints exactly the committed packets, never one past the frontier, follows
//! the frontier as it advances, and discovers a stream file created later.

mod support;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use support::*;
use trelay_proto::ctf::index::{encode_header, IndexEntry, IndexFile, IndexVersion};
use trelay_viewer::lock::{advance, lock_from};

/// The fixture's packets of one stream, with their entries.
fn packets(name: &str) -> Vec<(Vec<u8>, IndexEntry)> {
    let dir = fixture().join("relay-out").join(TRACE_REL);
    let data = std::fs::read(dir.join(name)).unwrap();
    let idx =
        IndexFile::parse(&std::fs::read(dir.join(format!("index/{name}.idx"))).unwrap()).unwrap();
    idx.entries
        .iter()
        .map(|e| {
            let (o, s) = (e.offset as usize, (e.packet_size / 8) as usize);
            (data[o..o + s].to_vec(), *e)
        })
        .collect()
}

/// A relay writing one stream: data and index files locked from their committed frontier.
struct SimRelay {
    data: File,
    index: File,
    written_data: u64,
    written_index: u64,
    frontier: (u64, u64),
}

impl SimRelay {
    fn create(dir: &Path, name: &str) -> SimRelay {
        std::fs::create_dir_all(dir.join("index")).unwrap();
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(p)
                .unwrap()
        };
        let data = open(&dir.join(name));
        let mut index = open(&dir.join(format!("index/{name}.idx")));
        lock_from(&data, 0).unwrap();
        lock_from(&index, 0).unwrap();
        let mut h = Vec::new();
        encode_header(IndexVersion::V1_1, &mut h);
        index.write_all(&h).unwrap();
        SimRelay {
            data,
            index,
            written_data: 0,
            written_index: 16,
            frontier: (0, 0),
        }
    }

    /// Writes a packet and its entry, without committing.
    fn write(&mut self, packet: &[u8], entry: &IndexEntry) {
        self.data.write_all(packet).unwrap();
        let mut e = Vec::new();
        entry.encode(IndexVersion::V1_1, &mut e);
        self.index.write_all(&e).unwrap();
        self.written_data += packet.len() as u64;
        self.written_index += e.len() as u64;
    }

    /// Moves the frontier to everything written.
    fn commit(&mut self) {
        advance(&self.data, self.frontier.0, self.written_data).unwrap();
        advance(&self.index, self.frontier.1, self.written_index).unwrap();
        self.frontier = (self.written_data, self.written_index);
    }
}

fn spawn_tail(root: &Path) -> (Child, Receiver<serde_json::Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trelay-viewer"))
        .args([
            "tail",
            root.to_str().unwrap(),
            "--format",
            "json",
            "--poll-ms",
            "20",
            "--until-idle",
            "120",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str::<serde_json::Value>(&line).unwrap());
        }
    });
    (child, rx)
}

/// Collects lines until `n` arrived (generous timeout), then makes sure no more arrive for a
/// while.
fn expect_lines(rx: &Receiver<serde_json::Value>, got: &mut Vec<serde_json::Value>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < n && Instant::now() < deadline {
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(v);
        }
    }
    assert_eq!(got.len(), n, "lines so far: {got:?}");
    // Several polls of the tail (20 ms each) without anything past the frontier.
    if let Ok(v) = rx.recv_timeout(Duration::from_millis(800)) {
        panic!("tail printed a packet past the committed frontier: {v}");
    }
}

#[test]
fn tail_prints_only_committed_packets() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("out");
    let dir = root.join("host/session/ust/uid/0/64-bit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture().join("relay-out").join(TRACE_REL).join("metadata"),
        dir.join("metadata"),
    )
    .unwrap();
    let p0 = packets("channel0_0");
    let mut relay = SimRelay::create(&dir, "channel0_0");
    relay.write(&p0[0].0, &p0[0].1);
    relay.write(&p0[1].0, &p0[1].1);
    relay.commit();
    relay.write(&p0[2].0, &p0[2].1); // written, not committed
    let (mut child, rx) = spawn_tail(&root);
    let mut got = Vec::new();
    expect_lines(&rx, &mut got, 2);
    relay.commit();
    expect_lines(&rx, &mut got, 3);
    relay.write(&p0[3].0, &p0[3].1);
    relay.write(&p0[4].0, &p0[4].1);
    expect_lines(&rx, &mut got, 3);
    relay.commit();
    expect_lines(&rx, &mut got, 5);
    // A second stream appears later.
    let p1 = packets("channel0_1");
    let mut relay1 = SimRelay::create(&dir, "channel0_1");
    relay1.write(&p1[0].0, &p1[0].1);
    expect_lines(&rx, &mut got, 5);
    relay1.commit();
    expect_lines(&rx, &mut got, 6);
    child.kill().unwrap();
    child.wait().unwrap();

    let seqs: Vec<u64> = got
        .iter()
        .take(5)
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4]);
    let offsets: Vec<u64> = got
        .iter()
        .take(5)
        .map(|v| v["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, p0.iter().map(|p| p.1.offset).collect::<Vec<_>>());
    assert!(got[0]["stream"].as_str().unwrap().ends_with("channel0_0"));
    assert!(got[5]["stream"].as_str().unwrap().ends_with("channel0_1"));
    assert_eq!(got[0]["begin_time"], "2026-11-23T06:22:24.841015497Z");
}

#[test]
fn tail_ends_when_idle() {
    let (_t, root) = fixture_copy();
    let start = Instant::now();
    let o = viewer(&[
        "tail",
        root.to_str().unwrap(),
        "--until-idle",
        "0.5",
        "--poll-ms",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 8);
    assert!(start.elapsed() < Duration::from_secs(60));
    let o = viewer(&[
        "tail",
        root.to_str().unwrap(),
        "--until-idle",
        "0.3",
        "--new-only",
    ]);
    assert_eq!(stdout(&o).lines().count(), 0);
}

#[test]
fn tail_stops_cleanly_on_sigint() {
    let (_t, root) = fixture_copy();
    let (mut child, rx) = spawn_tail(&root);
    let mut got = Vec::new();
    expect_lines(&rx, &mut got, 8);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "tail ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}
