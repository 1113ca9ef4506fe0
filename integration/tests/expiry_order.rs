//! Halves that expire by deadline are recorded in sequence order: 600 orphan index halves of one
//! stream (consecutive packets, their data never sent) expire after `merge_deadline_ms` and the
//! stream's loss sidecar holds one merged range of lost packets, not 256 single ones and
//! `truncated` (as when they were recorded newest first).

use std::time::Duration;
use trelay_consumer::sender::{RelaySession, SessionConfig};
use trelay_consumer::synth::SynthTrace;
use trelay_integration::relay::Trelayd;

const ORPHANS: u64 = 600;

fn find_sidecar(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_sidecar(&p) {
                return Some(f);
            }
        } else if p.to_string_lossy().ends_with(".loss.json") {
            return Some(p);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_expiries_merge_into_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("trelay.toml");
    std::fs::write(&config, "merge_deadline_ms = 500\ntick_ms = 50\n").unwrap();
    let cfg = config.display().to_string();
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(tmp.path(), &out, &["--config", &cfg]).unwrap();
    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let mut s = RelaySession::connect(control, data, &SessionConfig::new("orphans", "exp-host"))
        .await
        .unwrap();
    let trace = SynthTrace::new("exp-host", "orphans", 4096);
    let path = "ust/uid/0/64-bit";
    let st = s.add_stream("channel0_0", path).await.unwrap();
    let meta = s.add_stream("metadata", path).await.unwrap();
    s.streams_sent().await.unwrap();
    for p in trace.metadata() {
        s.send_metadata(meta, &p.content, p.padding).await.unwrap();
    }
    let mut gen = trace.stream(0).unwrap();
    for _ in 0..ORPHANS {
        let p = gen.next_packet();
        let index = p.index;
        s.send_index_only(st, &index).await.unwrap();
    }
    s.control().drain_indexes().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let v = loop {
        let v = find_sidecar(&out)
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if let Some(v) = v
            .as_ref()
            .filter(|v| v["lost_packets"].as_u64() == Some(ORPHANS))
        {
            break v.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sidecar with {ORPHANS} lost packets: {v:?}\n{}",
            relay.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(v["truncated"], false, "{v}");
    let ranges = v["lost"].as_array().unwrap();
    assert_eq!(ranges.len(), 1, "one merged range: {v}");
    assert_eq!(ranges[0]["net_seq"], serde_json::json!([0, ORPHANS - 1]));
    drop(s);
    relay.stop_ok().unwrap();
}

/// Halves still waiting at SIGTERM (an index half whose data never came, deadline far off) are
/// recorded in the loss sidecar by the final commit, not dropped without a trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_pending_at_shutdown_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(tmp.path(), &out, &[]).unwrap();
    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let mut s = RelaySession::connect(control, data, &SessionConfig::new("pending", "sd-host"))
        .await
        .unwrap();
    let trace = SynthTrace::new("sd-host", "pending", 4096);
    let path = "ust/uid/0/64-bit";
    let st = s.add_stream("channel0_0", path).await.unwrap();
    let meta = s.add_stream("metadata", path).await.unwrap();
    s.streams_sent().await.unwrap();
    for p in trace.metadata() {
        s.send_metadata(meta, &p.content, p.padding).await.unwrap();
    }
    let mut gen = trace.stream(0).unwrap();
    for _ in 0..50 {
        let index = gen.next_packet().index;
        s.send_index_only(st, &index).await.unwrap();
    }
    s.control().drain_indexes().await.unwrap();
    // SIGTERM with the connections open, long before the 10 s merge deadline.
    let code = relay.stop().unwrap();
    drop(s);
    assert_eq!(code, 0, "{}", relay.log_tail());
    let v = find_sidecar(&out)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_else(|| panic!("no loss sidecar\n{}", relay.log_tail()));
    assert_eq!(v["lost_packets"], 50, "{v}");
    assert_eq!(v["lost"][0]["net_seq"], serde_json::json!([0, 49]), "{v}");
}
