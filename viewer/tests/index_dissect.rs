//! `index` cross-checked with babeltrace2's event timestamps on the fixture, and `dissect`
//! decoding every byte of the fixture's capture and stream files.

mod support;

use std::process::Command;
use support::*;

/// `(cycles, wall-clock "YYYY-mm-dd HH:MM:SS.nnnnnnnnn", cpu)` of every event, from babeltrace2.
fn babeltrace_events() -> Vec<(u64, String, u64)> {
    let root = fixture().join("relay-out");
    let run = |args: &[&str]| {
        let o = Command::new("babeltrace2")
            .args(args)
            .arg(&root)
            .env("TZ", "UTC")
            .output()
            .expect("babeltrace2 runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let cycles = run(&["--clock-cycles"]);
    let dates = run(&["--clock-date", "--clock-gmt"]);
    let inside = |l: &str| {
        l.strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(a, _)| a.to_owned())
            .unwrap()
    };
    let cpu = |l: &str| {
        let rest = l.split("cpu_id = ").nth(1).unwrap();
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let events: Vec<_> = cycles
        .lines()
        .zip(dates.lines())
        .map(|(c, d)| (inside(c).parse::<u64>().unwrap(), inside(d), cpu(c)))
        .collect();
    assert_eq!(events.len(), 1590);
    events
}

fn query(args: &[&str]) -> serde_json::Value {
    let root = fixture().join("relay-out");
    let mut all = vec!["index", root.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let o = viewer(&all);
    assert_exit_0(&o, "index");
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn every_event_lies_in_an_indexed_packet_of_its_cpu_and_range_queries_find_it() {
    let events = babeltrace_events();
    // All packets once.
    let all = query(&["--packets"]);
    let trace = &all["traces"][0];
    let clock = &trace["clock"];
    assert_eq!(clock["freq"], 1_000_000_000u64);
    assert_eq!(clock["offset"], 1_795_411_540_087_266_030u64);
    let packets = trace["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 8);
    let stream_of = |cpu: u64| format!("{TRACE_REL}/channel0_{cpu}");
    for (cycles, date, cpu) in &events {
        let holders: Vec<_> = packets
            .iter()
            .filter(|p| p["stream"] == stream_of(*cpu).as_str())
            .filter(|p| {
                p["begin"].as_u64().unwrap() <= *cycles && *cycles <= p["end"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(holders.len(), 1, "event at {cycles} on cpu {cpu}");
        let _ = date;
    }
    // Range queries by cycles and by wall-clock time, on a sample of events.
    let step = events.len() / 12;
    for (cycles, date, cpu) in events.iter().step_by(step).chain(events.last()) {
        let stream = format!("channel0_{cpu}");
        let at = |point: &str| query(&["--from", point, "--to", point, "--stream", &stream]);
        let by_cycles = at(&cycles.to_string());
        let rfc = format!("{}Z", date.replacen(' ', "T", 1));
        let by_time = at(&rfc);
        for r in [&by_cycles, &by_time] {
            let p = r["traces"][0]["packets"].as_array().unwrap();
            assert_eq!(p.len(), 1, "event {cycles} ({rfc}): {p:?}");
            assert!(
                p[0]["begin"].as_u64().unwrap() <= *cycles
                    && *cycles <= p[0]["end"].as_u64().unwrap()
            );
            assert_eq!(p[0]["stream"], stream_of(*cpu).as_str());
        }
        // The clock conversion agrees with babeltrace2's to the nanosecond.
        let conv = at(&cycles.to_string());
        let p = &conv["traces"][0]["packets"][0];
        let begin = p["begin"].as_u64().unwrap();
        let begin_time = p["begin_time"].as_str().unwrap();
        let mut c2 = trelay_viewer::tsdl::Clock {
            name: String::new(),
            freq: 1_000_000_000,
            offset_s: 0,
            offset: 1_795_411_540_087_266_030,
        };
        assert_eq!(c2.format(begin), begin_time);
        c2.name = "monotonic".into();
        assert_eq!(c2.format(*cycles), rfc);
    }
}

#[test]
fn per_stream_facts() {
    let r = query(&[]);
    let streams = r["traces"][0]["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["packets"], 5);
    assert_eq!(streams[0]["bytes"], 57344);
    assert_eq!(streams[1]["packets"], 3);
    assert_eq!(streams[1]["bytes"], 36864);
    for s in streams {
        assert_eq!(s["events_discarded"], 0);
        assert!(s["seq_gaps"].as_array().unwrap().is_empty());
        assert!(s["lost"].as_array().unwrap().is_empty());
    }
    let only = query(&["--stream", "*_1"]);
    assert_eq!(only["traces"][0]["streams"].as_array().unwrap().len(), 1);
}

#[test]
fn seq_gaps_and_lost_markers_are_reported() {
    let (_t, root) = fixture_copy();
    let idx = root.join(TRACE_REL).join("index/channel0_0.idx");
    let mut bytes = std::fs::read(&idx).unwrap();
    // Entry 2 becomes a lost-packet marker; entry 4's packet_seq_num jumps from 3 to 9.
    bytes[16 + 2 * 72..16 + 2 * 72 + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    bytes[16 + 4 * 72 + 64..16 + 4 * 72 + 72].copy_from_slice(&9u64.to_be_bytes());
    std::fs::write(&idx, bytes).unwrap();
    // trelayd's loss sidecar for the stream.
    std::fs::write(
        idx.with_file_name("channel0_0.loss.json"),
        r#"{"format":"trelay-loss/1","stream":"channel0_0","lost_packets":2,"unindexed_packets":0,
           "early_expired":0,"lost":[{"net_seq":[7,8],"packet_seq":[7,8]}],"unindexed":[],"truncated":false}"#,
    )
    .unwrap();
    let o = viewer(&["index", root.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(
        text.contains("relay loss log: 2 lost packet(s), 0 unindexed packet(s)"),
        "{text}"
    );
    assert!(
        text.contains("lost {\"net_seq\":[7,8],\"packet_seq\":[7,8]}"),
        "{text}"
    );
    let o = viewer(&["index", root.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["traces"][0]["streams"][0]["loss_log"]["lost_packets"], 2);
    assert!(v["traces"][0]["streams"][1].get("loss_log").is_none());
    assert!(
        text.contains("channel0_0: 4 packets, 40960 bytes"),
        "{text}"
    );
    assert!(
        text.contains("gap: packet_seq_num 3 -> 9 (5 missing)"),
        "{text}"
    );
    assert!(text.contains("lost: entry 2 seq=2 "), "{text}");
}

#[test]
fn dissect_decodes_every_byte_of_the_capture() {
    let o = viewer(&["dissect", fixture().join("capture.pcap").to_str().unwrap()]);
    let text = stdout(&o);
    assert_exit_0(&o, "dissect");
    assert!(String::from_utf8_lossy(&o.stderr).is_empty());
    // The byte counts of the three connections match the split files.
    let streams = fixture().join("streams");
    for (port, c, s) in [
        (5342, "5342-0.client", "5342-0.server"),
        (5343, "5343-0.client", "5343-0.server"),
        (5344, "5344-0.client", "5344-0.server"),
    ] {
        let cl = std::fs::metadata(streams.join(c)).unwrap().len();
        let sl = std::fs::metadata(streams.join(s)).unwrap().len();
        let header = format!(": {cl} bytes from the client, {sl} from the relay");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# {port}-0 ")) && l.ends_with(&header)),
            "{port}: {header}"
        );
    }
    let count = |p: &str| text.lines().filter(|l| l.contains(p)).count();
    assert_eq!(count("5343-0 C> @"), 8, "8 data packets");
    assert_eq!(count(" SEND_METADATA "), 1);
    assert_eq!(
        count("C> @") - count("SEND_METADATA") - 8,
        count("S< @"),
        "one reply per request"
    );
    assert!(text.contains("5342-0 S< @20 CREATE_SESSION reply: session=1 LTTNG_OK (10) path=\"vm/fx3754-20261123-062223\""));
    assert!(text.contains("ATTACH_SESSION session=1 seek=Last"));
}

#[test]
fn dissect_decodes_every_stream_file() {
    for name in [
        "5342-0.client",
        "5342-0.server",
        "5343-0.client",
        "5343-0.server",
        "5344-0.client",
        "5344-0.server",
    ] {
        let p = fixture().join("streams").join(name);
        let o = viewer(&["dissect", p.to_str().unwrap()]);
        assert_exit_0(&o, name);
        let text = stdout(&o);
        let arrow = if name.ends_with("client") { "C>" } else { "S<" };
        assert!(text.lines().all(|l| l.contains(arrow)), "{name}");
        if std::fs::metadata(&p).unwrap().len() > 0 {
            assert!(text.lines().count() > 0, "{name}");
        }
    }
}

#[test]
fn dissect_fails_on_bytes_it_cannot_decode() {
    let t = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture().join("streams/5342-0.client")).unwrap();
    bytes.truncate(5000); // inside SEND_METADATA
    let p = t.path().join("5342-0.client");
    std::fs::write(&p, &bytes).unwrap();
    let o = viewer(&["dissect", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("5342-0.client: offset 476: incomplete message"),
        "{err}"
    );
    // An unknown live command.
    let p = t.path().join("bytes");
    let mut live = std::fs::read(fixture().join("streams/5344-0.client")).unwrap();
    live[36 + 11] = 42; // CREATE_SESSION -> command 42
    std::fs::write(&p, &live).unwrap();
    let o = viewer(&[
        "dissect",
        p.to_str().unwrap(),
        "--port",
        "5344",
        "--direction",
        "client",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bytes.client: offset 36: unknown command 42"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A byte file whose port cannot be known is a usage error.
    let o = viewer(&["dissect", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}
