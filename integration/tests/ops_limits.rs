//! The operations listener (`--metrics-addr`) under a flood of idle and half-sent connections,
//! while a session streams over the LTTng ports: the listener keeps to its own `[limits]`
//! (connections per address, header and idle deadlines, so the flood is closed), `/metrics`
//! still answers other addresses, and ingest is not starved of descriptors even when the
//! listener's limits are raised past the process's open-file limit (`fd_reserve`).

mod consumer_support;

use anyhow::{ensure, Context, Result};
use consumer_support::{bt, relay_url, runtime};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use trelay_consumer::bench::{bench, BenchOptions};
use trelay_integration::peers::{connect_from, raise_fd_limit};
use trelay_integration::relay::Trelayd;

fn relay(dir: &std::path::Path, limits: &str) -> Result<Trelayd> {
    let cfg = dir.join("trelay.toml");
    std::fs::write(&cfg, format!("[limits]\n{limits}"))?;
    let cfg = cfg.to_str().context("path")?.to_owned();
    Trelayd::start(
        dir,
        &[
            "--durability=none",
            "--metrics-addr",
            "127.0.0.1:0",
            "--config",
            &cfg,
        ],
    )
}

/// An HTTP GET from `src`; the status code (0 when there is no answer).
fn get_from(src: &str, port: u16, path: &str) -> u16 {
    let Ok(mut s) = connect_from(src, port) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Streams a synthetic LTTng session through `relay` for a moment; every event arrives.
fn stream_a_session(relay: &Trelayd, name: &str, streams: u32) -> Result<()> {
    let o = BenchOptions {
        url: relay_url(relay.ports),
        tls: None,
        streams,
        packet_size: 4096,
        duration: Duration::from_millis(500),
        connections: 1,
        sessions: 1,
        no_index: false,
        index_window: 4,
        relay_pid: None,
        session: name.into(),
        hostname: "benchhost".into(),
        label: None,
        trace_format: trelay_proto::TraceFormat::Ctf1_8,
    };
    let r = runtime()
        .block_on(bench(&o))
        .with_context(|| relay.log_tail())?;
    ensure!(r.packets > 0 && r.bytes == r.packets * 4096, "{r:?}");
    let mut events = 0u64;
    for p in &r.relay_paths {
        events += bt(&relay.out.join(p))?.lines().count() as u64;
    }
    ensure!(
        events == r.events,
        "{events} events read, {} sent",
        r.events
    );
    Ok(())
}

/// Connects from `src`, giving up after a moment (a listener that stopped accepting lets
/// its backlog fill up).
fn try_connect(src: &str, port: u16) -> Option<TcpStream> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let ip: std::net::IpAddr = src.parse().ok()?;
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).ok()?;
    s.bind(&SockAddr::from(std::net::SocketAddr::new(ip, 0)))
        .ok()?;
    let to = SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    s.connect_timeout(&to, Duration::from_millis(300)).ok()?;
    Some(s.into())
}

/// Opens `n` connections from `src` to the operations port, every other one sending half a
/// request head.
fn flood(src: &str, port: u16, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::new();
    for i in 0..n {
        let Some(mut s) = try_connect(src, port) else {
            continue;
        };
        if i % 2 == 1 {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
        }
        open.push(s);
    }
    open
}

/// Whether the relay closed `s` (checked without waiting; what it sent before closing, an
/// error reply, is read and dropped).
fn is_closed(s: &TcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut b = [0u8; 4096];
    let gone = loop {
        match (&*s).read(&mut b) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) => break e.kind() != std::io::ErrorKind::WouldBlock,
        }
    };
    let _ = s.set_nonblocking(false);
    gone
}

/// The connections of a flood seen closed so far (a closed one is not read again).
struct Seen(Vec<bool>);

impl Seen {
    fn new(n: usize) -> Seen {
        Seen(vec![false; n])
    }

    /// How many of `conns` the relay has closed by now.
    fn closed(&mut self, conns: &[TcpStream]) -> usize {
        for (seen, s) in self.0.iter_mut().zip(conns) {
            if !*seen {
                *seen = is_closed(s);
            }
        }
        self.0.iter().filter(|c| **c).count()
    }
}

#[test]
fn a_flood_of_idle_operations_connections_is_bounded_and_closed() -> Result<()> {
    raise_fd_limit();
    let tmp = tempfile::tempdir()?;
    let mut relay = relay(
        tmp.path(),
        "ops_max_connections_per_peer = 16\nops_header_timeout_ms = 1000\nops_idle_timeout_ms = 2000\n",
    )?;
    let ops = relay.metrics.context("no metrics port")?;
    let conns = flood("127.0.0.1", ops, 400);
    let mut seen = Seen::new(conns.len());
    // Over the per-address limit, the flood is closed at accept.
    trelay_integration::wait_for(Duration::from_secs(10), "the excess closed", || {
        seen.closed(&conns) >= 400 - 16
    })?;
    ensure!(
        seen.closed(&conns) < 400,
        "the relay closed the admitted ones at once"
    );
    // Another address still gets its metrics, and a session streams meanwhile.
    ensure!(get_from("127.0.0.5", ops, "/metrics") == 200);
    stream_a_session(&relay, "flooded", 32)?;
    // The idle and half-sent ones are closed by their deadlines.
    trelay_integration::wait_for(
        Duration::from_secs(10),
        "every flood connection closed",
        || seen.closed(&conns) == 400,
    )
    .with_context(|| format!("{} of 400 closed", seen.closed(&conns)))?;
    let text = relay.metrics_text();
    ensure!(
        text.contains(
            "trelay_refused_total{port=\"metrics\",reason=\"ops_max_connections_per_peer\"}"
        ),
        "refusals not counted:\n{text}"
    );
    drop(conns);
    relay.stop_ok()
}

#[test]
fn the_operations_listener_cannot_take_the_descriptors_ingest_needs() -> Result<()> {
    raise_fd_limit();
    let tmp = tempfile::tempdir()?;
    // Limits raised past the descriptors the process has: only the reserve protects ingest.
    let mut relay = relay(
        tmp.path(),
        "ops_max_connections = 100000\nops_max_connections_per_peer = 100000\n\
         ops_header_timeout_ms = 60000\nops_idle_timeout_ms = 60000\nfd_reserve = 200\n",
    )?;
    let pid = relay.pid().context("pid")?;
    let st = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=400:400"])
        .status()?;
    ensure!(st.success(), "prlimit failed");
    let ops = relay.metrics.context("no metrics port")?;
    let mut conns = Vec::new();
    for src in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        conns.extend(flood(src, ops, 100));
    }
    // The listener stops accepting within the reserve: the rest wait in the backlog.
    trelay_integration::wait_for(
        Duration::from_secs(10),
        "the listener at its reserve",
        || {
            relay
                .log_text()
                .contains("within the descriptors reserved for ingest")
        },
    )
    .with_context(|| relay.log_tail())?;
    // 64 streams: 128 stream files, more than the flood would have left without the reserve.
    stream_a_session(&relay, "reserved", 64)?;
    ensure!(
        !relay.log_text().contains("out of file descriptors"),
        "ingest ran out of descriptors:\n{}",
        relay.log_tail()
    );
    // Once the flood goes, the listener serves again.
    drop(conns);
    trelay_integration::wait_for(Duration::from_secs(20), "/metrics again", || {
        get_from("127.0.0.5", ops, "/healthz") == 200
    })?;
    relay.stop_ok()
}
