//! Hostile 2.15-shaped input: CREATE_SESSION 2.15 with a trace format out of range or with
//! name lengths that disagree with its bytes, the 2.15 layout under a minor that does not carry
//! it, and live clients announcing 2.15 that misbehave. Each gets an error status (or its own
//! connection closed, as the protocol wants) and a log line; a healthy session streaming beside
//! keeps streaming and its viewer keeps reading.

use anyhow::{bail, ensure, Result};
use std::time::Duration;
use trelay_integration::client::{self, create_session_2_15_raw, Control};
use trelay_integration::live::{connect_request, wait_listed, LiveClient, Reply};
use trelay_integration::live_feed::Feed;
use trelay_integration::relay::Trelayd;
use trelay_integration::{unique, wait_for};
use trelay_proto::lttng::live::{
    AttachStatus, GetMetadataStatus, NextIndexStatus, Seek, ViewerReply, ViewerRequest,
};
use trelay_proto::{SessionId, StreamId, TraceFormat};

const OK: u32 = 10;
const FATAL: u32 = 25;
const METADATA: &[u8] = b"/* CTF 1.8 */\ntrace { major = 1; minor = 8; };\n";

/// A healthy live session with one data stream, and a viewer at 2.15 reading it.
struct Healthy {
    feed: Feed,
    viewer: LiveClient,
    stream: StreamId,
    read: usize,
}

impl Healthy {
    fn new(relay: &Trelayd) -> Result<Healthy> {
        let name = unique("healthy");
        let feed = Feed::new(
            relay.ports.control,
            relay.ports.data,
            &name,
            "h",
            1,
            METADATA,
        )?;
        let id = wait_listed(relay.ports.live, &name, Duration::from_secs(20))?.id;
        let mut viewer = LiveClient::viewer_at(relay.ports.live, 15)?;
        let (st, mut streams) = viewer.attach(id, Seek::Beginning)?;
        ensure!(st == AttachStatus::Ok, "healthy attach: {st:?}");
        wait_for(Duration::from_secs(20), "the healthy streams", || {
            if let Ok((_, more)) = viewer.new_streams(id) {
                streams.extend(more);
            }
            streams.len() >= 2
        })?;
        let meta = streams.iter().find(|s| s.is_metadata()).map(|s| s.id);
        let stream = streams.iter().find(|s| !s.is_metadata()).map(|s| s.id);
        let (Some(meta), Some(stream)) = (meta, stream) else {
            bail!("streams {streams:?}")
        };
        wait_for(Duration::from_secs(20), "the healthy metadata", || {
            matches!(viewer.metadata(meta), Ok((GetMetadataStatus::Ok, _)))
        })?;
        Ok(Healthy {
            feed,
            viewer,
            stream,
            read: 0,
        })
    }

    /// One more packet is sent and its viewer reads its index.
    fn still_streams(&mut self) -> Result<()> {
        self.feed.packet(0, 4096, 7)?;
        self.read += 1;
        let (viewer, stream) = (&mut self.viewer, self.stream);
        wait_for(
            Duration::from_secs(20),
            "the healthy packet",
            || matches!(viewer.next_index(stream), Ok(i) if i.status == NextIndexStatus::Ok),
        )
    }
}

/// A control connection at VERSION 2.`minor`.
fn control(relay: &Trelayd, minor: u32) -> Result<Control> {
    let mut c = Control::connect(relay.ports.control)?;
    c.handshake_at(minor)?;
    Ok(c)
}

/// Sends a CREATE_SESSION payload on a fresh 2.`minor` connection: its status.
fn create_status(relay: &Trelayd, minor: u32, payload: &[u8]) -> Result<u32> {
    let mut c = control(relay, minor)?;
    let (_, rc, _) = c.create_session(payload)?;
    Ok(rc)
}

#[test]
fn hostile_2_15_create_sessions_get_errors_and_the_healthy_session_keeps_streaming() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let mut healthy = Healthy::new(&relay)?;
    healthy.still_streams()?;

    // Trace formats outside the control enumeration (1 = CTF 1.8, 2 = CTF 2).
    for v in [0u32, 3, 0x100, u32::MAX] {
        let p = create_session_2_15_raw([4, 2, 1], 100_000, v, b"bad\0h\0\0");
        ensure!(
            create_status(&relay, 15, &p)? == FATAL,
            "format {v} accepted"
        );
        let line = format!("trace format: invalid value {v}");
        wait_for(Duration::from_secs(10), &line, || {
            relay.log_text().contains(&line)
        })?;
        healthy.still_streams()?;
    }

    // Name lengths that disagree with the bytes.
    for (lens, names, what) in [
        (
            [200, 2, 1],
            &b"bad\0h\0\0"[..],
            "session name: declared length 200 reaches past",
        ),
        (
            [4, 2, 0],
            b"bad\0h\0\0",
            "CREATE_SESSION: payload is 70 bytes, expected 69",
        ),
        (
            [3, 3, 1],
            b"bad\0h\0\0",
            "session name: string is not NUL-terminated",
        ),
        (
            [256, 2, 1],
            b"bad\0h\0\0",
            "session name: declared length 256 exceeds",
        ),
        (
            [4, 300, 1],
            b"bad\0h\0\0",
            "hostname: declared length 300 exceeds",
        ),
        (
            [u32::MAX; 3],
            b"bad\0h\0\0",
            "declared length 4294967295 exceeds",
        ),
        ([0, 0, 0], b"", "session name: string is not NUL-terminated"),
    ] {
        let p = create_session_2_15_raw(lens, 100_000, 2, names);
        let rc = create_status(&relay, 15, &p)?;
        ensure!(rc == FATAL, "{lens:?}: status {rc}");
        wait_for(Duration::from_secs(10), what, || {
            relay.log_text().contains(what)
        })
        .map_err(|e| anyhow::anyhow!("{lens:?}: {e}: {}", relay.log_tail()))?;
        healthy.still_streams()?;
    }

    // The 2.15 layout from a peer that negotiated 14 (a 2.14 sender has no trace format): four
    // bytes too many for its names.
    let p = client::create_session_2_15_payload(&unique("mislaid"), "h", 0, TraceFormat::Ctf2);
    ensure!(create_status(&relay, 14, &p)? == FATAL);
    // The 2.11 layout from a peer that negotiated 15: the names' first bytes are read as the
    // trace format.
    let p = client::create_session_payload(&unique("old"), "h", "", 0);
    ensure!(create_status(&relay, 15, &p)? == FATAL);
    // A CREATE_SESSION cut in the middle of the trace format, then the peer goes away.
    let mut c = control(&relay, 15)?;
    let p = create_session_2_15_raw([4, 2, 1], 0, 2, b"cut\0h\0\0");
    c.send_raw(2, p.len() as u64, &p[..61])?;
    drop(c);
    healthy.still_streams()?;

    // Nothing was created for the refused sessions; valid 2.15 sessions of both formats and a
    // 2.14 one are accepted beside them, on the same relay.
    let out = trelay_integration::files_under(&relay.out);
    ensure!(
        !out.iter().any(|p| p.to_string_lossy().contains("bad")),
        "{out:?}"
    );
    for (minor, format) in [(15, TraceFormat::Ctf2), (15, TraceFormat::Ctf1_8)] {
        let p = client::create_session_2_15_payload(&unique("good"), "h", 100_000, format);
        ensure!(create_status(&relay, minor, &p)? == OK, "{format}");
    }
    let p = client::create_session_payload(&unique("good14"), "h", "", 0);
    ensure!(create_status(&relay, 14, &p)? == OK, "2.14");
    healthy.still_streams()?;
    ensure!(healthy.read >= 12);
    relay.stop_ok()?;
    Ok(())
}

/// A live CTF 2 session made by a raw 2.15 sender (metadata stream and one data stream).
fn ctf2_session(relay: &Trelayd, name: &str) -> Result<Control> {
    let mut c = control(relay, 15)?;
    let p = client::create_session_2_15_payload(name, "h", 100_000, TraceFormat::Ctf2);
    let (_, rc, _) = c.create_session(&p)?;
    ensure!(rc == OK, "CTF 2 session: {rc}");
    ensure!(c.create_chunk(0, None)? == OK);
    for ch in ["metadata", "chan_0"] {
        let (_, rc) = c.add_stream(ch, "ust/uid/0/64-bit")?;
        ensure!(rc == OK, "ADD_STREAM {ch}: {rc}");
    }
    ensure!(c.status(16, &[])? == OK);
    Ok(c)
}

#[test]
fn live_clients_announcing_2_15_that_misbehave_affect_only_their_connection() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let port = relay.ports.live;
    let mut healthy = Healthy::new(&relay)?;
    let c2name = unique("ctf2");
    let _c2 = ctf2_session(&relay, &c2name)?;
    let mut at15 = LiveClient::viewer_at(port, 15)?;
    let mut c2 = None;
    wait_for(
        Duration::from_secs(20),
        "the CTF 2 session listed at 2.15",
        || {
            c2 = at15.find(&c2name).ok().flatten();
            c2.is_some()
        },
    )?;
    let c2 = c2.map(|r| r.id).unwrap_or(SessionId(0));

    // An unknown command: LTTNG_ERR_UNK, then the relay hangs up.
    let mut unk = LiveClient::viewer_at(port, 15)?;
    unk.send_raw(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0])?;
    match unk.recv(42)? {
        Reply::Other(ViewerReply::UnknownCommand { code: 11 }) => {}
        other => bail!("{other:?}"),
    }
    ensure!(unk.closed_by_relay(Duration::from_secs(10))?);
    healthy.still_streams()?;

    // A bad seek: SEEK_ERR, the connection goes on.
    let mut seek = LiveClient::viewer_at(port, 15)?;
    let mut req = Vec::new();
    ViewerRequest::AttachSession {
        session_id: c2,
        offset: 0,
        seek: Seek::Beginning,
    }
    .encode(&mut req);
    let n = req.len();
    req[n - 4..].copy_from_slice(&9u32.to_be_bytes());
    seek.send_raw(&req)?;
    match seek.recv(3)? {
        Reply::Other(ViewerReply::AttachSession {
            status: AttachStatus::SeekError,
            ..
        }) => {}
        other => bail!("{other:?}"),
    }
    ensure!(seek.find(&c2name)?.is_some(), "the connection broke");

    // A request whose size disagrees with its command: hang-up.
    let mut size = LiveClient::viewer_at(port, 15)?;
    size.send_raw(&[0xff; 8])?;
    size.send_raw(&[0, 0, 0, 2, 0, 0, 0, 0])?;
    ensure!(size.closed_by_relay(Duration::from_secs(10))?);

    // Half a request, then gone.
    let mut half = LiveClient::viewer_at(port, 15)?;
    half.send_raw(&[0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 3, 0])?;
    drop(half);
    healthy.still_streams()?;

    // A wrong major with minor 15: hang-up.
    let mut major = LiveClient::connect(port)?;
    major.send(&ViewerRequest::Connect(
        trelay_proto::lttng::live::ConnectRequest {
            viewer_session_id: trelay_proto::ViewerSessionId(0),
            major: 3,
            minor: 15,
            conn_type: trelay_proto::lttng::live::ConnectionType::Command,
        },
    ))?;
    ensure!(major.closed_by_relay(Duration::from_secs(10))?);

    // Attached to the CTF 2 session at 15, then CONNECT again at 2.4: detached from it, and it
    // is unknown from then on; the connection goes on with the CTF 1.8 session.
    let mut turncoat = LiveClient::viewer_at(port, 15)?;
    let (st, _) = turncoat.attach(c2, Seek::Beginning)?;
    ensure!(st == AttachStatus::Ok, "{st:?}");
    match turncoat.call(&connect_request(4))? {
        Reply::Other(ViewerReply::Connect(c)) if c.minor == 15 => turncoat.minor = 4,
        other => bail!("{other:?}"),
    }
    let (st, _) = turncoat.attach(c2, Seek::Beginning)?;
    ensure!(st == AttachStatus::Unknown, "{st:?}");
    ensure!(turncoat.find(&c2name)?.is_none());
    ensure!(
        relay.log_text().contains("detached from its CTF 2 session"),
        "{}",
        relay.log_tail()
    );

    // The healthy viewer and the 2.15 lister are unharmed.
    healthy.still_streams()?;
    ensure!(at15.find(&c2name)?.is_some());
    relay.stop_ok()?;
    Ok(())
}
