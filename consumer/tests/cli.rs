//! The `trelay-consumer` binary against the real lttng-relayd: `send` of a synthetic trace
//! (with and without index files) and `bench --json`; bad arguments fail cleanly.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trelay_consumer::synth::{write_trace_dir, SynthTrace};

const BIN: &str = env!("CARGO_BIN_EXE_trelay-consumer");

struct Relay {
    child: Child,
    control: u16,
    data: u16,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts lttng-relayd on free ports; if it dies at start (a port taken meanwhile by another
/// test), tries again on other ports.
fn lttng_relayd(out: &Path) -> Relay {
    for _ in 0..5 {
        if let Some(r) = try_lttng_relayd(out) {
            return r;
        }
    }
    panic!("lttng-relayd did not start");
}

fn try_lttng_relayd(out: &Path) -> Option<Relay> {
    let (control, data, live) = (free_port(), free_port(), free_port());
    let url = |p: u16| format!("tcp://127.0.0.1:{p}");
    let child = Command::new("lttng-relayd")
        .arg("-o")
        .arg(out)
        .args(["-C", &url(control), "-D", &url(data), "-L", &url(live)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("lttng-relayd is installed");
    let mut relay = Relay {
        child,
        control,
        data,
    };
    let start = Instant::now();
    let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
    while !(up(control) && up(data)) {
        if relay.child.try_wait().ok().flatten().is_some() {
            return None;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "lttng-relayd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still running once both ports answer (it did not fail on the live port).
    std::thread::sleep(Duration::from_millis(100));
    if relay.child.try_wait().ok().flatten().is_some() {
        return None;
    }
    Some(relay)
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn babeltrace(p: &Path) -> String {
    let out = Command::new("babeltrace2").arg(p).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn send_synthetic_trace_with_and_without_index() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("relay");
    let relay = lttng_relayd(&out);
    let url = format!("net://127.0.0.1:{}:{}", relay.control, relay.data);
    let local = tmp.path().join("local");
    let trace = SynthTrace::new("clihost", "clitrace", 8192);
    let events = write_trace_dir(&trace, &local.join("ust/uid/0/64-bit"), 3, 7).unwrap();
    let original = babeltrace(&local);
    assert_eq!(original.lines().count() as u64, events);
    for (session, strip) in [("withidx", false), ("noidx", true)] {
        if strip {
            std::fs::remove_dir_all(local.join("ust/uid/0/64-bit/index")).unwrap();
        }
        let (ok, stdout, stderr) = run(&[
            "send",
            local.to_str().unwrap(),
            "--url",
            &url,
            "--session",
            session,
            "--json",
        ]);
        assert!(ok, "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["packets"], 21);
        assert_eq!(report["streams_without_index"], if strip { 3 } else { 0 });
        let path = report["relay_path"].as_str().unwrap();
        assert!(path.starts_with(&format!("clihost/{session}-")), "{path}");
        assert_eq!(babeltrace(&out.join(path)), original);
        // The relay's index matches what the generator wrote, whether the consumer read it or
        // rebuilt it from packet headers.
        assert_eq!(
            std::fs::metadata(out.join(path).join("ust/uid/0/64-bit/index/channel0_1.idx"))
                .unwrap()
                .len(),
            16 + 7 * 72
        );
    }
}

#[test]
fn bench_reports_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("relay");
    let relay = lttng_relayd(&out);
    let url = format!("net://127.0.0.1:{}:{}", relay.control, relay.data);
    let pid = relay.child.id().to_string();
    let (ok, stdout, stderr) = run(&[
        "bench",
        "--url",
        &url,
        "--streams",
        "2",
        "--packet-size",
        "16K",
        "--duration",
        "0.3",
        "--json",
        "--relay-pid",
        &pid,
    ]);
    assert!(ok, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(r["packets"].as_u64().unwrap() > 0);
    assert_eq!(
        r["bytes"].as_u64().unwrap(),
        r["packets"].as_u64().unwrap() * 16384
    );
    assert!(r["mb_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        r["index_rtt_us"]["p99"].as_f64().unwrap() >= r["index_rtt_us"]["p50"].as_f64().unwrap()
    );
    assert!(r["relay_cpu_s_per_gb"].as_f64().is_some());
    let dir = out.join(r["relay_paths"][0].as_str().unwrap());
    assert_eq!(
        babeltrace(&dir).lines().count() as u64,
        r["events"].as_u64().unwrap()
    );
}

#[test]
fn bad_arguments_fail() {
    let (ok, _, err) = run(&["send", "/nonexistent", "--url", "tcp://x"]);
    assert!(!ok && err.contains("net://"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&[
        "send",
        tmp.path().to_str().unwrap(),
        "--url",
        "net://127.0.0.1:1:2",
    ]);
    assert!(!ok && err.contains("no trace found"), "{err}");
    let port = free_port();
    let (ok, _, err) = run(&[
        "bench",
        "--url",
        &format!("net://127.0.0.1:{port}:{port}"),
        "--duration",
        "0.1",
    ]);
    assert!(!ok && err.contains("cannot connect"), "{err}");
    let (ok, _, err) = run(&["bench", "--packet-size", "10", "--duration", "0.1"]);
    assert!(!ok && err.contains("packet size"), "{err}");
}
