//! The two relay-wide hot spots, without the network: the merge table (index and data halves of
//! packets meeting, many streams interleaved) and the commit group (fdatasync-free commits of
//! many streams' completed entries). `cargo bench -p trelay-relayd --bench merge_commit`.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::task::TaskTracker;
use trelay_proto::{NetSeq, StreamId};
use trelay_relayd::config::{Durability, GroupBy, Settings};
use trelay_relayd::merge::{DataHalf, MergeConfig, MergeTable};
use trelay_relayd::session::{IndexHalf, Registry, SessionParams, Stream};

fn half(psn: u64) -> IndexHalf {
    IndexHalf {
        packet_size: 4096 * 8,
        content_size: 4096 * 8,
        timestamp_begin: psn,
        timestamp_end: psn + 1,
        events_discarded: 0,
        stream_id: 0,
        stream_instance_id: 0,
        packet_seq_num: psn,
    }
}

fn merge(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge_table");
    for streams in [1u64, 64, 1024] {
        let per = 4096 / streams.min(4096);
        g.throughput(Throughput::Elements(streams * per));
        g.bench_function(format!("{streams}_streams"), |b| {
            b.iter_batched(
                || {
                    MergeTable::new(
                        MergeConfig {
                            deadline: Duration::from_secs(10),
                            tick: Duration::from_millis(100),
                            max_per_stream: 4096,
                            max_total: 1 << 20,
                        },
                        Instant::now(),
                    )
                },
                |t| {
                    let now = Instant::now();
                    for seq in 0..per {
                        for s in 0..streams {
                            let id = StreamId(s + 1);
                            let d = DataHalf {
                                file_index: 0,
                                offset: seq * 4096,
                                size: 4096,
                            };
                            let r = t.insert_data(id, NetSeq(seq), d, now).unwrap();
                            assert!(r.completed.is_none());
                            let r = t.insert_index(id, NetSeq(seq), half(seq), now).unwrap();
                            assert!(r.completed.is_some());
                        }
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

struct Fixture {
    _dir: tempfile::TempDir,
    registry: Registry,
    streams: Vec<Arc<Stream>>,
}

fn fixture(n: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        durability: Durability::None,
        ..Settings::default()
    };
    let registry = Registry::new(
        settings,
        dir.path().to_path_buf(),
        GroupBy::Host,
        TaskTracker::new(),
    );
    let session = registry.create_session(SessionParams {
        name: "bench".into(),
        hostname: "h".into(),
        base_path: String::new(),
        live_timer: 0,
        snapshot: false,
        name_has_time: false,
        minor: 13,
        sessiond_uuid: [1; 16],
        sessiond_session_id: 1,
        creation_time: 1_795_414_943,
        peer: "bench".into(),
        trace_format: trelay_proto::TraceFormat::Ctf1_8,
    });
    let (chunk, _) = registry.chunks.publish(
        session.chunk_key(0),
        1_795_414_943,
        &session.abs_dir,
        None,
        String::new,
    );
    session.lock().current_chunk = Some(chunk.clone());
    let streams = (0..n)
        .map(|i| {
            let s = Stream::new(
                registry.next_stream_id(),
                session.clone(),
                registry.trace_id(&session, "ust"),
                format!("channel0_{i}"),
                "ust".into(),
                0,
                0,
                chunk.clone(),
                registry.merge.clone(),
            )
            .unwrap();
            registry.insert_stream(s.clone());
            s
        })
        .collect();
    Fixture {
        _dir: dir,
        registry,
        streams,
    }
}

fn commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_group");
    g.sample_size(20);
    for n in [16usize, 256, 1024] {
        let f = fixture(n);
        let mut seq = 0u64;
        let zeros = vec![0u8; 4096];
        g.throughput(Throughput::Elements(n as u64 * 4));
        g.bench_function(format!("{n}_streams_4_entries_each"), |b| {
            b.iter_batched(
                || {
                    // Four completed packets per stream, waiting for the commit.
                    for s in &f.streams {
                        for k in 0..4 {
                            let q = NetSeq(seq + k);
                            let slot = s.begin_packet(q, 4096, 4096).unwrap();
                            slot.file.write_all_at(&zeros, slot.offset).unwrap();
                            s.end_packet(q, slot, 4096).unwrap();
                            s.add_index(q, half(seq + k)).unwrap();
                        }
                    }
                    seq += 4;
                },
                |()| {
                    let session = &f.streams[0].session;
                    session
                        .commit
                        .commit(&f.streams, Durability::None, &f.registry.telemetry)
                        .unwrap();
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, merge, commit);
criterion_main!(benches);
