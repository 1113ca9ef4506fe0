//! The session page (`GET /sessions/ID`): one session's streams, viewers and chunks, rendered
//! with the same pieces as the index page ([`super::page`]).

use super::page::{bytes, clock, count, escape, head, session_row, COLUMNS, FOOT};
use std::fmt::Write;
use trelay_proto::status::SessionDoc;

/// `HH:MM:SS` of a last-packet time, `—` when there is none.
fn last_packet(ms: Option<u64>) -> String {
    ms.map_or("—".to_owned(), clock)
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
    use trelay_proto::status::SessionRow;

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
}
