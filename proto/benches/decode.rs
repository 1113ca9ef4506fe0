//! Decoding cost of the hot-path messages: the data header (one per packet), the control header
//! and SEND_INDEX (one per packet and per beacon).
//!
//! Run: `cargo bench -p trelay-proto --bench decode`.

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use trelay_proto::lttng::relayd::{
    decode_command, Command, ControlHeader, DataHeader, ProtocolMinor, SendIndex,
};
use trelay_proto::{Decoded, NetSeq, StreamId};

fn data_header_bytes() -> Vec<u8> {
    let mut v = Vec::new();
    DataHeader {
        circuit_id: 0,
        stream_id: StreamId(1),
        net_seq: NetSeq(42),
        data_size: 84,
        padding_size: 4012,
    }
    .encode(&mut v);
    v
}

fn send_index_bytes() -> Vec<u8> {
    let mut v = Vec::new();
    Command::SendIndex(SendIndex {
        relay_stream_id: StreamId(1),
        net_seq: NetSeq(42),
        packet_size: 32768,
        content_size: 672,
        timestamp_begin: 3_405_155_399_066,
        timestamp_end: 3_405_155_499_066,
        events_discarded: 0,
        stream_class_id: 0,
        stream_instance_id: 0,
        packet_seq_num: 42,
    })
    .encode(ProtocolMinor::CURRENT, &mut v);
    v
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));

    let data = data_header_bytes();
    g.bench_function("data_header", |b| {
        b.iter(|| match DataHeader::decode(black_box(&data)) {
            Decoded::Done { msg, .. } => msg.total_len(),
            Decoded::Incomplete { .. } => 0,
        })
    });

    let index = send_index_bytes();
    g.bench_function("control_header", |b| {
        b.iter(|| ControlHeader::decode(black_box(&index)).map(|d| d.message()))
    });
    g.bench_function("send_index_with_header", |b| {
        b.iter(|| {
            let Ok(Decoded::Done { msg: h, used }) = ControlHeader::decode(black_box(&index))
            else {
                return false;
            };
            match decode_command(&h, &index[used..], ProtocolMinor::CURRENT) {
                Ok(Command::SendIndex(i)) => i.is_beacon(),
                _ => false,
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
