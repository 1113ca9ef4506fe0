//! Load generation: synthetic streams of valid LTTng packets sent to a relay as fast as it takes
//! them, with throughput, SEND_INDEX round trips and the relay's CPU cost.
//!
//! Each of `connections` control+data pairs is one relay session (same name, host, creation
//! time and session UUID — the way several consumer daemons of one tracing session share an
//! output directory) carrying its own trace directory `ust/uid/<connection>/64-bit` with its own
//! metadata; streams are dealt round-robin to connections. Every connection sends its streams'
//! packets in turn, each followed by its SEND_INDEX (unless `no_index`), with at most
//! `index_window` replies left in flight (0: each waits for its reply, like lttng-consumerd). Throughput counts whole packets (padding included) over
//! the time from the first packet until the relay reports no data pending (or, without index,
//! until the last byte is written: relays cannot account for unindexed packets).

pub mod plot;
pub mod report;

use std::time::{Duration, Instant};
use trelay_proto::ctf::format::TraceFormat;

use hdrhistogram::Histogram;

use crate::sender::{RelaySession, SendError, SessionConfig};
use crate::synth::SynthTrace;
use crate::url::RelayUrl;

/// Options of [`bench()`].
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The relay.
    pub url: RelayUrl,
    /// TLS towards a trelay:// relay's `[tls]` port, when set.
    pub tls: Option<crate::native::client::ClientTls>,
    /// Number of data streams in total.
    pub streams: u32,
    /// Packet size in bytes.
    pub packet_size: usize,
    /// How long to send.
    pub duration: Duration,
    /// Control+data connection pairs.
    pub connections: u32,
    /// Tracing sessions the connection pairs are dealt among over net:// (1 ≤ sessions ≤
    /// connections); over trelay:// every connection is a session of its own.
    pub sessions: u32,
    /// Send no SEND_INDEX.
    pub no_index: bool,
    /// SEND_INDEX replies allowed to stay in flight (0: wait for each).
    pub index_window: usize,
    /// Relay process whose CPU time to measure.
    pub relay_pid: Option<u32>,
    /// Session name.
    pub session: String,
    /// Hostname.
    pub hostname: String,
    /// Free-form label copied to the report (e.g. which relay).
    pub label: Option<String>,
    /// The synthetic trace's format (CTF 2 sessions need a relay of protocol 2.15 over
    /// net://, the trace-format feature over trelay://).
    pub trace_format: TraceFormat,
}

/// What a bench run measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BenchReport {
    /// The run's label, if one was given.
    #[serde(default)]
    pub label: Option<String>,
    /// Streams.
    pub streams: u32,
    /// Connections.
    pub connections: u32,
    /// Tracing sessions the connections were dealt among (see [`BenchOptions::sessions`]).
    #[serde(default = "one")]
    pub sessions: u32,
    /// Packet size in bytes.
    pub packet_size: usize,
    /// Whether SEND_INDEX was sent per packet.
    pub index: bool,
    /// SEND_INDEX window.
    pub index_window: usize,
    /// Seconds from the first packet to the relay having everything.
    pub seconds: f64,
    /// Packets sent.
    pub packets: u64,
    /// Bytes of packets sent (padding included).
    pub bytes: u64,
    /// Events in the packets sent (what a reader of the relay's output must find).
    pub events: u64,
    /// Throughput in MB/s (10^6 bytes).
    pub mb_per_s: f64,
    /// Packets per second.
    pub packets_per_s: f64,
    /// SEND_INDEX round trip percentiles in µs (absent without index).
    pub index_rtt_us: Option<Percentiles>,
    /// Relay CPU seconds (user + system) during the run.
    pub relay_cpu_s: Option<f64>,
    /// Relay CPU seconds per GB (10^9 bytes) received.
    pub relay_cpu_s_per_gb: Option<f64>,
    /// Session directories on the relay (relative to its output root).
    pub relay_paths: Vec<String>,
    /// The synthetic trace's format (reports written before formats existed are CTF 1.8).
    #[serde(default)]
    pub trace_format: TraceFormat,
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// Why a bench run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Talking to the relay failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// Bad parameters.
    #[error("{0}")]
    Invalid(String),
    /// The relay address could not be resolved.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    /// The relay did not answer in time.
    #[error("the relay did not answer within {0:?} while {1}")]
    Timeout(Duration, &'static str),
}

/// Longest the set-up (sessions, streams, metadata) and the final drain may take.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Clock ticks per second of `/proc` times (Linux's USER_HZ, 100 on every architecture it
/// exports to user space).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system, all threads) a process used so far, from `/proc/PID/stat`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3; utime, stime are 14, 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

struct ConnResult {
    packets: u64,
    bytes: u64,
    events: u64,
    rtt: Option<Histogram<u64>>,
    path: String,
}

/// Runs a bench (see the module docs).
pub async fn bench(o: &BenchOptions) -> Result<BenchReport, BenchError> {
    if o.streams == 0 || o.connections == 0 || o.connections > o.streams {
        return Err(BenchError::Invalid("need 1 ≤ connections ≤ streams".into()));
    }
    if o.sessions == 0 || o.sessions > o.connections {
        return Err(BenchError::Invalid(
            "need 1 ≤ sessions ≤ connections".into(),
        ));
    }
    crate::synth::StreamGenerator::new([0; 16], 0, o.packet_size)
        .map_err(|e| BenchError::Invalid(e.to_string()))?;
    let (ctrl, data) = o
        .url
        .resolve()
        .await
        .map_err(|e| BenchError::Resolve(o.url.to_string(), e))?;
    // One configuration (name, sessiond UUID) per tracing session.
    let cfgs: Vec<SessionConfig> = (0..o.sessions)
        .map(|k| {
            let name = if o.sessions > 1 {
                format!("{}-{k}", o.session)
            } else {
                o.session.clone()
            };
            let mut cfg = SessionConfig::new(&name, &o.hostname);
            cfg.index_window = o.index_window;
            cfg.trace_format = o.trace_format;
            cfg
        })
        .collect();

    let conns = tokio::time::timeout(PHASE_TIMEOUT, setup(o, ctrl, data, &cfgs))
        .await
        .map_err(|_| BenchError::Timeout(PHASE_TIMEOUT, "setting sessions up"))??;
    let cpu0 = o.relay_pid.and_then(process_cpu_seconds);
    let start = Instant::now();
    let deadline = start + o.duration;
    let no_index = o.no_index;
    let tasks = conns.into_iter().map(|(mut s, mut gens)| async move {
        let (mut packets, mut bytes, mut events) = (0u64, 0u64, 0u64);
        'send: loop {
            for (sref, g) in gens.iter_mut() {
                if Instant::now() >= deadline {
                    break 'send;
                }
                let n = u64::from(g.events_per_packet());
                let p = g.next_packet();
                let idx = (!no_index).then_some(&p.index);
                s.send_packet(*sref, p.content, p.padding, idx).await?;
                packets += 1;
                bytes += p.content.len() as u64 + u64::from(p.padding);
                events += n;
            }
        }
        let rtt = s.control().index_rtt().cloned();
        let path = s.output_path().to_owned();
        let finish = async {
            if no_index {
                s.close_streams().await
            } else {
                s.wait_data_pending(PHASE_TIMEOUT).await?;
                s.close(PHASE_TIMEOUT).await.map(|_| ())
            }
        };
        tokio::time::timeout(2 * PHASE_TIMEOUT, finish)
            .await
            .map_err(|_| SendError::Timeout("the relay to finish the session"))??;
        Ok::<_, SendError>((
            ConnResult {
                packets,
                bytes,
                events,
                rtt,
                path,
            },
            Instant::now(),
        ))
    });
    let results = join_all(tasks).await;
    let mut end = start;
    let mut out = Vec::new();
    for r in results {
        let (c, t) = r?;
        end = end.max(t);
        out.push(c);
    }
    let cpu1 = o.relay_pid.and_then(process_cpu_seconds);
    let seconds = (end - start).as_secs_f64().max(1e-9);
    let packets: u64 = out.iter().map(|c| c.packets).sum();
    let bytes: u64 = out.iter().map(|c| c.bytes).sum();
    let events: u64 = out.iter().map(|c| c.events).sum();
    let mut rtt: Option<Histogram<u64>> = None;
    if !o.no_index {
        for h in out.iter().filter_map(|c| c.rtt.as_ref()) {
            match rtt.as_mut() {
                None => rtt = Some(h.clone()),
                Some(acc) => {
                    let _ = acc.add(h);
                }
            }
        }
    }
    let relay_cpu_s = cpu0.zip(cpu1).map(|(a, b)| b - a);
    let mut paths: Vec<String> = out.iter().map(|c| c.path.clone()).collect();
    paths.sort();
    paths.dedup();
    let index_rtt_us = rtt.filter(|h| !h.is_empty()).map(|h| Percentiles {
        p50: h.value_at_quantile(0.50) as f64 / 1e3,
        p90: h.value_at_quantile(0.90) as f64 / 1e3,
        p99: h.value_at_quantile(0.99) as f64 / 1e3,
        max: h.max() as f64 / 1e3,
    });
    Ok(BenchReport::new(
        o,
        seconds,
        (packets, bytes, events),
        relay_cpu_s,
        index_rtt_us,
        paths,
    ))
}

impl BenchReport {
    /// The report of a run of `o`: `seconds` long, `totals` = (packets, bytes, events) sent.
    pub fn new(
        o: &BenchOptions,
        seconds: f64,
        (packets, bytes, events): (u64, u64, u64),
        relay_cpu_s: Option<f64>,
        index_rtt_us: Option<Percentiles>,
        relay_paths: Vec<String>,
    ) -> BenchReport {
        BenchReport {
            label: o.label.clone(),
            streams: o.streams,
            connections: o.connections,
            sessions: o.sessions,
            packet_size: o.packet_size,
            index: !o.no_index,
            index_window: o.index_window,
            seconds,
            packets,
            bytes,
            events,
            mb_per_s: bytes as f64 / 1e6 / seconds,
            packets_per_s: packets as f64 / seconds,
            index_rtt_us,
            relay_cpu_s,
            relay_cpu_s_per_gb: relay_cpu_s
                .filter(|_| bytes > 0)
                .map(|c| c / (bytes as f64 / 1e9)),
            relay_paths,
            trace_format: o.trace_format,
        }
    }
}

fn one() -> u32 {
    1
}

type Conn = (
    RelaySession,
    Vec<(crate::sender::StreamRef, crate::synth::StreamGenerator)>,
);

/// Opens every connection, announces its streams and sends its metadata.
async fn setup(
    o: &BenchOptions,
    ctrl: std::net::SocketAddr,
    data: std::net::SocketAddr,
    cfgs: &[SessionConfig],
) -> Result<Vec<Conn>, BenchError> {
    let mut conns = Vec::new();
    let first = SynthTrace::new(&o.hostname, &o.session, o.packet_size).with_format(o.trace_format);
    for c in 0..o.connections {
        let Some(cfg) = cfgs.get(c as usize % cfgs.len().max(1)) else {
            return Err(BenchError::Invalid("no session".into()));
        };
        let mut s = RelaySession::connect(ctrl, data, cfg).await?;
        s.control().record_index_rtt();
        let trace = first.sibling();
        let path = format!("ust/uid/{c}/64-bit");
        let mut gens = Vec::new();
        for i in (c..o.streams).step_by(o.connections as usize) {
            let sref = s.add_stream(&format!("channel0_{i}"), &path).await?;
            let g = trace
                .stream(i)
                .map_err(|e| BenchError::Invalid(e.to_string()))?;
            gens.push((sref, g));
        }
        let meta = s.add_stream("metadata", &path).await?;
        s.streams_sent().await?;
        for p in trace.metadata() {
            s.send_metadata(meta, &p.content, p.padding).await?;
        }
        conns.push((s, gens));
    }

    Ok(conns)
}

/// Runs futures concurrently on the current task and collects their outputs in order.
pub async fn join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut outs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if outs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let t = process_cpu_seconds(std::process::id()).unwrap();
        assert!(t >= 0.0);
        assert!(process_cpu_seconds(u32::MAX).is_none());
    }
}
