//! The HTML of the status pages, rendered on the server from the API's documents so that they
//! read without JavaScript; `status.js` (served beside them) redraws the same elements from the
//! API once a second. Every string from the network goes through [`escape`].

use std::fmt::Write;
use trelay_proto::status::{Event, SessionArchive, SessionDoc, SessionRow, SessionsDoc, StatusDoc};

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

fn head(title: &str, body_attrs: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/static/status.css\">\
         <link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\"></head>\
         <body {body_attrs}>",
        escape(title)
    )
}

const FOOT: &str = "<noscript><p class=\"note\">Reload the page to refresh it.</p></noscript>\
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

fn count(col: &str, n: u64) -> String {
    let class = if n > 0 && col != "viewers" && col != "streams" {
        " class=\"bad\""
    } else {
        ""
    };
    format!("<td data-col=\"{col}\" data-value=\"{n}\"{class}>{n}</td>")
}

fn session_row(r: &SessionRow) -> String {
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

/// `HH:MM:SS` of a last-packet time, `—` when there is none.
fn last_packet(ms: Option<u64>) -> String {
    ms.map_or("—".to_owned(), clock)
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
fn clock(ms: u64) -> String {
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

/// `GET /sessions/ID`: one session's streams, viewers and chunks.
pub fn session(doc: &SessionDoc) -> String {
    let s = &doc.session;
    let mut out = head(
        &format!("{} — trelayd", s.name),
        &format!("data-page=\"session\" data-id=\"{}\"", s.id),
    );
    let _ = write!(
        out,
        "<header><h1><a href=\"/\">trelayd</a> › <span id=\"session-name\">{}</span></h1>\
         <span class=\"note\">{} · <a href=\"/api/v1/sessions/{}\">JSON</a></span></header><main>",
        escape(&s.name),
        escape(&s.dir),
        s.id
    );
    out += "<section><div class=\"scroll\"><table id=\"sessions\"><thead><tr>";
    for (key, label) in COLUMNS {
        let _ = write!(out, "<th data-key=\"{key}\" scope=\"col\">{label}</th>");
    }
    out += "</tr></thead><tbody>";
    out += &session_row(s);
    out += "</tbody></table></div></section>";
    out += "<section><h2>Streams</h2><div class=\"scroll\"><table id=\"streams\"><thead><tr>\
            <th>Id</th><th>Name</th><th>Path</th><th>Bytes</th><th>Packets</th>\
            <th>Committed</th><th>Tracefile</th><th>Lost</th><th>Unindexed</th><th>Last packet</th>\
            <th>State</th>\
            </tr></thead><tbody>";
    for st in &doc.streams {
        let _ = write!(
            out,
            "<tr data-id=\"{}\"><td>{}</td><td>{}{}</td><td>{}</td><td data-value=\"{}\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td>{}{}<td data-col=\"last_packet_ms\" \
             data-value=\"{}\">{}</td><td>{}</td></tr>",
            st.id,
            st.id,
            escape(&st.name),
            if st.metadata { " (metadata)" } else { "" },
            escape(&st.path),
            st.bytes,
            bytes(st.bytes as f64),
            st.packets,
            st.committed,
            st.tracefile,
            count("lost_packets", st.lost_packets),
            count("unindexed_packets", st.unindexed_packets),
            st.last_packet_ms.unwrap_or(0),
            last_packet(st.last_packet_ms),
            if st.closed { "closed" } else { "open" }
        );
    }
    out += "</tbody></table></div></section><section><h2>Viewers</h2><ul id=\"viewers\">";
    for v in &doc.viewers {
        let _ = write!(
            out,
            "<li data-lag=\"{}\">{} <span class=\"peer\">viewer {} · attached {} · \
             lag {} packets over {} streams</span></li>",
            v.lag_packets,
            escape(&v.peer),
            v.viewer,
            clock(v.attached_at.saturating_mul(1000)),
            v.lag_packets,
            v.streams
        );
    }
    if doc.viewers.is_empty() {
        out += "<li class=\"note\">none</li>";
    }
    let c = &doc.chunks;
    let _ = write!(
        out,
        "</ul></section><section><h2>Chunks</h2><dl id=\"chunks\" class=\"cards\">\
         <div><dt>Current</dt><dd>{}</dd></div><div><dt>Closing</dt><dd>{}</dd></div>\
         <div><dt>Archived</dt><dd>{}</dd></div></dl><ul id=\"archived\">{}</ul></section></main>",
        c.current
            .as_deref()
            .map_or("—".to_owned(), |p| escape(if p.is_empty() {
                "."
            } else {
                p
            })),
        c.closing.as_deref().map_or("—".to_owned(), escape),
        if c.rotated { "yes (archives/)" } else { "no" },
        archived_list(&c.archived)
    );
    out + FOOT
}

fn archived_list(list: &[trelay_proto::status::ArchivedChunk]) -> String {
    let mut out = String::new();
    for a in list {
        let _ = write!(
            out,
            "<li data-uploaded=\"{}\">{} <span class=\"peer\">{}</span></li>",
            a.uploaded.map_or("", |u| if u { "1" } else { "0" }),
            escape(&a.name),
            match a.uploaded {
                None => "not archiving",
                Some(true) => "uploaded",
                Some(false) => "not uploaded yet",
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> SessionDoc {
        use trelay_proto::status::{ArchivedChunk, Chunks, StreamRow, ViewerRow};
        let row: SessionRow = serde_json::from_value(serde_json::json!({
            "id": 4, "host": "h", "peer": "h", "name": "s", "dir": "h/s", "format": "lttng 2.4",
            "live": true, "live_timer_us": 1, "snapshot": false, "state": "streaming",
            "streams": 1, "bytes": 1, "packets": 1, "rate_bps": 0.0, "history": [],
            "lost_packets": 0, "unindexed_packets": 0, "sequence_gaps": 0,
            "discarded_events": 0, "uncommitted_packets": 0, "viewers": 1, "forward": null,
            "archive": { "chunks": 3, "uploaded_chunks": 2, "session_uploaded": false }
        }))
        .unwrap();
        SessionDoc {
            schema: 1,
            time_ms: 0,
            session: row,
            streams: vec![StreamRow {
                id: 1,
                name: "channel0_0".into(),
                path: "ust".into(),
                metadata: false,
                bytes: 0,
                packets: 0,
                committed: 0,
                tracefile: 0,
                lost_packets: 0,
                unindexed_packets: 0,
                closed: false,
                last_packet_ms: Some(3_723_000),
            }],
            viewers: vec![ViewerRow {
                peer: "127.0.0.1:1".into(),
                viewer: 2,
                attached_at: 0,
                streams: 1,
                lag_packets: 42,
            }],
            chunks: Chunks {
                current: Some(String::new()),
                closing: None,
                rotated: true,
                archived: vec![ArchivedChunk {
                    name: "<b>c1".into(),
                    uploaded: Some(true),
                }],
            },
        }
    }

    #[test]
    fn the_session_page_shows_lag_last_packet_and_archive_state() {
        let html = session(&doc());
        assert!(html.contains("data-lag=\"42\""), "{html}");
        assert!(html.contains("lag 42 packets over 1 streams"), "{html}");
        assert!(
            html.contains("data-value=\"3723000\">01:02:03</td>"),
            "{html}"
        );
        assert!(html.contains("2/3 chunks uploaded"), "{html}");
        assert!(
            html.contains("<li data-uploaded=\"1\">&lt;b&gt;c1 <span class=\"peer\">uploaded"),
            "{html}"
        );
        assert!(!html.contains("<b>c1"), "{html}");
    }

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
