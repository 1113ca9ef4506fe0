//! A data connection writes only its own session: the streams of a session sent by its own
//! peer, and only the one session it started writing to (lttng-consumerd opens a control and a
//! data connection per session and consumer). Anything else is refused on that connection
//! only, and its close never closes a session it does not own. Loopback aliases stand for
//! machines: 127.0.0.2 is "edge-a", 127.0.0.4 "edge-b".

use anyhow::{ensure, Result};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use trelay_integration::client::{self, create_session_payload, Control};
use trelay_integration::peers::{closed_by_relay, connect_from};
use trelay_integration::relay::Trelayd;

const OK: u32 = 10;

const PEERS: &str = r#"
[[peer]]
cidr = "127.0.0.2/32"
name = "edge-a"

[[peer]]
cidr = "127.0.0.4/32"
name = "edge-b"
"#;

fn relay(dir: &Path, config: &str) -> Result<Trelayd> {
    let path = dir.join("trelay.toml");
    std::fs::write(&path, config)?;
    let p = path.display().to_string();
    Trelayd::start(dir, &["--config", &p])
}

/// A session from `src` with one stream; returns the control connection and the stream.
fn session(src: &str, port: u16, name: &str) -> Result<(Control, u64)> {
    let mut c = Control::connect_from(src, port)?;
    c.handshake()?;
    let (_, rc, _) = c.create_session(&create_session_payload(name, "h", "", 0))?;
    ensure!(rc == OK, "CREATE_SESSION {name}: {rc}");
    ensure!(c.create_chunk(0, None)? == OK);
    let (h, rc) = c.add_stream("chan_0", "ust/uid/0/64-bit")?;
    ensure!(rc == OK);
    ensure!(c.status(16, &[])? == OK);
    Ok((c, h))
}

/// Sends packet `seq` of 1,024 bytes for `stream` on `d`.
fn packet(d: &mut std::net::TcpStream, stream: u64, seq: u64) -> Result<()> {
    d.write_all(&client::data_header(stream, seq, 1000, 24))?;
    d.write_all(&client::packet(1000))?;
    Ok(())
}

/// Length of the data file of session `name`'s stream (under any host folder).
fn data_len(out: &Path, name: &str) -> u64 {
    trelay_integration::files_under(out)
        .into_iter()
        .find(|f| {
            f.to_string_lossy().contains(&format!("/{name}-")) && f.ends_with("64-bit/chan_0")
        })
        .and_then(|f| std::fs::metadata(out.join(f)).ok())
        .map_or(0, |m| m.len())
}

/// Packet `seq` is in `name`'s data file and its SEND_INDEX is accepted.
fn indexed(
    relay: &Trelayd,
    c: &mut Control,
    d: &mut std::net::TcpStream,
    h: u64,
    seq: u64,
    name: &str,
) -> Result<()> {
    packet(d, h, seq)?;
    trelay_integration::wait_for(Duration::from_secs(10), "the packet on disk", || {
        data_len(&relay.out, name) == (seq + 1) * 1024
    })?;
    let rc = c.status(13, &client::index_payload(h, seq, 1024, seq))?;
    ensure!(rc == OK, "SEND_INDEX {name} packet {seq}: {rc}");
    Ok(())
}

#[test]
fn a_peer_cannot_write_into_or_close_another_peers_session() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = relay(tmp.path(), PEERS)?;
    let (control, data) = (relay.ports.control, relay.ports.data);
    let (mut ca, ha) = session("127.0.0.2", control, "sa")?;
    let mut da = connect_from("127.0.0.2", data)?;
    indexed(&relay, &mut ca, &mut da, ha, 0, "sa")?;
    // edge-b names edge-a's stream on its data connection: refused there, nothing written.
    let (_cb, _hb) = session("127.0.0.4", control, "sb")?;
    let mut db = connect_from("127.0.0.4", data)?;
    packet(&mut db, ha, 1)?;
    ensure!(
        closed_by_relay(&mut db, Duration::from_secs(10)),
        "edge-b wrote into edge-a's stream"
    );
    drop(db);
    ensure!(data_len(&relay.out, "sa") == 1024, "edge-a's file grew");
    // Closing edge-b's data connection did not close edge-a's session: it goes on.
    indexed(&relay, &mut ca, &mut da, ha, 1, "sa")?;
    drop((ca, da));
    relay.stop_ok()?;
    ensure!(relay
        .log_text()
        .contains("belongs to a session of peer edge-a"));
    Ok(())
}

#[test]
fn without_peer_rules_a_data_connection_writes_only_the_session_it_started() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = relay(tmp.path(), "")?;
    let (control, data) = (relay.ports.control, relay.ports.data);
    let (mut c1, h1) = session("127.0.0.1", control, "s1")?;
    let mut d1 = connect_from("127.0.0.1", data)?;
    indexed(&relay, &mut c1, &mut d1, h1, 0, "s1")?;
    let (mut c2, h2) = session("127.0.0.1", control, "s2")?;
    // The second session's data connection names the first session's stream: refused, whether
    // it started writing its own session or not.
    let mut d2 = connect_from("127.0.0.1", data)?;
    packet(&mut d2, h1, 1)?;
    ensure!(
        closed_by_relay(&mut d2, Duration::from_secs(10)),
        "a second connection wrote into s1"
    );
    let mut d2 = connect_from("127.0.0.1", data)?;
    indexed(&relay, &mut c2, &mut d2, h2, 0, "s2")?;
    packet(&mut d2, h1, 1)?;
    ensure!(
        closed_by_relay(&mut d2, Duration::from_secs(10)),
        "s2's connection wrote into s1"
    );
    ensure!(data_len(&relay.out, "s1") == 1024, "s1's file grew");
    // s1 goes on over its own connection.
    indexed(&relay, &mut c1, &mut d1, h1, 1, "s1")?;
    drop((c1, d1, c2));
    relay.stop_ok()?;
    ensure!(relay
        .log_text()
        .contains("written by another data connection"));
    Ok(())
}

mod native {
    //! The same over trelay://, where a session's data travels in its own connection.

    use super::*;
    use std::io::Read;
    use std::net::TcpStream;
    use trelay_proto::trelay::frame::{self, Kind, END};
    use trelay_proto::trelay::hello::{self, Hello};
    use trelay_proto::trelay::message::{AckLevel, AddStream, ErrorFrame, Message, Open};
    use trelay_proto::trelay::MAGIC;
    use trelay_proto::Decoded;

    fn greet(mut s: TcpStream) -> Result<TcpStream> {
        let mut b = MAGIC.to_vec();
        Hello {
            version: hello::VERSION,
            max_frame: 1 << 16,
            features: 0,
        }
        .encode(&mut b);
        s.write_all(&b)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut h = [0u8; frame::HEADER_LEN + hello::LEN];
        s.read_exact(&mut h)?;
        Ok(s)
    }

    fn send(s: &mut TcpStream, m: &Message) -> Result<()> {
        let mut b = Vec::new();
        frame::encode(Kind::Header, END, &m.to_bytes()?, &mut b);
        s.write_all(&b)?;
        Ok(())
    }

    fn recv(s: &mut TcpStream) -> Result<(Kind, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(Decoded::Done { msg, .. }) = frame::decode(&buf, 1 << 20) {
                return Ok((msg.kind, msg.payload.to_vec()));
            }
            let n = s.read(&mut chunk)?;
            ensure!(n > 0, "closed by the relay");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn open(src: &str, port: u16, uuid: [u8; 16]) -> Result<TcpStream> {
        let mut s = greet(connect_from(src, port)?)?;
        send(
            &mut s,
            &Message::Open(Open {
                session: uuid,
                name: "native".into(),
                hostname: "h".into(),
                live_timer_us: 0,
                creation_time: 1_795_414_943,
                ack: AckLevel::Committed,
            }),
        )?;
        Ok(s)
    }

    #[test]
    fn a_peer_cannot_write_into_another_peers_trelay_session() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let mut relay = relay(tmp.path(), PEERS)?;
        let (control, data) = (relay.ports.control, relay.ports.data);
        let uuid = [3u8; 16];
        let mut a = open("127.0.0.2", control, uuid)?;
        ensure!(recv(&mut a)?.0 == Kind::Header);
        send(
            &mut a,
            &Message::AddStream(AddStream {
                stream: 0,
                channel: "chan_0".into(),
                path: "ust/uid/0/64-bit".into(),
                tracefile_size: 0,
                tracefile_count: 0,
            }),
        )?;
        ensure!(recv(&mut a)?.0 == Kind::Header);
        // edge-b cannot take edge-a's session over.
        let mut b = open("127.0.0.4", control, uuid)?;
        let (kind, payload) = recv(&mut b)?;
        ensure!(kind == Kind::Error, "edge-b resumed edge-a's session");
        ensure!(ErrorFrame::decode(&payload)?.code == ErrorFrame::REFUSED);
        // No LTTng data connection writes a trelay:// session's streams, not even its own
        // peer's: the only streams of this relay are the trelay:// session's.
        for id in 1..=3u64 {
            let mut d = connect_from("127.0.0.2", data)?;
            packet(&mut d, id, 0)?;
            ensure!(
                closed_by_relay(&mut d, Duration::from_secs(10)),
                "stream {id} taken"
            );
        }
        ensure!(
            data_len(&relay.out, "native") == 0,
            "the trelay:// stream was written"
        );
        // edge-a's own connection goes on.
        send(&mut a, &Message::Commit)?;
        ensure!(recv(&mut a)?.0 == Kind::Ack);
        drop(a);
        relay.stop_ok()?;
        ensure!(relay
            .log_text()
            .contains("written by another data connection"));
        Ok(())
    }
}
