//! Operations end to end: a real Prometheus server scrapes trelayd's `/metrics` while a session
//! loses packets, `promtool` checks the exposition, the health endpoints answer, and systemd's
//! notify protocol is spoken to a socket the test owns.

use anyhow::{bail, Context, Result};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trelay_consumer::sender::{RelaySession, SessionConfig};
use trelay_consumer::synth::SynthTrace;
use trelay_integration::relay::Trelayd;

/// A Prometheus server scraping one target every second, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, target: u16) -> Result<Prometheus> {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: trelay\n    static_configs:\n\
                 \x20     - targets: ['127.0.0.1:{target}']\n"
            ),
        )?;
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("prometheus is installed (scripts/test.sh installs Debian's package)")?;
        let p = Prometheus { child, port };
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        wait(Duration::from_secs(60), "prometheus ready", || {
            ureq::get(&ready).call().is_ok()
        })?;
        Ok(p)
    }

    /// The value of the instant query `q`'s first sample, if any.
    fn query(&self, q: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let body = ureq::get(&url)
            .query("query", q)
            .call()
            .ok()?
            .into_string()
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("timed out waiting for {what}")
}

fn get(port: u16, path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    match ureq::get(&url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// A relay with its operations port, expiring half entries after 300 ms.
fn relay(dir: &Path) -> Trelayd {
    relay_with(dir, &[])
}

fn relay_with(dir: &Path, more: &[&str]) -> Trelayd {
    let config = dir.join("trelay.toml");
    std::fs::write(&config, "merge_deadline_ms = 300\ntick_ms = 50\n").unwrap();
    let cfg = config.display().to_string();
    let out = dir.join("out");
    let mut args = vec!["--metrics-addr", "127.0.0.1:0", "--config", &cfg];
    args.extend_from_slice(more);
    Trelayd::start_with_output(dir, &out, &args).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_a_sessions_loss_as_it_happens() {
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = relay(tmp.path());
    let metrics = relay.metrics.expect("a metrics port");
    let prom = Prometheus::start(tmp.path(), metrics).unwrap();

    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let cfg = SessionConfig::new("lossy", "ops-host");
    let mut s = RelaySession::connect(control, data, &cfg).await.unwrap();
    let trace = SynthTrace::new("ops-host", "lossy", 4096);
    let path = "ust/uid/0/64-bit";
    let stream = s.add_stream("channel0_0", path).await.unwrap();
    let meta = s.add_stream("metadata", path).await.unwrap();
    s.streams_sent().await.unwrap();
    for p in trace.metadata() {
        s.send_metadata(meta, &p.content, p.padding).await.unwrap();
    }
    let mut gen = trace.stream(0).unwrap();
    // 20 whole packets, then 5 whose data is dropped, then 10 whole ones.
    for i in 0..35 {
        let p = gen.next_packet();
        if (20..25).contains(&i) {
            s.send_index_only(stream, &p.index).await.unwrap();
        } else {
            s.send_packet(stream, p.content, p.padding, Some(&p.index))
                .await
                .unwrap();
        }
    }
    // While the session is still open, Prometheus shows the loss.
    let lost = r#"trelay_lost_packets_total{session=~"ops-host/lossy.*"}"#;
    let received = r#"trelay_received_packets_total{session=~"ops-host/lossy.*"}"#;
    let seen = wait(Duration::from_secs(60), "the loss in Prometheus", || {
        prom.query(lost) == Some(5.0)
    });
    let log = std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default();
    seen.with_context(|| format!("last value {:?}\n{log}", prom.query(lost)))
        .unwrap();
    assert_eq!(prom.query(received), Some(30.0));
    assert_eq!(
        prom.query(r#"trelay_connections{port="data",state="open"}"#),
        Some(1.0)
    );
    assert_eq!(prom.query("trelay_sessions"), Some(1.0));

    // The exposition passes promtool's checks.
    let (code, text) = get(metrics, "/metrics");
    assert_eq!(code, 200);
    assert!(
        text.contains("trelay_commit_duration_seconds_bucket"),
        "{text}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    s.close(Duration::from_secs(30)).await.unwrap();
    relay.stop_ok().unwrap();
}

#[test]
fn health_endpoints_answer_and_logs_can_be_json() {
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = relay_with(tmp.path(), &["--log-format", "json"]);
    let port = relay.metrics.unwrap();
    assert_eq!(get(port, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(port, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(port, "/nothing-here").0, 404);
    relay.stop_ok().unwrap();
    let log = relay.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let listening: Vec<&str> = lines
        .iter()
        .filter(|v| v["message"] == "listening")
        .filter_map(|v| v["port"].as_str())
        .collect();
    assert_eq!(listening, ["control", "data", "live", "metrics"], "{log}");
}

/// Receives notify messages until one contains `what` (at most 20 s).
fn expect_notify(sock: &UnixDatagram, what: &str, seen: &mut Vec<String>) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == what);
            seen.push(msg);
            if hit {
                return;
            }
        }
    }
    panic!("no {what} from trelayd; got {seen:?}");
}

#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let notify = path.display().to_string();
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_env(
        tmp.path(),
        &out,
        &[],
        &[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "200000")],
    )
    .unwrap();
    let mut seen = Vec::new();
    expect_notify(&sock, "READY=1", &mut seen);
    // The watchdog is pinged every 100 ms: several pings within a second.
    let pings_before = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    let until = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let pings = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() - pings_before;
    assert!(pings >= 3, "watchdog pings in 1 s: {pings} ({seen:?})");
    relay.stop_ok().unwrap();
    expect_notify(&sock, "STOPPING=1", &mut seen);
    // One line per listener at start and one at a clean stop, at the default level.
    let log = relay.log_text();
    for port in ["control", "data", "live"] {
        assert!(
            log.contains(&format!("port=\"{port}\"")) || log.contains(&format!("port={port}")),
            "{log}"
        );
    }
    assert!(log.contains("stopped cleanly"), "{log}");
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/trelayd.service"
    ))
    .unwrap();
    assert!(unit.contains("Type=notify"), "{unit}");
    assert!(unit.contains("WatchdogSec="), "{unit}");
    let bin = trelay_integration::relay::trelayd_bin();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("trelayd.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/trelayd", &bin.display().to_string()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(cmd: &str) -> Result<std::path::PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .context("not found")
}
