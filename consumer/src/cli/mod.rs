//! The `trelay-consumer` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::ship::{self, ShipReport};
use crate::url::RelayUrl;

pub mod bench_cmd;

/// Stream LTTng traces to a relay (trelayd or lttng-relayd) and measure relays.
#[derive(Debug, Parser)]
#[command(name = "trelay-consumer", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Ship a recorded local trace (`lttng create --output DIR`) to a relay.
    Send(SendArgs),
    /// Ship a trace a local LTTng session is still writing, as a live session, until the
    /// session is destroyed (or Ctrl-C).
    Follow(FollowArgs),
    /// Send synthetic streams as fast as possible and report throughput and latency.
    Bench(bench_cmd::BenchArgs),
    /// Render `bench --json --label RELAY` results (one per line) as Markdown tables on
    /// standard output, with ratios to a baseline relay, and optionally an SVG chart.
    Report(bench_cmd::ReportArgs),
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The relay: net://HOST[:CONTROL_PORT[:DATA_PORT]] (the LTTng protocol, any relay) or
    /// trelay://HOST[:PORT] (trelay's own protocol: batched, acknowledged, resumed after cuts).
    #[arg(long, default_value = "net://127.0.0.1")]
    url: RelayUrl,
    /// Relay session name (default: the trace's name from its metadata).
    #[arg(long)]
    session: Option<String>,
    /// Hostname the trace is filed under (default: the one in its metadata).
    #[arg(long)]
    hostname: Option<String>,
    /// SEND_INDEX replies allowed to stay in flight (0: wait for each, like lttng-consumerd).
    #[arg(long, default_value_t = 0)]
    index_window: usize,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

/// `--ca`, `--cert`, `--key`: TLS towards a relay's `[tls]` port (trelay:// only).
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// trelay:// only: speak TLS, trusting the relay certificates this CA (PEM) signed.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// trelay:// over TLS: this sender's certificate (PEM), its identity on the relay.
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// trelay:// over TLS: the key of --cert (PEM).
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS settings for `url`, or `None` without `--ca`.
    pub fn for_url(
        &self,
        url: &RelayUrl,
    ) -> anyhow::Result<Option<crate::native::client::ClientTls>> {
        match &self.ca {
            None if self.cert.is_some() => anyhow::bail!("--cert needs --ca"),
            None => Ok(None),
            Some(_) if !url.native => anyhow::bail!("TLS (--ca) is for trelay:// URLs"),
            Some(ca) => Ok(Some(
                crate::native::client::ClientTls::new(
                    ca,
                    self.cert.as_deref(),
                    self.key.as_deref(),
                )
                .map_err(anyhow::Error::msg)?,
            )),
        }
    }
}

impl Common {
    fn tls(&self) -> anyhow::Result<Option<crate::native::client::ClientTls>> {
        self.tls.for_url(&self.url)
    }
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// The trace directory.
    trace_dir: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Create a live session; beacons every USEC microseconds (default 1000000).
    #[arg(long, value_name = "USEC", num_args = 0..=1, require_equals = true, default_missing_value = "1000000")]
    live: Option<u32>,
    /// trelay:// only: the guarantee to wait for before exiting 0 (committed: fdatasynced and
    /// indexed by the relay; received: in the relay's hands).
    #[arg(long, value_enum, default_value = "committed")]
    ack: AckArg,
    /// trelay:// only: how long to keep reconnecting after a cut, or before the relay answers.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    retry_for: f64,
}

/// `--ack` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AckArg {
    /// In the relay's hands.
    Received,
    /// Durable under the relay's durability contract.
    Committed,
}

#[derive(Debug, clap::Args)]
struct FollowArgs {
    /// The directory the local session writes (its --output).
    trace_dir: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Live timer (beacon period) in microseconds.
    #[arg(long, value_name = "USEC", num_args = 0..=1, require_equals = true, default_missing_value = "1000000", default_value = "1000000")]
    live: u32,
    /// The local channels' switch-timer period in µs: lets beacons of idle streams advance
    /// with the clock instead of stopping at their last packet.
    #[arg(long, value_name = "USEC")]
    flush_interval: Option<u64>,
    /// Stop after this many seconds without new data.
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,
    /// Do not watch `lttng list` for the end of the local session.
    #[arg(long)]
    no_session_watch: bool,
    /// How often files are checked for new packets, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    poll_ms: u64,
    /// trelay:// only: how long to keep reconnecting after a cut or a relay restart.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    retry_for: f64,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRELAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trelay-consumer: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async {
        match cli.cmd {
            Cmd::Send(a) => run_send(a).await,
            Cmd::Follow(a) => run_follow(a).await,
            Cmd::Bench(a) => bench_cmd::run(a).await,
            Cmd::Report(a) => bench_cmd::report(a),
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trelay-consumer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_send(a: SendArgs) -> anyhow::Result<()> {
    if a.common.url.native {
        return run_send_native(a).await;
    }
    let mut o = ship::SendOptions::new(a.trace_dir, a.common.url);
    o.session = a.common.session;
    o.hostname = a.common.hostname;
    o.live_timer_us = a.live.unwrap_or(0);
    o.index_window = a.common.index_window;
    let r = ship::send(&o).await?;
    print_report(&r, a.common.json, "sent")
}

async fn run_send_native(a: SendArgs) -> anyhow::Result<()> {
    use trelay_proto::trelay::message::AckLevel;
    let tls = a.common.tls()?;
    let mut o = crate::native::send::NativeSendOptions::new(a.trace_dir, a.common.url);
    o.tls = tls;
    o.session = a.common.session;
    o.hostname = a.common.hostname;
    o.live_timer_us = a.live.unwrap_or(0);
    o.ack = match a.ack {
        AckArg::Received => AckLevel::Received,
        AckArg::Committed => AckLevel::Committed,
    };
    o.retry_for = Duration::from_secs_f64(a.retry_for.max(0.0));
    let r = crate::native::send::send(&o).await?;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let packets: u64 = r.streams.iter().map(|s| s.packets).sum();
    println!(
        "sent {} stream(s), {packets} packets over trelay:// in {:.2} s ({} reconnect(s)); all acknowledged {}; relay path {}",
        r.streams.len(),
        r.seconds,
        r.reconnects,
        r.ack,
        r.relay_path
    );
    for s in &r.streams {
        println!(
            "  {}/{}: {} of {} packets acknowledged",
            s.path, s.name, s.acknowledged, s.packets
        );
    }
    Ok(())
}

async fn run_follow(a: FollowArgs) -> anyhow::Result<()> {
    if !a.common.url.native {
        a.common.tls()?;
    }
    if a.common.url.native {
        let tls = a.common.tls()?;
        let mut o = crate::native::follow::NativeFollowOptions::new(a.trace_dir, a.common.url);
        o.session = a.common.session;
        o.hostname = a.common.hostname;
        o.live_timer_us = a.live.max(1);
        o.idle_timeout = a.idle_timeout.map(Duration::from_secs_f64);
        o.watch_session = !a.no_session_watch;
        o.poll = Duration::from_millis(a.poll_ms.max(1));
        o.retry_for = Duration::from_secs_f64(a.retry_for.max(0.0));
        o.tls = tls;
        let r = crate::native::follow::follow(&o, shutdown_signal()).await?;
        if a.common.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!(
                "followed {} stream(s) over trelay://: {} packets ({:.2} MB) committed, {} beacon(s), {} reconnect(s) in {:.2} s; relay path {}",
                r.streams, r.packets, r.bytes as f64 / 1e6, r.beacons, r.reconnects, r.seconds, r.relay_path
            );
        }
        return Ok(());
    }
    let mut o = ship::FollowOptions::new(a.trace_dir, a.common.url);
    o.session = a.common.session;
    o.hostname = a.common.hostname;
    o.live_timer_us = a.live.max(1);
    o.index_window = a.common.index_window;
    o.flush_interval_us = a.flush_interval;
    o.idle_timeout = a.idle_timeout.map(Duration::from_secs_f64);
    o.watch_session = !a.no_session_watch;
    o.poll = Duration::from_millis(a.poll_ms.max(1));
    let r = ship::follow(&o, shutdown_signal()).await?;
    print_report(&r, a.common.json, "followed")
}

/// Resolves at SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn print_report(r: &ShipReport, json: bool, verb: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let mb = r.packet_bytes as f64 / 1e6;
    println!(
        "{verb} {} trace(s), {} stream(s): {} packets ({mb:.2} MB) and {} bytes of metadata in {:.2} s ({:.1} MB/s), {} beacon(s); relay path {}",
        r.traces,
        r.streams,
        r.packets,
        r.metadata_bytes,
        r.seconds,
        if r.seconds > 0.0 { mb / r.seconds } else { 0.0 },
        r.beacons,
        r.relay_path
    );
    if r.streams_without_index > 0 {
        println!(
            "{} stream(s) had no index file; indexed from packet headers",
            r.streams_without_index
        );
    }
    if r.trailing_bytes > 0 {
        println!(
            "{} trailing byte(s) not forming whole packets were not sent",
            r.trailing_bytes
        );
    }
    Ok(())
}
