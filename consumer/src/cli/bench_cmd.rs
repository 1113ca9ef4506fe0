//! `trelay-consumer bench` arguments and output.

use std::time::Duration;

use crate::bench::{bench, BenchOptions, BenchReport};
use crate::url::RelayUrl;
use trelay_proto::ctf::format::TraceFormat;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The relay: net://HOST[:CONTROL_PORT[:DATA_PORT]].
    #[arg(long, default_value = "net://127.0.0.1")]
    url: RelayUrl,
    /// Number of data streams.
    #[arg(long, default_value_t = 1)]
    streams: u32,
    /// Packet size in bytes (K/M suffixes allowed: 4K, 256K).
    #[arg(long, default_value = "256K", value_parser = parse_size)]
    packet_size: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Control+data connection pairs (streams are dealt among them).
    #[arg(long, default_value_t = 1)]
    connections: u32,
    /// Tracing sessions the connection pairs are dealt among (net:// only: over trelay:// every
    /// connection is a session of its own).
    #[arg(long, default_value_t = 1)]
    sessions: u32,
    /// Send no SEND_INDEX.
    #[arg(long)]
    no_index: bool,
    /// SEND_INDEX replies allowed to stay in flight (0: wait for each, like lttng-consumerd).
    #[arg(long, default_value_t = 0)]
    index_window: usize,
    /// Measure this relay process's CPU time.
    #[arg(long)]
    relay_pid: Option<u32>,
    /// Session name.
    #[arg(long, default_value = "trelay-bench")]
    session: String,
    /// Hostname.
    #[arg(long, default_value = "bench")]
    hostname: String,
    /// Label copied into the report (e.g. the relay's name).
    #[arg(long)]
    label: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Format of the synthetic trace's metadata: ctf-1.8 (TSDL) or ctf-2 (JSON text sequence).
    #[arg(long, default_value = "ctf-1.8")]
    trace_format: TraceFormat,
    #[command(flatten)]
    tls: super::TlsArgs,
}

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// File of bench JSON reports, one per line.
    results: std::path::PathBuf,
    /// Label of the relay the others are compared with.
    #[arg(long, default_value = "lttng-relayd")]
    baseline: String,
    /// The disk's fdatasync bandwidth in MB/s (for the durability=beacon target).
    #[arg(long)]
    disk_mbps: Option<f64>,
    /// Write an SVG chart here.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
}

/// Runs `report`.
pub fn report(a: ReportArgs) -> anyhow::Result<()> {
    use crate::bench::{plot, report};
    let text = std::fs::read_to_string(&a.results)?;
    let m = report::Matrix::new(report::parse_lines(&text)?);
    if m.rows.is_empty() {
        anyhow::bail!("{}: no results", a.results.display());
    }
    print!("{}", report::markdown(&m, &a.baseline, a.disk_mbps));
    if let Some(p) = a.svg {
        std::fs::write(&p, plot::svg(&m))?;
    }
    Ok(())
}

/// Parses `4096`, `4K`, `256KiB`, `1M`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.trim_end_matches(['i', 'B', 'b']).char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1024),
        Some((i, 'M' | 'm')) => (&t[..i], 1024 * 1024),
        _ => (t, 1),
    };
    num.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size {s:?}"))
}

/// Runs `bench`.
pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    if !(a.duration > 0.0 && a.duration < 86_400.0) {
        anyhow::bail!("--duration must be between 0 and 86400 seconds");
    }
    let tls = a.tls.for_url(&a.url)?;
    let o = BenchOptions {
        tls,
        url: a.url,
        streams: a.streams,
        packet_size: a.packet_size,
        duration: Duration::from_secs_f64(a.duration),
        connections: a.connections,
        sessions: a.sessions,
        no_index: a.no_index,
        index_window: a.index_window,
        relay_pid: a.relay_pid,
        session: a.session,
        hostname: a.hostname,
        label: a.label,
        trace_format: a.trace_format,
    };
    let r = if o.url.native {
        crate::native::bench::bench(&o).await?
    } else {
        bench(&o).await?
    };
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_human(&r);
    }
    Ok(())
}

fn print_human(r: &BenchReport) {
    println!(
        "{} stream(s) over {} connection(s){}, {} B packets, {}: {:.1} MB/s, {:.0} packets/s ({} packets, {} bytes in {:.2} s)",
        r.streams,
        r.connections,
        if r.sessions > 1 {
            format!(" of {} sessions", r.sessions)
        } else {
            String::new()
        },
        r.packet_size,
        if r.index { "with index" } else { "no index" },
        r.mb_per_s,
        r.packets_per_s,
        r.packets,
        r.bytes,
        r.seconds
    );
    if let Some(p) = r.index_rtt_us {
        println!(
            "SEND_INDEX round trip: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            p.p50, p.p90, p.p99, p.max
        );
    }
    if let (Some(cpu), Some(per_gb)) = (r.relay_cpu_s, r.relay_cpu_s_per_gb) {
        println!("relay CPU: {cpu:.2} s ({per_gb:.2} s per GB)");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("256KiB"), Ok(262_144));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("x").is_err());
        assert!(parse_size("").is_err());
    }
}
