//! The HTML of the status pages, rendered on the server from the API's documents so that they
//! read without JavaScript; `status.js` (served beside them) redraws the same elements from the
//! API once a second. Every string from the network goes through [`escape`].

use std::fmt::Write;
use trelay_proto::status::{Event, SessionArchive, SessionRow, SessionsDoc, StatusDoc};

/// The page's stylesheet.
pub const CSS: &str = include_str!("assets/status.css");
/// The page's script (no third-party code).
pub const JS: &str = include_str!("assets/status.js");
/// The page's icon.
pub const ICON: &str = include_str!("assets/favicon.svg");

/// `s` with `& < > " '` replaced by character references: safe in element text and in quoted
/// attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `n` bytes in binary units (`1.5 MiB`).
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `s` seconds as `1d 2h`, `3h 4m`, `5m 6s` or `7s`.
pub fn duration(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// The SVG sparkline of a rate history (oldest first), scaled to its own maximum.
pub fn sparkline(history: &[u64]) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let max = history.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = W / (crate::ops::status::book::HISTORY_SAMPLES as f64 - 1.0);
    let start = W - step * (history.len().saturating_sub(1)) as f64;
    let mut points = String::new();
    for (i, v) in history.iter().enumerate() {
        let x = start + step * i as f64;
        let y = H - 1.0 - (*v as f64 / max) * (H - 2.0);
        let _ = write!(points, "{x:.1},{y:.1} ");
    }
    let points = points.trim_end();
    let area = if history.is_empty() {
        String::new()
    } else {
        format!("{start:.1},{H:.1} {points} {W:.1},{H:.1}")
    };
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"rate over the last 5 minutes\"><rect class=\"frame\" width=\"{W}\" \
         height=\"{H}\"/><polygon points=\"{area}\"/><polyline points=\"{points}\"/></svg>"
    )
}

pub(super) fn head(title: &str, body_attrs: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/static/status.css\">\
         <link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\"></head>\
         <body {body_attrs}>",
        escape(title)
    )
}

pub(super) const FOOT: &str =
    "<noscript><p class=\"note\">Reload the page to refresh it.</p></noscript>\
     <script src=\"/static/status.js\"></script></body></html>\n";

/// The columns of the sessions table: key (the JSON field, for sorting), heading.
pub const COLUMNS: &[(&str, &str)] = &[
    ("host", "Host"),
    ("name", "Session"),
    ("format", "Protocol"),
    ("trace_format", "Trace format"),
    ("live", "Live"),
    ("streams", "Streams"),
    ("bytes", "Received"),
    ("rate_bps", "Rate (5 min)"),
    ("lost_packets", "Lost"),
    ("unindexed_packets", "Unindexed"),
    ("sequence_gaps", "Seq. gaps"),
    ("discarded_events", "Discarded"),
    ("uncommitted_packets", "Frontier lag"),
    ("viewers", "Viewers"),
    ("forward", "Forward backlog"),
    ("archive", "Archive"),
    ("state", "State"),
];

fn cell(col: &str, value: &str, text: &str) -> String {
    format!(
        "<td data-col=\"{col}\" data-value=\"{}\">{text}</td>",
        escape(value)
    )
}

pub(super) fn count(col: &str, n: u64) -> String {
    let class = if n > 0 && col != "viewers" && col != "streams" {
        " class=\"bad\""
    } else {
        ""
    };
    format!("<td data-col=\"{col}\" data-value=\"{n}\"{class}>{n}</td>")
}

pub(super) fn session_row(r: &SessionRow) -> String {
    let host = if r.peer.is_empty() || r.peer == r.host {
        escape(&r.host)
    } else {
        format!(
            "{} <span class=\"peer\">{}</span>",
            escape(&r.host),
            escape(&r.peer)
        )
    };
    let mut out = format!("<tr data-id=\"{}\">", r.id);
    out += &cell("host", &r.host, &host);
    out += &cell(
        "name",
        &r.name,
        &format!("<a href=\"/sessions/{}\">{}</a>", r.id, escape(&r.name)),
    );
    out += &cell("format", &r.format, &escape(&r.format));
    out += &cell("trace_format", &r.trace_format, &escape(&r.trace_format));
    out += &cell(
        "live",
        if r.live { "1" } else { "0" },
        if r.live { "live" } else { "—" },
    );
    out += &count("streams", r.streams);
    out += &cell("bytes", &r.bytes.to_string(), &bytes(r.bytes as f64));
    out += &cell(
        "rate_bps",
        &format!("{:.0}", r.rate_bps),
        &format!(
            "<span class=\"rate\">{}/s</span>{}",
            bytes(r.rate_bps),
            sparkline(&r.history)
        ),
    );
    out += &count("lost_packets", r.lost_packets);
    out += &count("unindexed_packets", r.unindexed_packets);
    out += &count("sequence_gaps", r.sequence_gaps);
    out += &count("discarded_events", r.discarded_events);
    out += &count("uncommitted_packets", r.uncommitted_packets);
    out += &count("viewers", r.viewers);
    out += &match &r.forward {
        None => cell("forward", "-1", "—"),
        Some(f) => cell(
            "forward",
            &f.backlog_bytes.to_string(),
            &format!(
                "{}{}",
                bytes(f.backlog_bytes as f64),
                if f.connected { "" } else { " (down)" }
            ),
        ),
    };
    out += &match &r.archive {
        None => cell("archive", "-1", "—"),
        Some(a) => cell("archive", &a.uploaded_chunks.to_string(), &archive_state(a)),
    };
    out += &cell("state", &r.state, &escape(&r.state));
    out + "</tr>"
}

/// A session's archive state in words: `2/3 chunks uploaded`, `, session uploaded`.
pub fn archive_state(a: &SessionArchive) -> String {
    format!(
        "{}/{} chunks uploaded{}",
        a.uploaded_chunks,
        a.chunks,
        if a.session_uploaded {
            " · session uploaded"
        } else {
            ""
        }
    )
}

fn events(list: &[Event]) -> String {
    let mut out = String::from("<ol id=\"events\" class=\"events\">");
    for e in list {
        let _ = write!(
            out,
            "<li data-kind=\"{}\"><time data-ms=\"{}\">{}</time> <b>{}</b> {}{}</li>",
            escape(&e.kind),
            e.time_ms,
            clock(e.time_ms),
            escape(&e.kind),
            e.session
                .as_deref()
                .map(|s| format!("<span class=\"peer\">{}</span> ", escape(s)))
                .unwrap_or_default(),
            escape(&e.message)
        );
    }
    if list.is_empty() {
        out += "<li class=\"note\">nothing yet</li>";
    }
    out + "</ol>"
}

/// `HH:MM:SS` (UTC) of a time in milliseconds since the epoch.
pub(super) fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// The retention card: `none`, or what the last run measured against the quota.
fn retention(used: Option<u64>, max: u64) -> String {
    match (used, max) {
        (None, 0) => "none".to_owned(),
        (Some(u), 0) => format!("{} used, no total quota", bytes(u as f64)),
        (None, m) => format!("quota {}", bytes(m as f64)),
        (Some(u), m) => format!("{} / {}", bytes(u as f64), bytes(m as f64)),
    }
}

fn relay_cards(s: &StatusDoc) -> String {
    let r = &s.relay;
    let opt = |p: Option<u16>| p.map_or("—".to_owned(), |p| p.to_string());
    let items: Vec<(&str, &str, String)> = vec![
        ("version", "Version", escape(&r.version)),
        ("uptime", "Uptime", duration(r.uptime_s)),
        ("durability", "Durability", escape(&r.durability)),
        ("output", "Output", escape(&r.output)),
        (
            "disk",
            "Disk free",
            r.disk_free_bytes
                .map_or("—".to_owned(), |b| bytes(b as f64)),
        ),
        (
            "retention",
            "Retention",
            retention(r.retention_used_bytes, r.retention_max_bytes),
        ),
        (
            "listeners",
            "Ports",
            format!(
                "control {} · data {} · live {} · ops {} · tls {} · tls live {}",
                r.listeners.control,
                r.listeners.data,
                r.listeners.live,
                opt(r.listeners.ops),
                opt(r.listeners.tls),
                opt(r.listeners.tls_live)
            ),
        ),
        (
            "connections",
            "Connections",
            format!(
                "control {} · data {} · live {}",
                r.connections.control, r.connections.data, r.connections.live
            ),
        ),
        (
            "files",
            "Open files",
            format!(
                "pool {} / {} · fds {} / {}",
                r.files.pool_open,
                r.files.pool_max,
                r.files.fds_open.map_or("—".into(), |n| n.to_string()),
                r.files.fds_max.map_or("—".into(), |n| n.to_string())
            ),
        ),
        (
            "forward",
            "Forward",
            match &r.forward.url {
                None => "off".to_owned(),
                Some(u) => format!(
                    "{} · {} sessions · {} connected · backlog {}",
                    escape(u),
                    r.forward.sessions,
                    r.forward.connected,
                    bytes(r.forward.backlog_bytes as f64)
                ),
            },
        ),
        (
            "archive",
            "Archive",
            r.archive.url.as_deref().map_or("off".to_owned(), escape),
        ),
        (
            "totals",
            "Ingest",
            format!(
                "{} sessions · {} streams · {} viewers · {}/s",
                s.totals.sessions,
                s.totals.streams,
                s.totals.viewers,
                bytes(s.totals.rate_bps)
            ),
        ),
    ];
    let mut out = String::from("<dl id=\"relay\" class=\"cards\">");
    for (key, label, value) in items {
        let _ = write!(
            out,
            "<div><dt>{label}</dt><dd data-key=\"{key}\">{value}</dd></div>"
        );
    }
    out + "</dl>"
}

/// `GET /`: the relay, the sessions table and the events.
pub fn index(status: &StatusDoc, sessions: &SessionsDoc) -> String {
    let mut out = head("trelayd status", "data-page=\"index\"");
    out += "<header><h1>trelayd</h1><span class=\"note\">status · \
            <a href=\"/api/v1/status\">JSON</a> · <a href=\"/metrics\">metrics</a></span>\
            </header><main>";
    out += &relay_cards(status);
    out += "<section><h2>Sessions</h2><input id=\"filter\" type=\"search\" \
            placeholder=\"Filter by host or session\" aria-label=\"Filter sessions\">\
            <div class=\"scroll\"><table id=\"sessions\"><thead><tr>";
    for (key, label) in COLUMNS {
        let _ = write!(out, "<th data-key=\"{key}\" scope=\"col\">{label}</th>");
    }
    out += "</tr></thead><tbody>";
    for r in &sessions.sessions {
        out += &session_row(r);
    }
    out += "</tbody></table></div>";
    if sessions.sessions.is_empty() {
        out += "<p id=\"empty\" class=\"note\">No session.</p>";
    }
    out += "</section><section><h2>Events</h2>";
    out += &events(&status.events);
    out += "</section></main>";
    out + FOOT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&'y")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
    }

    #[test]
    fn figures_read_as_people_read_them() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3661), "1h 1m");
        assert_eq!(duration(90_000), "1d 1h");
    }

    #[test]
    fn the_sparkline_ends_at_the_right_edge_and_scales_to_its_maximum() {
        let svg = sparkline(&[0, 50, 100]);
        assert!(svg.contains("120.0,1.0 120.0,24.0\""), "{svg}");
        assert!(
            svg.contains("<polyline points=\"119.2,23.0 119.6,12.0 120.0,1.0\""),
            "{svg}"
        );
        assert!(svg.contains(",23.0 "), "{svg}");
        assert!(sparkline(&[]).contains("points=\"\""));
    }
}
