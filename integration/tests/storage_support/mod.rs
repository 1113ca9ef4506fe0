//! An in-process relay on a fault-injecting file system, and a sender streaming a synthetic
//! trace into it, for the storage fault tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use trelay_consumer::sender::{RelaySession, SessionConfig, StreamRef};
use trelay_consumer::synth::{packet::StreamGenerator, SynthTrace};
use trelay_proto::ctf::index::IndexFile;
use trelay_relayd::session::Registry;
use trelay_relayd::storage::fault::{FaultFs, Faults};
use trelay_relayd::storage::{Fs, RealFs};
use trelay_relayd::{CancellationToken, Config};

/// A relay serving on loopback from this process.
pub struct Relay {
    /// Its output root.
    pub out: PathBuf,
    /// The faults its file system injects.
    pub faults: Arc<Faults>,
    /// Its sessions and streams.
    pub registry: Arc<Registry>,
    control: std::net::SocketAddr,
    data: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), trelay_relayd::RelayError>>,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Starts a relay on a fault-injecting file system over a temporary folder (commits every
    /// 50 ms); `tweak` adjusts the configuration.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let (fs, faults) = FaultFs::wrap(RealFs::shared());
        Self::start_on(dir, out, fs, faults, tweak).await
    }

    /// Starts a relay writing `out` through `fs`.
    pub async fn start_on(
        dir: tempfile::TempDir,
        out: PathBuf,
        fs: Fs,
        faults: Arc<Faults>,
        tweak: impl FnOnce(&mut Config),
    ) -> Relay {
        let mut cfg = Config::for_tests(&out);
        cfg.settings.commit_interval_ms = 50;
        tweak(&mut cfg);
        let relay = trelay_relayd::Relay::bind_with_fs(cfg, fs).unwrap();
        let ports = relay.ports();
        let registry = relay.registry();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(relay.serve(shutdown.clone()));
        Relay {
            out,
            faults,
            registry,
            control: ([127, 0, 0, 1], ports.control).into(),
            data: ([127, 0, 0, 1], ports.data).into(),
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// Opens session `name` with one data stream of `packet_len`-byte packets and its
    /// metadata.
    pub async fn session(&self, name: &str, packet_len: usize) -> Sender {
        let cfg = SessionConfig::new(name, "faulty-host");
        let mut s = RelaySession::connect(self.control, self.data, &cfg)
            .await
            .unwrap();
        let trace = SynthTrace::new("faulty-host", name, packet_len);
        let path = "ust/uid/0/64-bit";
        let stream = s.add_stream("channel0_0", path).await.unwrap();
        let meta = s.add_stream("metadata", path).await.unwrap();
        s.streams_sent().await.unwrap();
        for p in trace.metadata() {
            s.send_metadata(meta, &p.content, p.padding).await.unwrap();
        }
        Sender {
            s,
            stream,
            gen: trace.stream(0).unwrap(),
            meta,
            metadata: trace.metadata(),
            events: 0,
        }
    }

    /// Its control and data ports.
    pub fn ports(&self) -> (u16, u16) {
        (self.control.port(), self.data.port())
    }

    /// Whether session `name` failed or is gone.
    pub fn failed(&self, name: &str) -> bool {
        let sessions = self.registry.sessions();
        let mut of = sessions.iter().filter(|s| s.params.name == name).peekable();
        of.peek().is_none() || of.any(|s| s.lock().failed.is_some())
    }

    /// Whether session `name` is gone (its connections ended).
    pub fn gone(&self, name: &str) -> bool {
        !self
            .registry
            .sessions()
            .iter()
            .any(|s| s.params.name == name)
    }

    /// Stops the relay (it commits what it holds), then checks the output folder: every trace
    /// readable, no index entry past its data.
    pub async fn finish(self) {
        let out = self.out.clone();
        let _dir = self.stop().await;
        assert_checks(&out);
    }

    /// Stops the relay (it commits what it holds); the output stays until the returned guard
    /// is dropped.
    pub async fn stop(self) -> tempfile::TempDir {
        self.stop_reporting().await.0
    }

    /// Like [`Relay::stop`], also returning what the relay reported when it stopped (an error
    /// once a session of this process failed).
    pub async fn stop_reporting(
        self,
    ) -> (tempfile::TempDir, Result<(), trelay_relayd::RelayError>) {
        self.faults.clear();
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the relay stops")
            .unwrap();
        (self._dir, r)
    }
}

/// `trelay-viewer check` finds at least one trace under `out` and no problem.
pub fn assert_checks(out: &Path) {
    let report = trelay_viewer::check::check(out).expect("a trace to check");
    assert!(report.traces >= 1);
    assert!(
        report.problems.is_empty(),
        "check found problems: {:#?}",
        report.problems
    );
}

/// A sender of one synthetic stream.
pub struct Sender {
    s: RelaySession,
    stream: StreamRef,
    gen: StreamGenerator,
    meta: StreamRef,
    metadata: Vec<trelay_consumer::synth::MetadataPacket>,
    /// Events in the packets sent so far.
    pub events: u64,
}

impl Sender {
    /// Sends the next `n` packets with their index.
    pub async fn send(&mut self, n: u64) -> anyhow::Result<()> {
        for _ in 0..n {
            let events = u64::from(self.gen.events_per_packet());
            let p = self.gen.next_packet();
            self.events += events;
            self.s
                .send_packet(self.stream, p.content, p.padding, Some(&p.index))
                .await?;
        }
        Ok(())
    }

    /// Rotates to the next trace chunk; returns the archive's path.
    pub async fn rotate(&mut self) -> anyhow::Result<String> {
        let archive = self.s.rotate().await?;
        // The new chunk's metadata file starts empty: send the whole metadata again, as a
        // consumer daemon does after a rotation.
        for p in &self.metadata {
            self.s
                .send_metadata(self.meta, &p.content, p.padding)
                .await?;
        }
        Ok(archive)
    }

    /// Ends the session like `lttng destroy`.
    pub async fn close(self) -> anyhow::Result<()> {
        self.s.close(Duration::from_secs(60)).await?;
        Ok(())
    }
}

/// Files under `root` whose path ends with `suffix`, sorted.
pub fn find(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

fn index_files(root: &Path, suffix: &str) -> Vec<IndexFile> {
    find(root, suffix)
        .iter()
        .filter_map(|p| IndexFile::parse(&std::fs::read(p).ok()?).ok())
        .collect()
}

/// Complete index entries in the files under `root` ending with `suffix`.
pub fn entries(root: &Path, suffix: &str) -> u64 {
    index_files(root, suffix)
        .iter()
        .map(|f| f.entries.len() as u64)
        .sum()
}

/// Packet sequence numbers of those entries, in file order.
pub fn packet_seqs(root: &Path, suffix: &str) -> Vec<u64> {
    index_files(root, suffix)
        .iter()
        .flat_map(|f| f.entries.iter().map(|e| e.packet_seq_num))
        .collect()
}

/// Waits (at most 20 s) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
