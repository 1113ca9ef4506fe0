//! `bench --url trelay://…`: the synthetic load of [`crate::bench`] over trelay://. Each
//! connection is a session of its own; packets go in batches of up to `BATCH` bytes per stream
//! (round-robin over the connection's streams), a commit is requested every
//! `COMMIT_EVERY` bytes with one in flight at a time, and the run ends when the relay
//! acknowledged the sessions' close at the committed level.

use super::client::{NativeConn, NativeError};
use crate::bench::{process_cpu_seconds, BenchError, BenchOptions, BenchReport};
use crate::synth::SynthTrace;
use std::time::Instant;
use trelay_proto::trelay::message::{
    AckLevel, AddStream, IndexFields, Message, Open, PacketMeta, Packets, MAX_BATCH,
};

/// Packet bytes per batch.
const BATCH: usize = 256 << 10;
/// A commit every this many bytes.
const COMMIT_EVERY: u64 = 16 << 20;

fn err(e: NativeError) -> BenchError {
    BenchError::Invalid(format!("trelay://: {e}"))
}

/// Runs the bench over trelay://.
pub async fn bench(o: &BenchOptions) -> Result<BenchReport, BenchError> {
    if o.streams == 0 || o.connections == 0 || o.connections > o.streams {
        return Err(BenchError::Invalid("need 1 ≤ connections ≤ streams".into()));
    }
    let addr = tokio::net::lookup_host((o.url.host.as_str(), o.url.control_port))
        .await
        .map_err(|e| BenchError::Resolve(o.url.to_string(), e))?
        .next()
        .ok_or_else(|| BenchError::Invalid(format!("{} has no address", o.url)))?;
    let first = SynthTrace::new(&o.hostname, &o.session, o.packet_size).with_format(o.trace_format);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut conns = Vec::new();
    for c in 0..o.connections {
        let mut conn = NativeConn::connect_with(addr, o.tls.as_ref(), &o.url.host)
            .await
            .map_err(err)?;
        let mut uuid = [0u8; 16];
        uuid[..4].copy_from_slice(&c.to_be_bytes());
        uuid[4..12].copy_from_slice(&now.to_be_bytes());
        uuid[12..].copy_from_slice(&std::process::id().to_be_bytes());
        let open = Open {
            session: uuid,
            name: format!("{}-{c}", o.session),
            hostname: o.hostname.clone(),
            live_timer_us: 0,
            creation_time: now,
            ack: AckLevel::Committed,
        };
        let path = conn.open(&open, o.trace_format).await.map_err(err)?.path;
        let trace = first.sibling();
        let tpath = format!("ust/uid/{c}/64-bit");
        let mut gens = Vec::new();
        for (n, i) in (c..o.streams).step_by(o.connections as usize).enumerate() {
            let a = AddStream {
                stream: n as u32,
                channel: format!("channel0_{i}"),
                path: tpath.clone(),
                tracefile_size: 0,
                tracefile_count: 0,
            };
            conn.request(&Message::AddStream(a)).await.map_err(err)?;
            let g = trace
                .stream(i)
                .map_err(|e| BenchError::Invalid(e.to_string()))?;
            gens.push((n as u32, g, 0u64));
        }
        let meta = gens.len() as u32;
        let a = AddStream {
            stream: meta,
            channel: "metadata".into(),
            path: tpath,
            tracefile_size: 0,
            tracefile_count: 0,
        };
        conn.request(&Message::AddStream(a)).await.map_err(err)?;
        conn.send(&Message::StreamsSent).await.map_err(err)?;
        let mut offset = 0u64;
        for p in trace.metadata() {
            let mut bytes = p.content.clone();
            bytes.resize(bytes.len() + p.padding as usize, 0);
            conn.send_with(
                &Message::Metadata {
                    stream: meta,
                    offset,
                    len: bytes.len() as u32,
                },
                &[&bytes],
            )
            .await
            .map_err(err)?;
            offset += bytes.len() as u64;
        }
        conns.push((conn, gens, path));
    }
    let cpu0 = o.relay_pid.and_then(process_cpu_seconds);
    let start = Instant::now();
    let deadline = start + o.duration;
    let tasks = conns
        .into_iter()
        .map(|(mut conn, mut gens, path)| async move {
            let (mut packets, mut bytes, mut events) = (0u64, 0u64, 0u64);
            let mut buf = Vec::with_capacity(BATCH + o.packet_size);
            let mut metas = Vec::new();
            let mut since_commit = 0u64;
            let mut pending: Option<u64> = None;
            'send: loop {
                for (n, g, seq) in gens.iter_mut() {
                    if Instant::now() >= deadline {
                        break 'send;
                    }
                    while buf.len() < BATCH && metas.len() < MAX_BATCH {
                        events += u64::from(g.events_per_packet());
                        let p = g.next_packet();
                        buf.extend_from_slice(p.content);
                        let e = p.index;
                        metas.push(PacketMeta {
                            seq: *seq,
                            content: p.content.len() as u32,
                            padding: p.padding,
                            index: Some(IndexFields::from(&e)),
                        });
                        *seq += 1;
                        let total = p.content.len() as u64 + u64::from(p.padding);
                        bytes += total;
                        since_commit += total;
                        packets += 1;
                    }
                    let m = Message::Packets(Packets {
                        stream: *n,
                        packets: std::mem::take(&mut metas),
                    });
                    conn.send_with(&m, &[&buf]).await?;
                    buf.clear();
                    if since_commit >= COMMIT_EVERY {
                        if let Some(upto) = pending.take() {
                            conn.wait_acked(AckLevel::Committed, upto).await?;
                        }
                        conn.send(&Message::Commit).await?;
                        pending = Some(conn.sent);
                        since_commit = 0;
                    }
                }
            }
            for (n, _, seq) in &gens {
                conn.send(&Message::CloseStream {
                    stream: *n,
                    last_seq: seq.checked_sub(1),
                })
                .await?;
            }
            conn.send(&Message::Close).await?;
            conn.wait_acked(AckLevel::Committed, conn.sent).await?;
            Ok::<_, NativeError>((packets, bytes, events, path, Instant::now()))
        });
    let mut end = start;
    let (mut packets, mut bytes, mut events) = (0, 0, 0);
    let mut paths = Vec::new();
    for r in crate::bench::join_all(tasks).await {
        let (p, b, e, path, t) = r.map_err(err)?;
        packets += p;
        bytes += b;
        events += e;
        paths.push(path);
        end = end.max(t);
    }
    let cpu1 = o.relay_pid.and_then(process_cpu_seconds);
    let seconds = (end - start).as_secs_f64().max(1e-9);
    let relay_cpu_s = cpu0.zip(cpu1).map(|(a, b)| b - a);
    paths.dedup();
    // trelay:// always indexes, and has no reply per index to wait for.
    let mut r = BenchReport::new(
        o,
        seconds,
        (packets, bytes, events),
        relay_cpu_s,
        None,
        paths,
    );
    r.index = true;
    r.index_window = 0;
    Ok(r)
}
