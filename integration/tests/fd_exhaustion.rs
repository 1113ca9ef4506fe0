//! Far more streams than descriptors: trelayd started with its open-file limit at 1,024 (soft
//! and hard, so it cannot raise it) takes 10,000 streams of one session, 3 indexed packets each,
//! answers OK to every ADD_STREAM, packet, SEND_INDEX, DATA_PENDING and CLOSE_STREAM, and after
//! SIGTERM every index entry is on disk, babeltrace2 reads every event, and the log's last line
//! and the exit status agree. A relay whose commit runs out of descriptors must not answer OK,
//! nor claim at exit that everything is committed.
//!
//! The 50,000-stream run is ignored by default (about a minute): `cargo test -p
//! trelay-integration --test fd_exhaustion -- --ignored`.

use std::time::Duration;
use trelay_consumer::sender::{RelaySession, SessionConfig};
use trelay_consumer::synth::SynthTrace;
use trelay_integration::relay::Trelayd;

const FD_LIMIT: u64 = 1024;
const PACKETS: u64 = 3;

async fn many_streams_few_descriptors(streams: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // Durability off: 20,000 fdatasyncs would make the test minutes long on a slow disk, and the
    // descriptors a commit needs are the same either way.
    let mut relay =
        Trelayd::start_with_fd_limit(tmp.path(), &out, &["--durability", "none"], FD_LIMIT)
            .unwrap();
    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let cfg = SessionConfig::new("many", "fd-host");
    let mut s = RelaySession::connect(control, data, &cfg).await.unwrap();
    let trace = SynthTrace::new("fd-host", "many", 4096);
    let path = "ust/uid/0/64-bit";
    let mut refs = Vec::new();
    for i in 0..streams {
        match s.add_stream(&format!("channel0_{i}"), path).await {
            Ok(r) => refs.push(r),
            Err(e) => panic!("ADD_STREAM {i} refused: {e}\n{}", warnings(&relay)),
        }
    }
    let meta = s.add_stream("metadata", path).await.unwrap();
    s.streams_sent().await.unwrap();
    for p in trace.metadata() {
        s.send_metadata(meta, &p.content, p.padding).await.unwrap();
    }
    let mut gens: Vec<_> = (0..streams)
        .map(|i| trace.stream(u32::try_from(i).unwrap()).unwrap())
        .collect();
    let mut events = 0u64;
    // Round robin: every stream holds uncommitted data when the next round starts.
    for _ in 0..PACKETS {
        for (st, gen) in refs.iter().zip(gens.iter_mut()) {
            events += u64::from(gen.events_per_packet());
            let p = gen.next_packet();
            if let Err(e) = s
                .send_packet(*st, p.content, p.padding, Some(&p.index))
                .await
            {
                panic!("packet refused: {e}\n{}", warnings(&relay));
            }
        }
    }
    let answered = async {
        s.control().drain_indexes().await?;
        s.wait_data_pending(Duration::from_secs(120)).await?;
        for st in refs.iter().chain([&meta]) {
            s.close_stream(*st).await?;
        }
        Ok::<_, trelay_consumer::sender::SendError>(())
    };
    if let Err(e) = answered.await {
        panic!("the relay refused: {e}\n{}", warnings(&relay));
    }
    // SIGTERM with the connections still open, as a sessiond killed mid-way would leave them.
    let code = relay.stop().unwrap();
    let log = relay.log_text();
    let last = log.lines().last().unwrap_or_default().to_owned();
    drop(s);
    assert_eq!(code, 0, "exit status, log ends with: {last}");
    assert!(
        last.contains("stopped cleanly"),
        "last log line: {last}\n{}",
        warnings(&relay)
    );
    assert!(
        !log.contains("session failed"),
        "a session failed:\n{}",
        warnings(&relay)
    );
    let report = trelay_viewer::check::check(&out).unwrap();
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.entries, streams * PACKETS, "index entries on disk");
    let lines = babeltrace_in_groups(&out, tmp.path(), streams);
    assert_eq!(lines, events, "babeltrace2 reads every event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_at_1024_descriptors_are_committed_whole() {
    many_streams_few_descriptors(10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about a minute: cargo test -p trelay-integration --test fd_exhaustion -- --ignored"]
async fn fifty_thousand_streams_at_1024_descriptors_are_committed_whole() {
    many_streams_few_descriptors(50_000).await;
}

/// Reads the trace with babeltrace2 in groups of [`GROUP`] streams (hard links to the stream,
/// index and metadata files in a directory per group; babeltrace2's muxer costs a look at every
/// stream per event, so one pass over 10,000 streams would take many minutes); returns the
/// event lines printed. Fails on any babeltrace2 error or warning.
fn babeltrace_in_groups(out: &std::path::Path, tmp: &std::path::Path, streams: u64) -> u64 {
    let find = |dir: &std::path::Path| {
        let mut d = dir.to_path_buf();
        while !d.join("metadata").exists() {
            let next = std::fs::read_dir(&d)
                .unwrap()
                .flatten()
                .find(|e| e.path().is_dir());
            d = next.expect("a trace directory").path();
        }
        d
    };
    let trace = find(out);
    let mut lines = 0u64;
    let mut first = 0u64;
    while first < streams {
        let group = tmp.join(format!("bt-{first}"));
        std::fs::create_dir_all(group.join("index")).unwrap();
        std::fs::hard_link(trace.join("metadata"), group.join("metadata")).unwrap();
        for i in first..(first + GROUP).min(streams) {
            let name = format!("channel0_{i}");
            std::fs::hard_link(trace.join(&name), group.join(&name)).unwrap();
            let idx = format!("index/{name}.idx");
            std::fs::hard_link(trace.join(&idx), group.join(&idx)).unwrap();
        }
        let bt = std::process::Command::new("babeltrace2")
            .arg(&group)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&bt.stderr);
        assert!(bt.status.success(), "{stderr}");
        assert!(!stderr.contains("Invalid"), "babeltrace2 warned: {stderr}");
        lines += bt.stdout.iter().filter(|b| **b == b'\n').count() as u64;
        std::fs::remove_dir_all(&group).unwrap();
        first += GROUP;
    }
    lines
}

/// Streams per babeltrace2 run.
const GROUP: u64 = 250;

/// The log's warnings and errors (the first 40).
fn warnings(relay: &Trelayd) -> String {
    let log = relay.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .take(40)
        .collect();
    lines.join("\n")
}
