//! Index entries checked against the packets they describe, on both protocols: a SEND_INDEX
//! whose sizes disagree with the packet received on the data port, and a trelay:// batch whose
//! index `packet_size` is larger than the bytes it carries, are refused with an error status,
//! counted (`trelay_invalid_index_total`) and logged; no index entry on disk ever points past
//! the end of its data file, and the rest of the session is kept.

use anyhow::{ensure, Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use trelay_integration::client::{self, Control};
use trelay_integration::relay::Trelayd;
use trelay_proto::ctf::index::{IndexEntry, IndexHeader, HEADER_LEN};
use trelay_proto::trelay::frame::{self, Kind, DATA_FOLLOWS, END};
use trelay_proto::trelay::hello::{self, Hello};
use trelay_proto::trelay::message::{
    AckLevel, AddStream, ErrorFrame, IndexFields, Message, Open, PacketMeta, Packets,
};
use trelay_proto::trelay::MAGIC;
use trelay_proto::Decoded;

const OK: u32 = 10;

/// Every entry of every index file under `dir`, with the length of its data file.
fn entries(dir: &Path) -> Result<Vec<(IndexEntry, u64)>> {
    let mut all = Vec::new();
    for f in trelay_integration::files_under(dir) {
        let f = dir.join(f);
        if f.extension().is_none_or(|e| e != "idx") {
            continue;
        }
        let name = f.file_stem().context("stem")?.to_owned();
        let data = f.parent().and_then(Path::parent).context("dir")?.join(name);
        let data_len = std::fs::metadata(&data)
            .with_context(|| format!("{}", data.display()))?
            .len();
        let bytes = std::fs::read(&f)?;
        let Ok(Decoded::Done { msg: header, .. }) = IndexHeader::decode(&bytes) else {
            anyhow::bail!("bad index header in {}", f.display());
        };
        let mut rest = bytes.get(HEADER_LEN..).unwrap_or_default();
        while let Decoded::Done { msg, used } = IndexEntry::decode(&header, rest) {
            all.push((msg, data_len));
            rest = &rest[used..];
        }
    }
    Ok(all)
}

/// No entry points past (or short of) the end of its data file.
fn within_data(dir: &Path) -> Result<usize> {
    let all = entries(dir)?;
    for (e, len) in &all {
        ensure!(
            e.offset + e.packet_size / 8 <= *len,
            "index entry at {} of {} bits past the data file's {len} bytes",
            e.offset,
            e.packet_size
        );
    }
    Ok(all.len())
}

/// Waits until the relay has received `n` data packets (the data half is in).
fn received(relay: &Trelayd, n: u32) -> Result<()> {
    trelay_integration::wait_for(Duration::from_secs(10), "the data packet", || {
        relay.metrics_text().lines().any(|l| {
            l.starts_with("trelay_received_packets_total{")
                && l.trim_end().ends_with(&format!(" {n}"))
        })
    })
}

#[test]
fn a_send_index_whose_sizes_disagree_with_its_packet_is_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &["--metrics-addr", "127.0.0.1:0"])?;
    let mut c = Control::connect(relay.ports.control)?;
    c.handshake()?;
    let (_, rc, _) = c.create_session(&client::create_session_payload("sizes", "h", "", 0))?;
    ensure!(rc == OK);
    ensure!(c.create_chunk(0, None)? == OK);
    let (h, rc) = c.add_stream("chan_0", "ust/uid/0/64-bit")?;
    ensure!(rc == OK);
    ensure!(c.status(16, &[])? == OK);
    let mut d = client::data(relay.ports.data)?;
    // Packet 0: 1,024 bytes received, an index saying 4,096.
    d.write_all(&client::data_header(h, 0, 1000, 24))?;
    d.write_all(&client::packet(1000))?;
    // The data half must be in before the index comes (it is on another socket).
    received(&relay, 1)?;
    let rc = c.status(13, &client::index_payload(h, 0, 4096, 0))?;
    ensure!(rc != OK, "a SEND_INDEX past its packet was accepted");
    // Packet 1: a content size larger than the packet.
    d.write_all(&client::data_header(h, 1, 1000, 24))?;
    d.write_all(&client::packet(1000))?;
    received(&relay, 2)?;
    let mut bad = client::index_payload(h, 1, 1024, 1);
    bad[24..32].copy_from_slice(&(2048u64 * 8).to_be_bytes());
    ensure!(
        c.status(13, &bad)? != OK,
        "content_size past packet_size accepted"
    );
    // The connection and the session go on: packet 2 is indexed.
    d.write_all(&client::data_header(h, 2, 1000, 24))?;
    d.write_all(&client::packet(1000))?;
    received(&relay, 3)?;
    ensure!(c.status(13, &client::index_payload(h, 2, 1024, 2))? == OK);
    let mut close = h.to_be_bytes().to_vec();
    close.extend_from_slice(&2u64.to_be_bytes());
    ensure!(c.status(7, &close)? == OK);
    trelay_integration::wait_for(Duration::from_secs(10), "the refusals counted", || {
        relay
            .metrics_text()
            .lines()
            .any(|l| l.starts_with("trelay_invalid_index_total{") && l.trim_end().ends_with(" 2"))
    })
    .with_context(|| relay.metrics_text())?;
    drop((c, d));
    relay.stop_ok()?;
    ensure!(relay.log_text().contains("index entry refused"));
    let n = within_data(&relay.out)?;
    ensure!(n == 1, "{n} index entries, expected packet 2's only");
    Ok(())
}

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

/// Reads one frame.
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

fn packet(seq: u64, content: u32, padding: u32, packet_bytes: u64) -> PacketMeta {
    PacketMeta {
        seq,
        content,
        padding,
        index: Some(IndexFields {
            packet_size_bits: packet_bytes * 8,
            content_size_bits: u64::from(content) * 8,
            timestamp_begin: 1000 + seq,
            timestamp_end: 2000 + seq,
            stream_instance_id: 0,
            packet_seq_num: seq,
            ..IndexFields::default()
        }),
    }
}

/// Opens (or resumes) the session and its stream 0 on a new connection.
fn connect(port: u16) -> Result<TcpStream> {
    let mut s = greet(TcpStream::connect(("127.0.0.1", port))?)?;
    send(
        &mut s,
        &Message::Open(Open {
            session: [5u8; 16],
            name: "sizes".into(),
            hostname: "h".into(),
            live_timer_us: 0,
            creation_time: 1_795_414_943,
            ack: AckLevel::Committed,
        }),
    )?;
    ensure!(recv(&mut s)?.0 == Kind::Header);
    send(
        &mut s,
        &Message::AddStream(AddStream {
            stream: 0,
            channel: "chan_0".into(),
            path: "ust/uid/0/64-bit".into(),
            tracefile_size: 0,
            tracefile_count: 0,
        }),
    )?;
    ensure!(recv(&mut s)?.0 == Kind::Header);
    Ok(s)
}

fn batch(s: &mut TcpStream, p: PacketMeta) -> Result<()> {
    let m = Message::Packets(Packets {
        stream: 0,
        packets: vec![p],
    });
    let mut b = Vec::new();
    frame::encode(Kind::Header, DATA_FOLLOWS, &m.to_bytes()?, &mut b);
    frame::encode(Kind::Data, END, &client::packet(p.content as usize), &mut b);
    s.write_all(&b)?;
    Ok(())
}

#[test]
fn a_trelay_batch_whose_index_is_past_its_bytes_is_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &["--metrics-addr", "127.0.0.1:0"])?;
    let port = relay.ports.control;
    let mut s = connect(port)?;
    // Packet 0 carries 2,048 bytes (2,000 + 48 of padding); its index says 8,192.
    batch(&mut s, packet(0, 2000, 48, 8192))?;
    send(&mut s, &Message::Commit)?;
    let (kind, payload) = recv(&mut s)?;
    ensure!(
        kind == Kind::Error,
        "a batch whose index is past its bytes was accepted ({kind:?})"
    );
    let e = ErrorFrame::decode(&payload)?;
    ensure!(e.code == ErrorFrame::REFUSED, "{}", e.message);
    // The sender comes back with the packet described right: it is kept.
    let mut s = connect(port)?;
    batch(&mut s, packet(0, 2000, 48, 2048))?;
    send(&mut s, &Message::Commit)?;
    let (kind, _) = recv(&mut s)?;
    ensure!(kind == Kind::Ack, "the corrected batch: {kind:?}");
    trelay_integration::wait_for(Duration::from_secs(10), "the refusal counted", || {
        relay
            .metrics_text()
            .lines()
            .any(|l| l.starts_with("trelay_invalid_index_total{") && l.trim_end().ends_with(" 1"))
    })
    .with_context(|| relay.metrics_text())?;
    send(
        &mut s,
        &Message::CloseStream {
            stream: 0,
            last_seq: Some(0),
        },
    )?;
    send(&mut s, &Message::Close)?;
    let _ = recv(&mut s);
    drop(s);
    relay.stop_ok()?;
    ensure!(relay.log_text().contains("index entry refused"));
    let n = within_data(&relay.out)?;
    ensure!(n == 1, "{n} index entries, expected 1");
    Ok(())
}
