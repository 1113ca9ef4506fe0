//! Memory under an index flood: 1,024 streams each get 1,100 index halves whose data never
//! comes (1,126,400 orphans, more than the merge table may hold), and the relay's resident
//! memory stays within a generous multiple of its pending budget (`max_pending_bytes`, 64 MiB by
//! default): the budget is in bytes, whatever the number of halves. With the budget raised to
//! what the old entry-count default allowed (1,048,576 halves), the same flood takes ~370 MiB.

use trelay_consumer::sender::{RelaySession, SessionConfig};
use trelay_consumer::synth::SynthTrace;
use trelay_integration::relay::Trelayd;

const STREAMS: u32 = 1024;
const ORPHANS_PER_STREAM: u32 = 1100;
/// Baseline, the budget and the allocator's slack: three times the 64 MiB budget.
const RSS_CAP_KIB: u64 = 3 * 64 * 1024;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_index_flood_stays_within_the_pending_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // Halves wait far longer than the flood lasts, so only the cap limits them (the budget can
    // be changed with PENDING_MEMORY_BYTES to compare: 369098752 is what 1,048,576 halves take).
    let config = tmp.path().join("trelay.toml");
    let mut text = "merge_deadline_ms = 600000\n".to_owned();
    if let Ok(b) = std::env::var("PENDING_MEMORY_BYTES") {
        text += &format!("max_pending_bytes = {b}\n");
    }
    std::fs::write(&config, text).unwrap();
    let extra: Vec<String> = vec![
        "--metrics-addr".into(),
        "127.0.0.1:0".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut relay = Trelayd::start_with_output(tmp.path(), &out, &extra).unwrap();
    let pid = relay.pid().unwrap();
    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let mut s = RelaySession::connect(control, data, &SessionConfig::new("flood", "mem-host"))
        .await
        .unwrap();
    let trace = SynthTrace::new("mem-host", "flood", 4096);
    let path = "ust/uid/0/64-bit";
    let mut streams = Vec::new();
    for i in 0..STREAMS {
        streams.push(s.add_stream(&format!("channel0_{i}"), path).await.unwrap());
    }
    s.streams_sent().await.unwrap();
    let mut gens: Vec<_> = (0..STREAMS).map(|i| trace.stream(i).unwrap()).collect();
    let mut most = 0u64;
    for round in 0..ORPHANS_PER_STREAM {
        for (st, gen) in streams.iter().zip(gens.iter_mut()) {
            let index = gen.next_packet().index;
            s.send_index_only(*st, &index).await.unwrap();
        }
        if round % 50 == 49 {
            most = most.max(rss_kib(pid));
        }
    }
    s.control().drain_indexes().await.unwrap();
    most = most.max(rss_kib(pid));
    let halves = relay.metric("trelay_merge_pending_halves");
    eprintln!("peak resident memory {most} KiB, {halves} halves pending");
    assert!(
        most < RSS_CAP_KIB,
        "resident memory reached {most} KiB (cap {RSS_CAP_KIB} KiB) with {halves} halves pending"
    );
    drop(s);
    relay.stop_ok().unwrap();
}
