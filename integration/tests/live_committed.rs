//! Live viewers against a session fed by hand (raw control and data connections, no
//! lttng-sessiond), so what trelayd has received and committed is known exactly: only complete,
//! committed entries are served, beacons make idle streams INACTIVE, every viewer gets its own
//! NEW_STREAM flag, and a closed session drains then hangs up.

use anyhow::{ensure, Context, Result};
use std::io::Write;
use std::time::{Duration, Instant};
use trelay_integration::client;
use trelay_integration::live::{wait_listed, LiveClient};
use trelay_integration::live_feed::Feed;
use trelay_integration::relay::Trelayd;
use trelay_integration::{unique, wait_for};
use trelay_proto::lttng::live::{
    AttachStatus, GetMetadataStatus, GetPacketStatus, NewStreamsStatus, NextIndexStatus, Seek,
    ViewerFlags,
};
use trelay_proto::StreamId;

const METADATA: &[u8] = b"/* CTF 1.8 */ trace { major = 1; minor = 8; };\n";

/// Polls GET_NEXT_INDEX on `s` until its status is not RETRY (at most 20 s).
fn next_settled(c: &mut LiveClient, s: StreamId) -> Result<trelay_proto::lttng::live::IndexReply> {
    let start = Instant::now();
    loop {
        let i = c.next_index(s)?;
        if i.status != NextIndexStatus::Retry || start.elapsed() > Duration::from_secs(20) {
            return Ok(i);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn viewers_see_only_committed_entries_and_their_own_new_streams() -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("trelay-live-").tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let name = unique("lvc");
    let mut feed = Feed::new(
        relay.ports.control,
        relay.ports.data,
        &name,
        "feedhost",
        2,
        METADATA,
    )?;
    let sid = wait_listed(relay.ports.live, &name, Duration::from_secs(20))?.id;
    let mut v1 = LiveClient::viewer(relay.ports.live)?;
    let mut v2 = LiveClient::viewer(relay.ports.live)?;
    let (st, mut streams) = v1.attach(sid, Seek::Beginning)?;
    ensure!(st == AttachStatus::Ok, "{st:?}");
    // Streams are announced by the commit that follows STREAMS_SENT.
    wait_for(Duration::from_secs(20), "3 streams announced", || {
        if let Ok((NewStreamsStatus::Ok, more)) = v1.new_streams(sid) {
            streams.extend(more);
        }
        streams.len() >= 3
    })?;
    ensure!(streams.len() == 3, "{streams:?}");
    ensure!(streams[0].is_metadata(), "metadata first");
    let (st, _) = v2.attach(sid, Seek::Beginning)?;
    ensure!(st == AttachStatus::Ok, "second viewer: {st:?}");
    let (meta, a, b) = (
        streams[0].id,
        StreamId(feed.streams[0]),
        StreamId(feed.streams[1]),
    );
    wait_for(
        Duration::from_secs(20),
        "metadata committed",
        || matches!(v1.metadata(meta), Ok((GetMetadataStatus::Ok, ref d)) if d.as_slice() == METADATA),
    )?;
    ensure!(
        v1.next_index(a)?.status == NextIndexStatus::Retry,
        "nothing sent yet"
    );

    // Index half first: the entry is incomplete, so no viewer may see it.
    let len = 4096u32;
    let idx = client::index_payload(feed.streams[0], 0, u64::from(len), 0);
    ensure!(feed.control.status(13, &idx)? == 10, "SEND_INDEX");
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        ensure!(
            v1.next_index(a)?.status == NextIndexStatus::Retry,
            "an incomplete entry was served"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
    // Its data completes it; the commit publishes it.
    let mut payload = client::packet(len as usize);
    payload[..4].copy_from_slice(&[0xc1, 0x1f, 0xfc, 0xc1]);
    feed.data
        .write_all(&client::data_header(feed.streams[0], 0, len, 0))?;
    feed.data.write_all(&payload)?;
    feed.seq[0] = 1;
    feed.written[0] = u64::from(len);
    let i = next_settled(&mut v1, a)?;
    ensure!(
        i.status == NextIndexStatus::Ok && i.offset == 0 && i.packet_size == u64::from(len) * 8,
        "{i:?}"
    );
    let (st, _, data) = v1.packet(a, 0, len)?;
    ensure!(
        st == GetPacketStatus::Ok && data == payload,
        "packet bytes differ ({st:?})"
    );
    ensure!(
        next_settled(&mut v2, a)?.status == NextIndexStatus::Ok,
        "second viewer"
    );

    // An idle stream with a beacon: INACTIVE, not RETRY.
    feed.beacon(1, 777_000)?;
    let i = next_settled(&mut v1, b)?;
    ensure!(
        i.status == NextIndexStatus::Inactive && i.timestamp_end == 777_000,
        "{i:?}"
    );

    // A stream published later: flagged on each viewer's OK replies until it asks.
    let c = feed.add_stream()?;
    feed.packet(0, 2048, 1)?;
    feed.packet(0, 2048, 2)?;
    let i = next_settled(&mut v1, a)?;
    ensure!(
        i.status == NextIndexStatus::Ok && i.flags.contains(ViewerFlags::NEW_STREAM),
        "{i:?}"
    );
    let (st, new) = v1.new_streams(sid)?;
    ensure!(
        st == NewStreamsStatus::Ok && new.len() == 1 && new[0].id.0 == feed.streams[c],
        "{new:?}"
    );
    let i = next_settled(&mut v1, a)?;
    ensure!(
        i.status == NextIndexStatus::Ok && !i.flags.contains(ViewerFlags::NEW_STREAM),
        "{i:?}"
    );
    let i = next_settled(&mut v2, a)?;
    ensure!(
        i.flags.contains(ViewerFlags::NEW_STREAM),
        "viewer 2 lost its flag: {i:?}"
    );
    let (_, new2) = v2.new_streams(sid)?;
    ensure!(new2.len() == 1, "{new2:?}");

    // Destroy: drain, then HUP everywhere.
    feed.close()?;
    let i = next_settled(&mut v2, a)?;
    ensure!(
        i.status == NextIndexStatus::Ok,
        "last packet before HUP: {i:?}"
    );
    ensure!(next_settled(&mut v2, a)?.status == NextIndexStatus::Hup);
    ensure!(next_settled(&mut v1, a)?.status == NextIndexStatus::Hup);
    for s in [b, StreamId(feed_stream(&new2))] {
        ensure!(
            next_settled(&mut v1, s)?.status == NextIndexStatus::Hup,
            "stream {s}"
        );
    }
    let (st, _) = v1.metadata(meta)?;
    ensure!(st == GetMetadataStatus::NoNewMetadata, "{st:?}");
    let (st, _) = v1.new_streams(sid)?;
    ensure!(st == NewStreamsStatus::Hup, "{st:?}");
    wait_for(Duration::from_secs(20), "session unlisted", || {
        LiveClient::viewer(relay.ports.live)
            .and_then(|mut c| c.find(&name))
            .map(|s| s.is_none())
            .unwrap_or(false)
    })
    .context("a closed session is not listed")?;
    ensure!(relay.stop()? == 0);
    Ok(())
}

fn feed_stream(r: &[trelay_proto::lttng::live::StreamRecord]) -> u64 {
    r.first().map(|s| s.id.0).unwrap_or(0)
}
