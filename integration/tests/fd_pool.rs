//! Many streams, few descriptors: trelayd with an open-file pool smaller than the number of
//! stream files still writes every packet where it belongs; babeltrace2 reads all of them, and
//! the relay's own metrics show the pool bounded and closing files.

use std::time::Duration;
use trelay_consumer::sender::{RelaySession, SessionConfig};
use trelay_consumer::synth::SynthTrace;
use trelay_integration::relay::{metric_value as metric, Trelayd};

const STREAMS: u64 = 120;
const ROUNDS: u64 = 4;
const MAX_OPEN: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_streams_than_open_files_are_written_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("trelay.toml");
    std::fs::write(&config, format!("max_open_files = {MAX_OPEN}\n")).unwrap();
    let cfg = config.display().to_string();
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(
        tmp.path(),
        &out,
        &["--config", &cfg, "--metrics-addr", "127.0.0.1:0"],
    )
    .unwrap();
    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let cfg = SessionConfig::new("many", "pool-host");
    let mut s = RelaySession::connect(control, data, &cfg).await.unwrap();
    let trace = SynthTrace::new("pool-host", "many", 4096);
    let path = "ust/uid/0/64-bit";
    let mut streams = Vec::new();
    for i in 0..STREAMS {
        streams.push(s.add_stream(&format!("channel0_{i}"), path).await.unwrap());
    }
    let meta = s.add_stream("metadata", path).await.unwrap();
    s.streams_sent().await.unwrap();
    for p in trace.metadata() {
        s.send_metadata(meta, &p.content, p.padding).await.unwrap();
    }
    let mut gens: Vec<_> = (0..STREAMS)
        .map(|i| trace.stream(u32::try_from(i).unwrap()).unwrap())
        .collect();
    let mut events = 0u64;
    let metrics_url = format!("http://127.0.0.1:{}/metrics", relay.metrics.unwrap());
    let mut most_open = 0.0f64;
    for round in 0..ROUNDS {
        // Round robin: every stream's files are used again after all the others'.
        for (st, gen) in streams.iter().zip(gens.iter_mut()) {
            events += u64::from(gen.events_per_packet());
            let p = gen.next_packet();
            s.send_packet(*st, p.content, p.padding, Some(&p.index))
                .await
                .unwrap();
        }
        s.wait_data_pending(Duration::from_secs(30)).await.unwrap();
        // Over the bound the relay commits at once and closes idle files at its next ticks.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let text = ureq::get(&metrics_url)
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let open = metric(&text, "trelay_pool_open_files").unwrap();
        most_open = most_open.max(open);
        if round == ROUNDS - 1 {
            let evictions = metric(&text, "trelay_pool_evictions_total").unwrap();
            assert!(evictions > 0.0, "the pool closed nothing:\n{text}");
        }
    }
    // Between rounds everything is committed and idle: the pool is back under its bound (the
    // default commit interval is 1 s; being over the bound commits sooner).
    assert!(
        most_open <= MAX_OPEN as f64,
        "{most_open} files open at once for {} stream files",
        2 * STREAMS
    );
    s.close(Duration::from_secs(60)).await.unwrap();
    relay.stop_ok().unwrap();
    let report = trelay_viewer::check::check(&out).unwrap();
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.entries, STREAMS * ROUNDS);
    let bt = std::process::Command::new("babeltrace2")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        bt.status.success(),
        "{}",
        String::from_utf8_lossy(&bt.stderr)
    );
    let lines = bt.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    assert_eq!(lines, events, "babeltrace2 reads every event");
}
