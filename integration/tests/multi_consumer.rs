//! Several consumer daemons for one sessiond session (e.g. UST 64-bit and 32-bit): each opens
//! its own relay session with the same sessiond uuid and session id. They must share one output
//! folder and one set of trace chunks: a rotation archives both consumers' traces in the same
//! chunk folder, TRACE_CHUNK_EXISTS answers for the shared chunk, and a consumer joining a
//! started session names the current chunk in CREATE_SESSION.

use anyhow::{ensure, Result};
use std::io::Write;
use trelay_integration::client::{self, Control};
use trelay_integration::relay::Trelayd;
use trelay_proto::lttng::relayd::{
    CloseCommand, CloseTraceChunk, Command, CreateSession, ProtocolMinor, RotatePosition,
    RotateStreams,
};
use trelay_proto::StreamId;

const OK: u32 = 10;

fn encode(cmd: &Command<'_>) -> Vec<u8> {
    let mut p = Vec::new();
    cmd.encode_payload(ProtocolMinor(13), &mut p);
    p
}

fn join_payload(current_chunk: Option<u64>) -> Vec<u8> {
    encode(&Command::CreateSession(CreateSession {
        session_name: "multi".into(),
        hostname: "h".into(),
        base_path: Some(String::new()),
        live_timer_us: 0,
        snapshot: false,
        name_contains_creation_time: false,
        sessiond_uuid: [9; 16],
        sessiond_session_id: 5,
        creation_time: 1_795_414_943,
        current_chunk_id: current_chunk,
        ..CreateSession::default()
    }))
}

fn exists(c: &mut Control, chunk: u64) -> Result<bool> {
    let r = c.call(21, &chunk.to_be_bytes(), 5)?;
    ensure!(r[..4] == OK.to_be_bytes());
    Ok(r[4] == 1)
}

fn rotate(c: &mut Control, new_chunk: Option<u64>, stream: u64, psn: u64) -> Result<u32> {
    let p = encode(&Command::RotateStreams(RotateStreams {
        new_chunk_id: new_chunk,
        positions: vec![RotatePosition {
            stream_id: StreamId(stream),
            rotate_at_seq_num: psn,
        }],
    }));
    c.status(18, &p)
}

fn close_chunk(c: &mut Control, chunk: u64, cmd: Option<CloseCommand>) -> Result<String> {
    let p = encode(&Command::CloseTraceChunk(CloseTraceChunk {
        chunk_id: chunk,
        close_timestamp: 1_795_415_000,
        close_command: cmd,
    }));
    c.send(20, &p)?;
    let head = c.recv(8)?;
    ensure!(
        head[..4] == OK.to_be_bytes(),
        "CLOSE_TRACE_CHUNK failed: {head:?}"
    );
    let n = u32::from_be_bytes(head[4..8].try_into()?) as usize;
    Ok(String::from_utf8_lossy(&c.recv(n)?)
        .trim_end_matches('\0')
        .to_owned())
}

#[test]
fn consumers_share_the_session_folder_and_chunks() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let mut a = Control::connect(relay.ports.control)?;
    a.handshake()?;
    let (sa, rc, path_a) = a.create_session(&join_payload(None))?;
    ensure!(rc == OK);
    ensure!(a.create_chunk(0, None)? == OK);
    let (ha, _) = a.add_stream("chan_0", "ust/uid/0/64-bit")?;

    // The second consumer joins the started session: chunk 0 is current.
    let mut b = Control::connect(relay.ports.control)?;
    b.handshake()?;
    let (sb, rc, path_b) = b.create_session(&join_payload(Some(0)))?;
    ensure!(
        rc == OK && sa != sb && path_a == path_b,
        "{sa} {sb} {path_a} {path_b}"
    );
    let (hb, rc) = b.add_stream("chan_0", "ust/uid/0/32-bit")?;
    ensure!(rc == OK);
    // Joining with a chunk nobody created is refused.
    let mut c = Control::connect(relay.ports.control)?;
    c.handshake()?;
    ensure!(c.create_session(&join_payload(Some(77)))?.1 == 25);

    let mut d = client::data(relay.ports.data)?;
    d.write_all(&client::data_header(ha, 0, 100, 0))?;
    d.write_all(&client::packet(100))?;
    let mut d2 = client::data(relay.ports.data)?;
    d2.write_all(&client::data_header(hb, 0, 100, 0))?;
    d2.write_all(&client::packet(100))?;
    ensure!(a.status(13, &client::index_payload(ha, 0, 100, 0))? == OK);
    ensure!(b.status(13, &client::index_payload(hb, 0, 100, 0))? == OK);

    // Rotation into chunk 1 on both relay sessions, then chunk 0 is archived.
    ensure!(a.create_chunk(1, None)? == OK);
    ensure!(b.create_chunk(1, None)? == OK);
    ensure!(rotate(&mut a, Some(1), ha, 1)? == OK);
    ensure!(rotate(&mut b, Some(1), hb, 1)? == OK);
    let archived = close_chunk(&mut a, 0, Some(CloseCommand::MoveToCompleted))?;
    ensure!(
        archived.starts_with(&format!("{path_a}/archives/")),
        "{archived}"
    );
    ensure!(close_chunk(&mut b, 0, Some(CloseCommand::MoveToCompleted))? == archived);
    trelay_integration::wait_for(
        std::time::Duration::from_secs(20),
        "chunk 0 released",
        || !exists(&mut a, 0).unwrap_or(true),
    )?;
    ensure!(exists(&mut b, 1)?, "the current chunk must exist");
    let arch = relay.out.join(&archived);
    for bits in ["64", "32"] {
        let idx = arch.join(format!("ust/uid/0/{bits}-bit/index/chan_0.idx"));
        ensure!(
            std::fs::metadata(&idx)?.len() == 16 + 72,
            "{} incomplete",
            idx.display()
        );
    }
    ensure!(relay.stop()? == 0);
    Ok(())
}
