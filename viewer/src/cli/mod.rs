//! The `trelay-viewer` command line. Exit codes: 0 success, 1 failure (or problems found by
//! `check` / bytes `dissect` could not decode), 2 usage errors.

// The argument docs are also the `--help` text, where `HOST[:PORT]` reads as meant.
#![allow(rustdoc::broken_intra_doc_links)]

mod relays;
mod signal;

pub use relays::TlsArgs;
use relays::{multi_end, tagged_json, RelayArgs};

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use trelay_proto::lttng::live::Seek;

use crate::dissect::{self, DissectOptions, Side};
use crate::live;
use crate::live::multi::RelaySpec;
use crate::report::Format;
use crate::time::TimeArg;
use crate::url::LiveUrl;

/// Live client, index queries, integrity checks and protocol dissector for LTTng traces.
#[derive(Debug, Parser)]
#[command(name = "trelay-viewer", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Where attached streams start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeekArg {
    /// Everything the relay still has.
    Beginning,
    /// Only packets written after attaching (what babeltrace2 does).
    Last,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List the live sessions of a relay: net://HOST[:PORT] (default port 5344), or
    /// tls+net://HOST[:PORT] (trelayd's TLS live port, default 5345) with --ca.
    Sessions {
        /// Relay URL.
        url: LiveUrl,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// TLS.
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Attach to a live session and mirror it into a CTF trace folder. With several relays,
    /// one mirror: each relay's trace under OUTPUT/NAME/, read by babeltrace2 as one trace set.
    Live {
        /// Session URL(s) net://HOST[:PORT]/host/HOSTNAME/SESSION (tls+net:// for the TLS live
        /// port), or relay URLs net://HOST[:PORT] with --session; each may be NAME=URL.
        #[arg(required = true)]
        urls: Vec<RelaySpec>,
        /// Output folder.
        #[arg(long, short)]
        output: PathBuf,
        /// The session name (glob) to follow on every relay, whatever its hostname.
        #[arg(long)]
        session: Option<String>,
        /// With --session: only sessions of hostnames matching this glob.
        #[arg(long, requires = "session")]
        host: Option<String>,
        /// Where the streams start.
        #[arg(long, value_enum, default_value = "beginning")]
        seek: SeekArg,
        /// Per-packet lines.
        #[arg(long, value_enum, default_value = "summary")]
        format: Format,
        /// No per-packet lines.
        #[arg(long, short)]
        quiet: bool,
        /// Seconds to wait for the session to be listed.
        #[arg(long, default_value_t = 30.0)]
        wait: f64,
        /// Milliseconds between polls when nothing is new.
        #[arg(long, default_value_t = 100)]
        poll_ms: u64,
        /// Several relays: seconds a relay may stay unreachable before it is given up.
        #[arg(long, default_value_t = 30.0)]
        give_up: f64,
        /// Several relays: seconds between progress reports on stderr (0: only at the end).
        #[arg(long, default_value_t = 5.0)]
        progress: f64,
        /// TLS.
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Query a trace from its on-disk index: per-stream facts and packets in a time range.
    Index {
        /// Trace folder (any folder above the trace directories).
        trace_dir: PathBuf,
        /// Only streams whose file name or path matches this glob.
        #[arg(long)]
        stream: Option<String>,
        /// Range start: clock cycles or an RFC 3339 time.
        #[arg(long)]
        from: Option<TimeArg>,
        /// Range end (inclusive): clock cycles or an RFC 3339 time.
        #[arg(long)]
        to: Option<TimeArg>,
        /// List every packet (also without a range).
        #[arg(long)]
        packets: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Check the integrity of a trace on disk (exit 1 and one line per problem).
    Check {
        /// Trace folder.
        trace_dir: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Follow a trace a relay is writing on this machine, printing packets as they are committed;
    /// or follow a session across relays over the live protocol, one output merged by timestamp.
    Tail {
        /// A trace folder, or relay URLs ([NAME=]net://HOST[:PORT][/host/HOSTNAME/SESSION],
        /// tls+net:// for the TLS live port).
        #[arg(required = true)]
        targets: Vec<String>,
        /// Only streams whose file name or path matches this glob (trace folder).
        #[arg(long)]
        stream: Option<String>,
        /// Stop after this many seconds without a new packet (trace folder).
        #[arg(long)]
        until_idle: Option<f64>,
        /// Skip the packets already committed at startup (trace folder).
        #[arg(long)]
        new_only: bool,
        /// Per-packet lines.
        #[arg(long, value_enum, default_value = "summary")]
        format: Format,
        /// Milliseconds between polls.
        #[arg(long, default_value_t = 100)]
        poll_ms: u64,
        /// Relays: the session name (glob) to follow on each, whatever its hostname.
        #[arg(long)]
        session: Option<String>,
        /// Relays, with --session: only sessions of hostnames matching this glob.
        #[arg(long, requires = "session")]
        host: Option<String>,
        /// Relays: seconds to wait for the session to be listed.
        #[arg(long, default_value_t = 30.0)]
        wait: f64,
        /// Relays: seconds a relay may stay unreachable before it is given up.
        #[arg(long, default_value_t = 30.0)]
        give_up: f64,
        /// Relays: seconds between progress reports on stderr (0: only at the end).
        #[arg(long, default_value_t = 5.0)]
        progress: f64,
        /// Relays: milliseconds a silent relay may hold the merge back.
        #[arg(long, default_value_t = 2000)]
        max_lag_ms: u64,
        /// Relays: packets held at most per relay while the merge waits.
        #[arg(long, default_value_t = 1024)]
        max_held: usize,
        /// TLS.
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Decode a pcap capture or one connection's bytes of the relay protocols.
    Dissect {
        /// A pcap file, or a byte file like `5342-0.client`.
        file: PathBuf,
        /// Port of a byte file (5342 control, 5343 data, 5344 live), if its name does not say.
        #[arg(long)]
        port: Option<u16>,
        /// Direction of a byte file, if its name does not say.
        #[arg(long, value_enum)]
        direction: Option<Side>,
        /// Control port in the capture.
        #[arg(long, default_value_t = 5342)]
        control_port: u16,
        /// Data port in the capture.
        #[arg(long, default_value_t = 5343)]
        data_port: u16,
        /// Live port in the capture.
        #[arg(long, default_value_t = 5344)]
        live_port: u16,
    },
    /// Download an archived trace from object storage into a directory babeltrace2 reads.
    Fetch(crate::fetch::FetchArgs),
    /// A relay's status (sessions, rates, loss, viewers) from trelayd's operations port.
    Status {
        /// `http://HOST:PORT` of trelayd's `--metrics-addr`.
        url: String,
        /// Redraw every `--interval` seconds until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between redraws with `--watch`.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Print the API's JSON documents (`{"status":…,"sessions":…}`) instead of a table.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
    },
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    run(cli.command)
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("trelay-viewer: {msg}");
    ExitCode::from(2)
}

fn failure(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("trelay-viewer: {msg}");
    ExitCode::FAILURE
}

fn secs(v: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(v).ok()
}

/// Runs one subcommand.
pub fn run(cmd: Cmd) -> ExitCode {
    match cmd {
        Cmd::Sessions { url, json, tls } => {
            if url.session.is_some() {
                return usage("sessions takes a relay URL without /host/...: net://HOST[:PORT]");
            }
            let tls = match tls.load() {
                Ok(t) => t,
                Err(e) => return usage(e),
            };
            match live::list_sessions_with(&url, tls.as_ref()) {
                Ok(s) if json => print(&serde_json::to_string_pretty(&s).unwrap_or_default()),
                Ok(s) => print(live::render_sessions(&s).trim_end()),
                Err(e) => failure(e),
            }
        }
        Cmd::Live {
            urls,
            output,
            session,
            host,
            seek,
            format,
            quiet,
            wait,
            poll_ms,
            give_up,
            progress,
            tls,
        } => {
            let relay = RelayArgs {
                urls,
                session,
                host,
                wait,
                poll_ms,
                give_up,
                progress,
                tls,
            };
            let mut multi = match relay.options(output) {
                Ok(m) => m,
                Err(e) => return usage(e),
            };
            multi.base.seek = match seek {
                SeekArg::Beginning => Seek::Beginning,
                SeekArg::Last => Seek::Last,
            };
            let stop = signal::stop_flag();
            if multi.relays.len() > 1 {
                let mut stdout = std::io::stdout();
                let res = live::multi::mirror_all(&multi, &stop, |relay, line| {
                    if quiet {
                        return Ok(());
                    }
                    match format {
                        Format::Json => writeln!(stdout, "{}", tagged_json(relay, line)),
                        Format::Summary => writeln!(stdout, "relay={relay} {}", line.summary()),
                    }
                });
                return multi_end("trelay-viewer live", res);
            }
            let mut opts = multi.base;
            if let Some(r) = multi.relays.pop() {
                opts.url = r.url;
            }
            let mut stdout = std::io::stdout();
            let res = live::mirror(&opts, &stop, |line| {
                if quiet {
                    return Ok(());
                }
                writeln!(stdout, "{}", line.render(format))
            });
            match res {
                Ok(stats) => {
                    eprintln!(
                        "trelay-viewer live: {} packet(s), {} bytes, {} metadata bytes from {} stream(s) of {} session(s){}",
                        stats.packets, stats.bytes, stats.metadata_bytes, stats.streams, stats.sessions,
                        if stats.detached { "; detached" } else { "; the session ended" }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => failure(e),
            }
        }
        Cmd::Index {
            trace_dir,
            stream,
            from,
            to,
            packets,
            json,
        } => {
            let q = crate::query::IndexQuery {
                stream_glob: stream,
                from,
                to,
                all_packets: packets,
            };
            match crate::query::query(&trace_dir, &q) {
                Ok(r) if json => print(&serde_json::to_string_pretty(&r).unwrap_or_default()),
                Ok(r) => print(crate::query::render_text(&r).trim_end()),
                Err(crate::query::QueryError::Trace(e)) => usage(e),
                Err(e) => usage(e),
            }
        }
        Cmd::Check { trace_dir, json } => match crate::check::check(&trace_dir) {
            Ok(r) => {
                if json {
                    let _ = print(&serde_json::to_string_pretty(&r).unwrap_or_default());
                } else {
                    for p in &r.problems {
                        println!("{p}");
                    }
                    eprintln!(
                        "trelay-viewer check: {} trace(s), {} stream(s), {} index entries: {}",
                        r.traces,
                        r.streams,
                        r.entries,
                        if r.problems.is_empty() {
                            "clean".to_owned()
                        } else {
                            format!("{} problem(s)", r.problems.len())
                        }
                    );
                }
                if r.problems.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => usage(e),
        },
        Cmd::Tail {
            targets,
            stream,
            until_idle,
            new_only,
            format,
            poll_ms,
            session,
            host,
            wait,
            give_up,
            progress,
            max_lag_ms,
            max_held,
            tls,
        } => {
            let is_url = |t: &String| t.contains("://");
            if targets.iter().any(is_url) {
                let urls: Result<Vec<RelaySpec>, String> =
                    targets.iter().map(|t| t.parse()).collect();
                let urls = match urls {
                    Ok(u) => u,
                    Err(e) => return usage(e),
                };
                let relay = RelayArgs {
                    urls,
                    session,
                    host,
                    wait,
                    poll_ms,
                    give_up,
                    progress,
                    tls,
                };
                let multi = match relay.options(PathBuf::new()) {
                    Ok(m) => m,
                    Err(e) => return usage(e),
                };
                let merge = live::multi::tail::MergeOptions {
                    max_held,
                    max_lag: Duration::from_millis(max_lag_ms),
                };
                let stop = signal::stop_flag();
                let mut stdout = std::io::stdout();
                let res = live::multi::tail::tail_all(&multi, merge, &stop, |l| {
                    writeln!(stdout, "{}", l.render(format))
                });
                return multi_end("trelay-viewer tail", res);
            }
            let [trace_dir] = targets.as_slice() else {
                return usage("tail takes one trace folder, or relay URLs");
            };
            let trace_dir = PathBuf::from(trace_dir);
            if !trace_dir.is_dir() {
                return usage(format!("{}: not a folder", trace_dir.display()));
            }
            let until_idle = match until_idle.map(secs) {
                Some(None) => return usage("--until-idle must be a number of seconds"),
                Some(d) => d,
                None => None,
            };
            let opts = crate::tail::TailOptions {
                stream_glob: stream,
                until_idle,
                poll: Duration::from_millis(poll_ms.max(1)),
                new_only,
            };
            let stop = signal::stop_flag();
            let mut stdout = std::io::stdout();
            match crate::tail::tail(&trace_dir, &opts, &stop, |l| {
                writeln!(stdout, "{}", l.render(format))
            }) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => failure(e),
            }
        }
        Cmd::Dissect {
            file,
            port,
            direction,
            control_port,
            data_port,
            live_port,
        } => {
            let opts = DissectOptions {
                port,
                direction,
                control_port,
                data_port,
                live_port,
            };
            match dissect::dissect_path(&file, &opts) {
                Ok(d) => {
                    let mut out = std::io::stdout().lock();
                    for l in &d.lines {
                        if writeln!(out, "{l}").is_err() {
                            return ExitCode::FAILURE;
                        }
                    }
                    for p in &d.problems {
                        eprintln!("{p}");
                    }
                    if d.problems.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e @ dissect::DissectError::Usage(_)) => usage(e),
                Err(e) => failure(e),
            }
        }
        Cmd::Fetch(args) => crate::fetch::run(&args),
        Cmd::Status {
            url,
            watch,
            interval,
            json,
        } => status(&url, watch, interval, json),
    }
}

fn status(url: &str, watch: bool, interval: f64, json: bool) -> ExitCode {
    let base = match crate::status::base_url(url) {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let Some(period) = secs(interval).filter(|d| !d.is_zero()) else {
        return usage("--interval must be a positive number of seconds");
    };
    if !watch {
        return match crate::status::fetch(&base) {
            Ok((s, l)) if json => print(
                &serde_json::to_string_pretty(&serde_json::json!({"status": s, "sessions": l}))
                    .unwrap_or_default(),
            ),
            Ok((s, l)) => print(crate::status::render(&s, &l).trim_end()),
            Err(e) => failure(e),
        };
    }
    let stop = signal::stop_flag();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let text = match crate::status::fetch(&base) {
            Ok((s, l)) => crate::status::render(&s, &l),
            Err(e) => format!("trelay-viewer: {e}\n"),
        };
        // Home and clear, then the table: one redraw per period.
        print!("\x1b[H\x1b[2J{text}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let until = std::time::Instant::now() + period;
        while std::time::Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    ExitCode::SUCCESS
}

fn print(text: &str) -> ExitCode {
    println!("{text}");
    ExitCode::SUCCESS
}
