//! `sessions`: the live sessions a relay offers.

use serde::Serialize;
use trelay_proto::lttng::live::{SessionRecord, ViewerReply, ViewerRequest};
use trelay_proto::TraceFormat;

use super::{LiveError, ViewerConn};
use crate::url::LiveUrl;

/// One live session, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Relay session id.
    pub id: u64,
    /// Hostname of the traced machine.
    pub hostname: String,
    /// Session name.
    pub name: String,
    /// Streams of the session (metadata included).
    pub streams: u32,
    /// Viewers attached.
    pub clients: u32,
    /// Live timer, µs (0: not a live session).
    pub live_timer_us: u32,
    /// URL to attach to it.
    pub url: String,
    /// Its trace format (CTF 1.8 from a relay below live minor 15, which cannot say).
    pub trace_format: TraceFormat,
}

/// Lists the sessions of the relay at `url` (CONNECT, then LIST_SESSIONS).
pub fn list_sessions(url: &LiveUrl) -> Result<Vec<SessionInfo>, LiveError> {
    list_sessions_with(url, None)
}

/// Lists the sessions of the relay at `url`, inside TLS for `tls+net://`.
pub fn list_sessions_with(
    url: &LiveUrl,
    tls: Option<&super::ViewerTls>,
) -> Result<Vec<SessionInfo>, LiveError> {
    let mut conn = ViewerConn::connect_url(url, tls)?;
    let records = fetch(&mut conn)?;
    Ok(records
        .into_iter()
        .map(|r| SessionInfo {
            id: r.id.0,
            url: url.session_url(&r.hostname, &r.session_name),
            hostname: r.hostname,
            name: r.session_name,
            streams: r.streams,
            clients: r.clients,
            live_timer_us: r.live_timer,
            trace_format: r.trace_format,
        })
        .collect())
}

/// LIST_SESSIONS on an open connection.
pub fn fetch(conn: &mut ViewerConn) -> Result<Vec<SessionRecord>, LiveError> {
    match conn.call(&ViewerRequest::ListSessions)? {
        ViewerReply::ListSessions(s) => Ok(s),
        other => Err(LiveError::Protocol(format!(
            "LIST_SESSIONS answered {other:?}"
        ))),
    }
}

/// The sessions as a table (or a note when there is none).
pub fn render_sessions(sessions: &[SessionInfo]) -> String {
    if sessions.is_empty() {
        return "no live session\n".to_owned();
    }
    let header = [
        "ID",
        "HOST",
        "NAME",
        "STREAMS",
        "CLIENTS",
        "LIVE TIMER",
        "FORMAT",
        "URL",
    ];
    let rows: Vec<[String; 8]> = sessions
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.hostname.clone(),
                s.name.clone(),
                s.streams.to_string(),
                s.clients.to_string(),
                if s.live_timer_us == 0 {
                    "not live".to_owned()
                } else {
                    format!("{} us", s.live_timer_us)
                },
                s.trace_format.name().to_owned(),
                s.url.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let s = SessionInfo {
            id: 1,
            hostname: "vm".into(),
            name: "fx3754".into(),
            streams: 3,
            clients: 0,
            live_timer_us: 200000,
            url: "net://localhost:5344/host/vm/fx3754".into(),
            trace_format: TraceFormat::Ctf2,
        };
        let t = render_sessions(&[s]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("ID  HOST  NAME    STREAMS  CLIENTS  LIVE TIMER  FORMAT  URL"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("1   vm    fx3754  3        0        200000 us   CTF 2   net://"),
            "{t}"
        );
        assert_eq!(render_sessions(&[]), "no live session\n");
    }
}
