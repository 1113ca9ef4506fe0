//! Protocol paths the 2.13 tools rarely or never take here, driven with a raw client: older
//! protocol minors (2.4 and 2.8 layouts, index v1.0 and v1.1), RESET_METADATA, SEND_METADATA
//! padding, kernel-style packets, snapshot sessions without indexes.

use anyhow::{ensure, Result};
use std::io::Write;
use trelay_integration::client::{self, Control};
use trelay_integration::relay::Trelayd;
use trelay_proto::lttng::relayd::{
    AddStream, Command, CreateSession, ProtocolMinor, SendIndex, SendMetadata, Version,
};
use trelay_proto::{NetSeq, StreamId};

const OK: u32 = 10;

fn encode(cmd: &Command<'_>, minor: u32) -> Vec<u8> {
    let mut p = Vec::new();
    cmd.encode_payload(ProtocolMinor(minor), &mut p);
    p
}

fn metadata(c: &mut Control, id: u64, data: &[u8], padding: u32) -> Result<()> {
    let p = encode(
        &Command::SendMetadata(SendMetadata {
            stream_id: StreamId(id),
            padding_size: padding,
            data,
        }),
        13,
    );
    c.send(6, &p)
}

/// An older sender: VERSION 2.minor, 2.4 CREATE_SESSION, 2.2 ADD_STREAM (paths relative to the
/// output root), SEND_INDEX of the minor's size; the index file version follows the minor.
fn old_sender(minor: u32, index_minor: u32, entry_len: u64) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let mut c = Control::connect(relay.ports.control)?;
    let v = encode(&Command::Version(Version { major: 2, minor }), minor);
    ensure!(c.call(5, &v, 8)? == [0, 0, 0, 2, 0, 0, 0, 15]);
    let create = encode(
        &Command::CreateSession(CreateSession {
            session_name: "old".into(),
            hostname: "h".into(),
            live_timer_us: 0,
            ..CreateSession::default()
        }),
        minor,
    );
    c.send(2, &create)?;
    let r = c.recv(12)?;
    ensure!(
        r[8..12] == OK.to_be_bytes(),
        "CREATE_SESSION at minor {minor}: {r:?}"
    );
    let add = |name: &str| {
        encode(
            &Command::AddStream(AddStream {
                channel_name: name.into(),
                pathname: "h/old-20261123-062223/kernel".into(),
                ..AddStream::default()
            }),
            minor,
        )
    };
    let r = c.call(1, &add("chan_0"), 12)?;
    ensure!(r[8..12] == OK.to_be_bytes());
    let h = u64::from_be_bytes(r[0..8].try_into()?);
    let mut d = client::data(relay.ports.data)?;
    d.write_all(&client::data_header(h, 0, 4096, 0))?;
    d.write_all(&client::packet(4096))?;
    let idx = encode(
        &Command::SendIndex(SendIndex {
            relay_stream_id: StreamId(h),
            net_seq: NetSeq(0),
            packet_size: 4096 * 8,
            content_size: 4000 * 8,
            timestamp_begin: 1,
            timestamp_end: 2,
            events_discarded: 0,
            stream_class_id: 0,
            stream_instance_id: 0,
            packet_seq_num: 0,
        }),
        minor,
    );
    ensure!(c.status(13, &idx)? == OK);
    let mut close = h.to_be_bytes().to_vec();
    close.extend_from_slice(&0u64.to_be_bytes());
    ensure!(c.status(7, &close)? == OK);
    // The packet is in once the stream closed (it waited for packet 0).
    let data = relay.out.join("h/old-20261123-062223/kernel/chan_0");
    trelay_integration::wait_for(std::time::Duration::from_secs(20), "packet 0", || {
        std::fs::metadata(&data)
            .map(|m| m.len() == 4096)
            .unwrap_or(false)
    })?;
    drop(c);
    drop(d);
    ensure!(relay.stop()? == 0);
    let file = relay
        .out
        .join("h/old-20261123-062223/kernel/index/chan_0.idx");
    let b = std::fs::read(&file).map_err(|e| {
        anyhow::anyhow!(
            "{e}: {:?}\n{}",
            trelay_integration::files_under(&relay.out),
            relay.log_tail()
        )
    })?;
    ensure!(b.len() as u64 == 16 + entry_len, "{} bytes", b.len());
    ensure!(b[8..12] == index_minor.to_be_bytes() && b[12..16] == (entry_len as u32).to_be_bytes());
    Ok(())
}

#[test]
fn lttng_2_8_sender_gets_index_v1_1() -> Result<()> {
    old_sender(8, 1, 72)
}

#[test]
fn lttng_2_4_sender_gets_index_v1_0() -> Result<()> {
    old_sender(4, 0, 56)
}

#[test]
fn reset_metadata_truncates_and_refuses_live() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let relay = Trelayd::start(tmp.path(), &[])?;
    let mut c = Control::connect(relay.ports.control)?;
    c.handshake()?;
    ensure!(
        c.create_session(&client::create_session_payload("meta", "h", "", 0))?
            .1
            == OK
    );
    ensure!(c.create_chunk(0, None)? == OK);
    let (m, _) = c.add_stream("metadata", "ust")?;
    metadata(&mut c, m, b"/* CTF 1.8 */ first", 13)?;
    let file = relay.out.join("h/meta-20261123-062223/ust/metadata");
    let mut reset = m.to_be_bytes().to_vec();
    reset.extend_from_slice(&1u64.to_be_bytes());
    ensure!(c.status(17, &reset)? == OK);
    metadata(&mut c, m, b"second", 2)?;
    ensure!(c.status(16, &[])? == OK, "STREAMS_SENT");
    ensure!(std::fs::read(&file)? == b"second\0\0");

    let mut l = Control::connect(relay.ports.control)?;
    l.handshake()?;
    ensure!(
        l.create_session(&client::create_session_payload("live", "h", "", 100_000))?
            .1
            == OK
    );
    ensure!(l.create_chunk(0, None)? == OK);
    let (lm, _) = l.add_stream("metadata", "ust")?;
    let mut reset = lm.to_be_bytes().to_vec();
    reset.extend_from_slice(&1u64.to_be_bytes());
    ensure!(
        l.status(17, &reset)? == 11,
        "RESET_METADATA accepted on a live session"
    );
    ensure!(l.closed_by_peer());
    Ok(())
}
