//! Side-by-side tables from bench results (one JSON [`BenchReport`] per line, each labelled with
//! the relay it measured): throughput, CPU cost, index round trips, and ratios against a
//! baseline relay.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::BenchReport;
use trelay_proto::ctf::format::TraceFormat;

/// One matrix row: packet size, streams, connection pairs, tracing sessions, whether
/// SEND_INDEX was sent, the trace format.
pub type RowKey = (usize, u32, u32, u32, bool, TraceFormat);

/// The streams column: `4`, `32 (8 conns)` with several connection pairs, `32 (8 conns,
/// 8 sessions)` when they belong to several tracing sessions; `, CTF 2` added for CTF 2 rows.
pub fn streams_text(streams: u32, connections: u32, sessions: u32, format: TraceFormat) -> String {
    let mut s = match (connections, sessions) {
        (c, s) if s > 1 => format!("{streams} ({c} conns, {s} sessions)"),
        (c, _) if c > 1 => format!("{streams} ({c} conns)"),
        _ => streams.to_string(),
    };
    if format == TraceFormat::Ctf2 {
        s.push_str(", CTF 2");
    }
    s
}

/// Results grouped by matrix row then label, labels in first-seen order. A row measured several
/// times for one label (repeated runs) reads as the median of its runs.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    /// Labels (relays), in the order they first appear.
    pub labels: Vec<String>,
    /// Rows in matrix order: each label's runs.
    pub rows: BTreeMap<RowKey, BTreeMap<String, Vec<BenchReport>>>,
}

/// Parses JSON lines of bench reports (blank lines and lines starting with `#` are skipped).
pub fn parse_lines(text: &str) -> Result<Vec<BenchReport>, serde_json::Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(serde_json::from_str)
        .collect()
}

impl Matrix {
    /// Groups reports (unlabelled ones under "relay").
    pub fn new(reports: Vec<BenchReport>) -> Self {
        let mut m = Matrix::default();
        for r in reports {
            let label = r.label.clone().unwrap_or_else(|| "relay".to_owned());
            if !m.labels.contains(&label) {
                m.labels.push(label.clone());
            }
            m.rows
                .entry((
                    r.packet_size,
                    r.streams,
                    r.connections,
                    r.sessions,
                    r.index,
                    r.trace_format,
                ))
                .or_default()
                .entry(label)
                .or_default()
                .push(r);
        }
        m
    }

    /// The value `f` of `label` in `row`: the median over its runs that have one (the mean of
    /// the middle two for an even count).
    pub fn get(
        &self,
        row: &RowKey,
        label: &str,
        f: impl Fn(&BenchReport) -> Option<f64>,
    ) -> Option<f64> {
        let mut v: Vec<f64> = self
            .rows
            .get(row)?
            .get(label)?
            .iter()
            .filter_map(f)
            .collect();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        match v.len() {
            0 => None,
            n if n % 2 == 1 => v.get(mid).copied(),
            _ => Some((v.get(mid - 1)? + v.get(mid)?) / 2.0),
        }
    }

    /// How many runs `label` has in `row`.
    pub fn runs(&self, row: &RowKey, label: &str) -> usize {
        self.rows
            .get(row)
            .and_then(|r| r.get(label))
            .map_or(0, Vec::len)
    }
}

/// Human form of a packet size.
pub fn size_text(n: usize) -> String {
    if n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn ratio(v: Option<f64>, base: Option<f64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => format!(" ({:.2}×)", v / b),
        _ => String::new(),
    }
}

fn table(
    m: &Matrix,
    baseline: &str,
    title: &str,
    digits: usize,
    f: &dyn Fn(&BenchReport) -> Option<f64>,
) -> String {
    let mut s = format!("### {title}\n\n| Packet | Streams | Index |");
    for l in &m.labels {
        let _ = write!(s, " {l} |");
    }
    s.push_str("\n| --- | ---: | :---: |");
    for _ in &m.labels {
        s.push_str(" ---: |");
    }
    s.push('\n');
    for key in m.rows.keys() {
        let (size, streams, conns, sessions, index, format) = *key;
        let _ = write!(
            s,
            "| {} | {} | {} |",
            size_text(size),
            streams_text(streams, conns, sessions, format),
            if index { "yes" } else { "no" }
        );
        let base = m.get(key, baseline, f);
        for l in &m.labels {
            let v = m.get(key, l, f);
            let r = if l == baseline {
                String::new()
            } else {
                ratio(v, base)
            };
            let _ = write!(s, " {}{r} |", cell(v, digits));
        }
        s.push('\n');
    }
    s
}

/// Markdown tables (throughput, packets/s, CPU per GB, index round trips) with ratios against
/// `baseline`, and a check of the targets when the labels say which durability mode they ran:
/// a label ending in `none` must reach 2× the baseline's MB/s at ≤ 0.5× its CPU per GB, one
/// ending in `beacon` 90 % of `disk_mbps`.
pub fn markdown(m: &Matrix, baseline: &str, disk_mbps: Option<f64>) -> String {
    let mut s = String::new();
    s.push_str(&table(
        m,
        baseline,
        "Throughput (MB/s, 10⁶ bytes; ratio to the baseline)",
        1,
        &|r| Some(r.mb_per_s),
    ));
    s.push('\n');
    s.push_str(&table(m, baseline, "Packets per second", 0, &|r| {
        Some(r.packets_per_s)
    }));
    s.push('\n');
    s.push_str(&table(
        m,
        baseline,
        "Relay CPU seconds per GB received (lower is better)",
        2,
        &|r| r.relay_cpu_s_per_gb,
    ));
    s.push('\n');
    s.push_str(&table(
        m,
        baseline,
        "SEND_INDEX round trip p50 (µs)",
        1,
        &|r| r.index_rtt_us.map(|p| p.p50),
    ));
    s.push('\n');
    s.push_str(&table(
        m,
        baseline,
        "SEND_INDEX round trip p99 (µs)",
        1,
        &|r| r.index_rtt_us.map(|p| p.p99),
    ));
    s.push('\n');
    let mut checks = String::new();
    for l in m.labels.iter().filter(|l| *l != baseline) {
        let rows: Vec<&RowKey> = m.rows.keys().collect();
        if l.ends_with("none") {
            let mbs = rows
                .iter()
                .filter(|k| {
                    let (v, b) = (
                        m.get(k, l, |r| Some(r.mb_per_s)),
                        m.get(k, baseline, |r| Some(r.mb_per_s)),
                    );
                    matches!((v, b), (Some(v), Some(b)) if v >= 2.0 * b)
                })
                .count();
            let cpu = rows
                .iter()
                .filter(|k| {
                    let (v, b) = (
                        m.get(k, l, |r| r.relay_cpu_s_per_gb),
                        m.get(k, baseline, |r| r.relay_cpu_s_per_gb),
                    );
                    matches!((v, b), (Some(v), Some(b)) if v <= 0.5 * b)
                })
                .count();
            let _ = writeln!(
                checks,
                "- `{l}`: ≥ 2× {baseline}'s MB/s on {mbs} of {} rows; ≤ 0.5× its CPU per GB on {cpu} of {} rows.",
                rows.len(),
                rows.len()
            );
        } else if let (true, Some(disk)) = (l.ends_with("beacon"), disk_mbps) {
            let ok = rows
                .iter()
                .filter(|k| {
                    m.get(k, l, |r| Some(r.mb_per_s))
                        .is_some_and(|v| v >= 0.9 * disk)
                })
                .count();
            let _ = writeln!(
                checks,
                "- `{l}`: ≥ 90 % of the disk's {disk:.0} MB/s fdatasync bandwidth on {ok} of {} rows.",
                rows.len()
            );
        }
    }
    if !checks.is_empty() {
        s.push_str("### Targets\n\n");
        s.push_str(&checks);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(label: &str, size: usize, index: bool, mbs: f64, cpu: f64) -> BenchReport {
        BenchReport {
            label: Some(label.into()),
            streams: 1,
            connections: 1,
            sessions: 1,
            packet_size: size,
            index,
            index_window: 0,
            seconds: 1.0,
            packets: 10,
            bytes: 10,
            events: 10,
            mb_per_s: mbs,
            packets_per_s: mbs,
            index_rtt_us: None,
            relay_cpu_s: Some(1.0),
            relay_cpu_s_per_gb: Some(cpu),
            relay_paths: vec![],
            trace_format: TraceFormat::Ctf1_8,
        }
    }

    #[test]
    fn tables_and_ratios() {
        let lines: Vec<String> = [
            rep("lttng-relayd", 4096, true, 50.0, 10.0),
            rep("trelayd-none", 4096, true, 150.0, 4.0),
            rep("trelayd-beacon", 4096, true, 240.0, 4.0),
            rep("lttng-relayd", 262144, false, 800.0, 1.0),
            rep("trelayd-none", 262144, false, 1000.0, 0.8),
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
        let parsed = parse_lines(&format!("# comment\n{}\n\n", lines.join("\n"))).unwrap();
        let m = Matrix::new(parsed);
        assert_eq!(m.labels, ["lttng-relayd", "trelayd-none", "trelayd-beacon"]);
        let md = markdown(&m, "lttng-relayd", Some(250.0));
        assert!(
            md.contains("| 4 KiB | 1 | yes | 50.0 | 150.0 (3.00×) | 240.0 (4.80×) |"),
            "{md}"
        );
        assert!(
            md.contains("| 256 KiB | 1 | no | 800.0 | 1000.0 (1.25×) | – |"),
            "{md}"
        );
        assert!(md.contains("`trelayd-none`: ≥ 2× lttng-relayd's MB/s on 1 of 2 rows; ≤ 0.5× its CPU per GB on 1 of 2 rows."), "{md}");
        assert!(md.contains("`trelayd-beacon`: ≥ 90 % of the disk's 250 MB/s fdatasync bandwidth on 1 of 2 rows."), "{md}");
        assert_eq!(size_text(262_144), "256 KiB");
        assert_eq!(size_text(1 << 20), "1 MiB");
        assert_eq!(size_text(100), "100 B");
    }

    #[test]
    fn repeated_runs_read_as_their_median() {
        let key = (4096, 1, 1, 1, true, TraceFormat::Ctf1_8);
        let m = Matrix::new(vec![
            rep("a", 4096, true, 10.0, 3.0),
            rep("a", 4096, true, 90.0, 1.0),
            rep("a", 4096, true, 30.0, 2.0),
            rep("b", 4096, true, 10.0, 1.0),
            rep("b", 4096, true, 20.0, 1.0),
        ]);
        assert_eq!(m.runs(&key, "a"), 3);
        assert_eq!(m.get(&key, "a", |r| Some(r.mb_per_s)), Some(30.0));
        assert_eq!(m.get(&key, "a", |r| r.relay_cpu_s_per_gb), Some(2.0));
        assert_eq!(m.get(&key, "b", |r| Some(r.mb_per_s)), Some(15.0));
        assert_eq!(m.get(&key, "b", |r| r.index_rtt_us.map(|p| p.p50)), None);
        assert_eq!(m.get(&key, "c", |r| Some(r.mb_per_s)), None);
        let md = markdown(&m, "a", None);
        assert!(
            md.contains("| 4 KiB | 1 | yes | 30.0 | 15.0 (0.50×) |"),
            "{md}"
        );
    }
}
