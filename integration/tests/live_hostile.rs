//! Hostile and broken live viewers against trelayd, next to a well-behaved one: every bad
//! request gets an error status (or the connection closed, as the protocol wants), the relay
//! keeps running, and the good viewer keeps reading.

use anyhow::{bail, ensure, Context, Result};
use std::io::Write;
use std::time::Duration;
use trelay_integration::live::{LiveClient, Reply};
use trelay_integration::lttng::{lttng, sessiond, SessionGuard, Workload};
use trelay_integration::relay::Trelayd;
use trelay_integration::scenario::WORKLOAD;
use trelay_integration::session::{create_streaming, enable_event, large_allocs};
use trelay_integration::{unique, wait_for};
use trelay_proto::lttng::live::{
    AttachStatus, GetMetadataStatus, GetPacketStatus, NextIndexStatus, Seek, StreamRecord,
    ViewerReply, ViewerRequest,
};
use trelay_proto::{SessionId, StreamId};

fn session(relay: &Trelayd, name: &str, work: &Workload) -> Result<SessionGuard> {
    let g = create_streaming(name, &relay.ports, &["--live=200000"])?;
    enable_event(name, None, "lttng_ust_libc:malloc", &large_allocs(work))?;
    lttng(&["start", name])?;
    Ok(g)
}

/// Attaches from the beginning and reads the first packet of some data stream: (its stream,
/// offset, size in bytes).
fn first_packet(
    c: &mut LiveClient,
    id: SessionId,
) -> Result<(Vec<StreamRecord>, StreamId, u64, u64)> {
    let (status, streams) = c.attach(id, Seek::Beginning)?;
    ensure!(status == AttachStatus::Ok, "attach: {status:?}");
    for s in streams.iter().filter(|s| !s.is_metadata()) {
        let i = c.next_index(s.id)?;
        if i.status == NextIndexStatus::Ok {
            return Ok((streams.clone(), s.id, i.offset, i.packet_size / 8));
        }
    }
    bail!("no committed packet in {streams:?}")
}

#[test]
fn hostile_viewers_get_errors_and_never_disturb_the_others() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-live-").tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let tag = unique("lvh");
    let work = Workload::python(tmp.path(), &tag)?;
    let _g1 = session(&relay, &tag, &work)?;
    let other_name = format!("{tag}o");
    let _g2 = session(&relay, &other_name, &work)?;
    work.run(&["-c", WORKLOAD, "100"])?;
    let port = relay.ports.live;
    let sid = trelay_integration::live::wait_listed(port, &tag, Duration::from_secs(30))?.id;
    let other =
        trelay_integration::live::wait_listed(port, &other_name, Duration::from_secs(30))?.id;

    // The good viewer: waits for a committed packet and reads it.
    let mut good = LiveClient::viewer(port)?;
    let mut first = None;
    wait_for(Duration::from_secs(30), "a committed packet", || {
        let mut c = match LiveClient::viewer(port) {
            Ok(c) => c,
            Err(_) => return false,
        };
        first = first_packet(&mut c, sid).ok();
        first.is_some()
    })?;
    let (streams, stream, offset, _size) = first.context("no packet")?;
    let (_, s2, o2, z2) = first_packet(&mut good, sid)?;
    let (st, _, data) = good.packet(s2, o2, u32::try_from(z2)?)?;
    ensure!(
        st == GetPacketStatus::Ok && data.len() as u64 == z2,
        "good viewer: {st:?}"
    );
    ensure!(
        data.get(..4) == Some(&[0xc1, 0x1f, 0xfc, 0xc1][..]),
        "not a CTF packet"
    );

    // A second viewer on the same session is welcome (never ALREADY).
    let mut bad = LiveClient::viewer(port)?;
    let (_, _, offset_b, size_b) = first_packet(&mut bad, sid)?;
    let (_, s_b, off_b, len_b) = (streams.clone(), stream, offset_b, size_b);
    for (o, l, what) in [
        (off_b, u32::MAX, "huge length"),
        (off_b + len_b, 4096, "offset past the packet"),
        (u64::MAX - 1, 4096, "offset overflow"),
        (off_b + 1, u32::try_from(len_b)?, "one byte past the end"),
    ] {
        let (st, _, d) = bad.packet(s_b, o, l)?;
        ensure!(
            st == GetPacketStatus::Error && d.is_empty(),
            "{what}: {st:?}"
        );
    }
    let meta = streams
        .iter()
        .find(|s| s.is_metadata())
        .context("no metadata stream")?
        .id;
    let (st, _, _) = bad.packet(meta, 0, 16)?;
    ensure!(
        st == GetPacketStatus::Error,
        "GET_PACKET on metadata: {st:?}"
    );

    // A viewer attached to another session cannot read this one's streams.
    let mut nosy = LiveClient::viewer(port)?;
    let (st, _) = nosy.attach(other, Seek::Last)?;
    ensure!(st == AttachStatus::Ok);
    ensure!(nosy.next_index(stream)?.status == NextIndexStatus::Error);
    let (st, _, _) = nosy.packet(stream, offset, 16)?;
    ensure!(st == GetPacketStatus::Error);
    let (st, _) = nosy.metadata(meta)?;
    ensure!(st == GetMetadataStatus::Error);

    // Before ATTACH: errors; before CREATE_SESSION: NO_SESSION.
    let mut early = LiveClient::connect(port)?;
    match early.call(&trelay_integration::live::connect_request(4))? {
        Reply::Other(ViewerReply::Connect(_)) => {}
        other => bail!("{other:?}"),
    }
    ensure!(early.next_index(stream)?.status == NextIndexStatus::Error);
    let (st, _) = early.attach(sid, Seek::Last)?;
    ensure!(st == AttachStatus::NoSession, "{st:?}");

    // Before CONNECT: the relay hangs up.
    let mut rude = LiveClient::connect(port)?;
    rude.send(&ViewerRequest::ListSessions)?;
    ensure!(
        rude.closed_by_relay(Duration::from_secs(10))?,
        "no hang-up before CONNECT"
    );

    // Unknown command: LTTNG_ERR_UNK (11) then hang-up.
    let mut unk = LiveClient::viewer(port)?;
    unk.send_raw(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0])?;
    match unk.recv(99)? {
        Reply::Other(ViewerReply::UnknownCommand { code: 11 }) => {}
        other => bail!("{other:?}"),
    }
    ensure!(unk.closed_by_relay(Duration::from_secs(10))?);

    // Viewers vanishing mid-request or mid-reply.
    for _ in 0..5 {
        let mut gone = LiveClient::viewer(port)?;
        let (_, s, o, z) = first_packet(&mut gone, sid)?;
        gone.send(&ViewerRequest::GetMetadata { stream_id: meta })?;
        gone.send(&ViewerRequest::GetPacket {
            stream_id: s,
            offset: o,
            len: u32::try_from(z)?,
        })?;
        drop(gone);
        let mut half = LiveClient::viewer(port)?;
        half.sock.write_all(&[0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 4])?;
        drop(half);
    }

    // The good viewer still reads, the relay still runs and lists the session.
    let (st, data) = good.metadata(meta)?;
    ensure!(
        st == GetMetadataStatus::Ok && !data.is_empty(),
        "metadata: {st:?}"
    );
    let i = good.next_index(s2)?;
    ensure!(
        matches!(
            i.status,
            NextIndexStatus::Ok | NextIndexStatus::Retry | NextIndexStatus::Inactive
        ),
        "{i:?}"
    );
    ensure!(relay.alive(), "trelayd died");
    trelay_integration::live::wait_listed(port, &tag, Duration::from_secs(10))?;
    let log = relay.log_text();
    ensure!(
        log.contains("GET_PACKET refused"),
        "no log line for refused requests"
    );
    ensure!(!log.contains("panicked"), "{}", relay.log_tail());
    Ok(())
}
