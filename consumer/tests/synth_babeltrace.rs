//! babeltrace2 decodes synthetic traces written locally: every event of every packet, with the
//! fields the generator put there.

use std::process::Command;

use trelay_consumer::synth::{write_trace_dir, SynthTrace};

fn babeltrace(dir: &std::path::Path) -> String {
    let out = Command::new("babeltrace2")
        .arg(dir)
        .output()
        .expect("babeltrace2 runs");
    assert!(
        out.status.success(),
        "babeltrace2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn babeltrace_reads_every_synthetic_event() {
    for (packet_len, streams, packets) in [(4096usize, 1u32, 3u64), (8192, 3, 2), (148, 2, 5)] {
        let dir = tempfile::tempdir().unwrap();
        let trace = SynthTrace::new("synthhost", "synth", packet_len);
        let events = write_trace_dir(&trace, dir.path(), streams, packets).unwrap();
        let text = babeltrace(dir.path());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, events, "packet_len {packet_len}");
        assert!(lines.iter().all(|l| l.contains("trelay:synthetic")));
        for s in 0..streams {
            let per_stream = lines
                .iter()
                .filter(|l| l.contains(&format!("instance = {s},")))
                .count() as u64;
            assert_eq!(per_stream * u64::from(streams), events);
        }
        assert!(lines[0].contains("index = 0,"), "{}", lines[0]);
        assert!(lines[0].contains("synthhost"), "{}", lines[0]);
    }
}

#[test]
fn synthetic_timestamps_increase_across_packets() {
    let dir = tempfile::tempdir().unwrap();
    let trace = SynthTrace::new("h", "synth", 4096);
    write_trace_dir(&trace, dir.path(), 1, 3).unwrap();
    let out = Command::new("babeltrace2")
        .args(["--clock-cycles"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let cycles: Vec<u64> = text
        .lines()
        .map(|l| l[1..l.find(']').unwrap()].parse().unwrap())
        .collect();
    assert!(cycles.len() > 100);
    assert!(cycles.windows(2).all(|w| w[0] < w[1]), "not increasing");
    assert_eq!(cycles[0], trelay_consumer::synth::packet::BASE_TS);
}

/// babeltrace2 2.1 (the LTTng 2.15 bundle's, beside the project as `../shared`), which reads
/// CTF 2; `None` when the bundle is absent.
fn babeltrace21() -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/peers/lttng-2.15/bin/babeltrace2");
    p.is_file().then_some(p)
}

#[test]
fn babeltrace_2_1_reads_every_synthetic_event_in_both_formats() {
    use trelay_proto::ctf::format::TraceFormat;
    let bt = babeltrace21().expect("the LTTng 2.15 bundle at ../shared/peers/lttng-2.15");
    let mut printed = Vec::new();
    for format in TraceFormat::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut trace = SynthTrace::new("synthhost", "synth", 8192).with_format(format);
        // Both formats describe the same clock: print both with the same offset.
        trace.params.clock_offset_s = 1_700_000_000;
        let events = write_trace_dir(&trace, dir.path(), 2, 3).unwrap();
        let metadata = std::fs::read(dir.path().join("metadata")).unwrap();
        assert_eq!(TraceFormat::of_metadata(&metadata), Some(format));
        let out = Command::new(&bt).arg(dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(lines.len() as u64, events, "{format}");
        assert!(lines
            .iter()
            .all(|l| l.contains("synthhost trelay:synthetic")));
        printed.push(lines);
    }
    assert_eq!(
        printed[0], printed[1],
        "CTF 1.8 and CTF 2 print differently"
    );
}
