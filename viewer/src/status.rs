//! `trelay-viewer status URL`: a relay's status page in a terminal, read from its status API
//! (`/api/v1/status` and `/api/v1/sessions` on trelayd's operations port, schema
//! [`trelay_proto::status`]).

use std::fmt::Write;
use trelay_proto::status::{SessionsDoc, StatusDoc, SCHEMA_VERSION};

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The URL is not `http://HOST:PORT` (or `HOST:PORT`).
    #[error("not a status URL (http://HOST:PORT): {0}")]
    Url(String),
    /// The request failed.
    #[error("GET {url}: {why}")]
    Http {
        /// The URL asked.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The answer is not a status document.
    #[error("{url}: not a status document: {why}")]
    Decode {
        /// The URL asked.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The relay speaks another schema version.
    #[error("{url}: schema version {found}, this viewer reads {SCHEMA_VERSION}")]
    Schema {
        /// The URL asked.
        url: String,
        /// The version it sent.
        found: u32,
    },
}

/// The base URL (`http://HOST:PORT`, no trailing slash) from what the user typed.
pub fn base_url(url: &str) -> Result<String, StatusError> {
    let u = url.trim().trim_end_matches('/');
    let base = if u.contains("://") {
        u.to_owned()
    } else {
        format!("http://{u}")
    };
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| StatusError::Url(url.to_owned()))?;
    if rest.is_empty() || rest.contains('/') {
        return Err(StatusError::Url(url.to_owned()));
    }
    Ok(base)
}

fn get<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    url: String,
    schema: impl Fn(&T) -> u32,
) -> Result<T, StatusError> {
    let body = agent
        .get(&url)
        .call()
        .map_err(|e| StatusError::Http {
            url: url.clone(),
            why: e.to_string(),
        })?
        .into_string()
        .map_err(|e| StatusError::Http {
            url: url.clone(),
            why: e.to_string(),
        })?;
    // The version first, so a newer relay gets a clear message rather than a field error.
    let version = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("schema").and_then(serde_json::Value::as_u64));
    if let Some(found) = version.filter(|&v| v != u64::from(SCHEMA_VERSION)) {
        return Err(StatusError::Schema {
            url,
            found: u32::try_from(found).unwrap_or(u32::MAX),
        });
    }
    let doc: T = serde_json::from_str(&body).map_err(|e| StatusError::Decode {
        url: url.clone(),
        why: e.to_string(),
    })?;
    if schema(&doc) != SCHEMA_VERSION {
        return Err(StatusError::Schema {
            url,
            found: schema(&doc),
        });
    }
    Ok(doc)
}

/// Reads the relay's status and sessions from `base` (see [`base_url`]).
pub fn fetch(base: &str) -> Result<(StatusDoc, SessionsDoc), StatusError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .build();
    let status = get(&agent, format!("{base}/api/v1/status"), |d: &StatusDoc| {
        d.schema
    })?;
    let sessions = get(
        &agent,
        format!("{base}/api/v1/sessions"),
        |d: &SessionsDoc| d.schema,
    )?;
    Ok((status, sessions))
}

/// `s` with control characters shown as `\u{..}` escapes, so a name cannot move the cursor or
/// recolour the terminal.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    match UNITS.get(u) {
        Some(unit) if u > 0 => format!("{v:.1} {unit}"),
        _ => format!("{v:.0} B"),
    }
}

/// A sparkline of block characters for the last `width` samples of `history`.
pub fn spark(history: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &history[history.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0).max(1);
    tail.iter()
        .map(|&v| {
            let i = (v.saturating_mul(7) / max) as usize;
            BARS.get(i).copied().unwrap_or('█')
        })
        .collect()
}

/// The status as a terminal table.
pub fn render(status: &StatusDoc, sessions: &SessionsDoc) -> String {
    let r = &status.relay;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trelayd {} · up {}s · durability {} · {} · disk free {}",
        printable(&r.version),
        r.uptime_s,
        printable(&r.durability),
        printable(&r.output),
        r.disk_free_bytes.map_or("?".into(), |b| bytes(b as f64))
    );
    let _ = writeln!(
        out,
        "connections control {} data {} live {} · pool {}/{} files · {} sessions · {} viewers · {}/s",
        r.connections.control,
        r.connections.data,
        r.connections.live,
        r.files.pool_open,
        r.files.pool_max,
        status.totals.sessions,
        status.totals.viewers,
        bytes(status.totals.rate_bps)
    );
    if let Some(url) = &r.forward.url {
        let _ = writeln!(
            out,
            "forward {} · {} connected · backlog {}",
            printable(url),
            r.forward.connected,
            bytes(r.forward.backlog_bytes as f64)
        );
    }
    let head = [
        "ID",
        "HOST",
        "SESSION",
        "FORMAT",
        "LIVE",
        "STREAMS",
        "RECEIVED",
        "RATE",
        "LAST 60 S",
        "LOST",
        "UNIDX",
        "GAPS",
        "DISC",
        "LAG",
        "VIEWERS",
        "ARCHIVE",
        "STATE",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| (*s).to_owned()).collect()];
    for s in &sessions.sessions {
        rows.push(vec![
            s.id.to_string(),
            printable(&s.host),
            printable(&s.name),
            printable(&s.trace_format),
            if s.live { "live" } else { "-" }.to_owned(),
            s.streams.to_string(),
            bytes(s.bytes as f64),
            format!("{}/s", bytes(s.rate_bps)),
            spark(&s.history, 60),
            s.lost_packets.to_string(),
            s.unindexed_packets.to_string(),
            s.sequence_gaps.to_string(),
            s.discarded_events.to_string(),
            s.uncommitted_packets.to_string(),
            s.viewers.to_string(),
            s.archive.as_ref().map_or("-".to_owned(), |a| {
                format!(
                    "{}/{}{}",
                    a.uploaded_chunks,
                    a.chunks,
                    if a.session_uploaded { "+s" } else { "" }
                )
            }),
            printable(&s.state),
        ]);
    }
    let mut widths = vec![0usize; head.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push('\n');
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    if sessions.sessions.is_empty() {
        out += "(no session)\n";
    }
    if !status.events.is_empty() {
        out += "\nrecent events\n";
        for e in status.events.iter().take(5) {
            let _ = writeln!(
                out,
                "  {} {} {}",
                e.kind,
                e.session.as_deref().map(printable).unwrap_or_default(),
                printable(&e.message)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_host_port() {
        assert_eq!(base_url("127.0.0.1:9464").unwrap(), "http://127.0.0.1:9464");
        assert_eq!(base_url("http://relay:9464/").unwrap(), "http://relay:9464");
        assert!(base_url("https://relay:9464").is_err());
        assert!(base_url("http://relay:9464/api").is_err());
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("<script>"), "<script>");
    }

    #[test]
    fn the_sparkline_scales_to_its_maximum() {
        assert_eq!(spark(&[0, 7, 14], 60), "▁▄█");
        assert_eq!(spark(&[5; 100], 3).chars().count(), 3);
        assert_eq!(spark(&[], 60), "");
    }
}
