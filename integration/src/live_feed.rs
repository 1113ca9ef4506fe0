//! A scripted live sender for the live tests: one live relay session made with the raw control
//! and data clients (no lttng-sessiond), with a metadata stream and data streams whose packets
//! and indexes the test sends one by one, so what the relay has committed is known exactly.

use crate::client::{self, Control};
use anyhow::{ensure, Result};
use std::io::Write;
use std::net::TcpStream;
use trelay_proto::lttng::relayd::{Command, ProtocolMinor, SendIndex, SendMetadata};
use trelay_proto::{NetSeq, StreamId};

const OK: u32 = 10;

/// A live session fed by hand.
#[derive(Debug)]
pub struct Feed {
    /// The control connection.
    pub control: Control,
    /// The data connection.
    pub data: TcpStream,
    /// Relay session id.
    pub session: u64,
    /// Session directory relative to the output root.
    pub dir: String,
    /// Stream handle of the metadata stream.
    pub metadata: u64,
    /// Stream handles of the data streams (`chan_0`, `chan_1`, ...).
    pub streams: Vec<u64>,
    /// Next net_seq_num per data stream.
    pub seq: Vec<u64>,
    /// Bytes written per data stream (the next packet's offset).
    pub written: Vec<u64>,
}

fn encode(cmd: &Command<'_>) -> Vec<u8> {
    let mut p = Vec::new();
    cmd.encode_payload(ProtocolMinor(13), &mut p);
    p
}

impl Feed {
    /// Creates live session `name` on host `host` with `streams` data streams (published with
    /// STREAMS_SENT) and sends `metadata` as its first metadata bytes.
    pub fn new(
        control_port: u16,
        data_port: u16,
        name: &str,
        host: &str,
        streams: usize,
        metadata: &[u8],
    ) -> Result<Feed> {
        let mut control = Control::connect(control_port)?;
        control.handshake()?;
        let (session, rc, dir) =
            control.create_session(&client::create_session_payload(name, host, "", 100_000))?;
        ensure!(rc == OK, "CREATE_SESSION {name}: {rc}");
        ensure!(control.create_chunk(0, None)? == OK, "CREATE_TRACE_CHUNK");
        let (meta, rc) = control.add_stream("metadata", "ust/uid/0/64-bit")?;
        ensure!(rc == OK, "ADD_STREAM metadata: {rc}");
        let mut handles = Vec::new();
        for i in 0..streams {
            let (h, rc) = control.add_stream(&format!("chan_{i}"), "ust/uid/0/64-bit")?;
            ensure!(rc == OK, "ADD_STREAM chan_{i}: {rc}");
            handles.push(h);
        }
        let data = client::data(data_port)?;
        let mut feed = Feed {
            control,
            data,
            session,
            dir,
            metadata: meta,
            seq: vec![0; handles.len()],
            written: vec![0; handles.len()],
            streams: handles,
        };
        feed.send_metadata(metadata)?;
        ensure!(feed.control.status(16, &[])? == OK, "STREAMS_SENT");
        Ok(feed)
    }

    /// SEND_METADATA (no reply).
    pub fn send_metadata(&mut self, bytes: &[u8]) -> Result<()> {
        let p = encode(&Command::SendMetadata(SendMetadata {
            stream_id: StreamId(self.metadata),
            padding_size: 0,
            data: bytes,
        }));
        self.control.send(6, &p)
    }

    /// Sends one packet of `len` bytes (magic, then `fill`) on data stream `i`, then its index;
    /// returns its offset in the data file.
    pub fn packet(&mut self, i: usize, len: u32, fill: u8) -> Result<u64> {
        let h = self.streams[i];
        let seq = self.seq[i];
        let mut p = vec![fill; len as usize];
        p[..4].copy_from_slice(&[0xc1, 0x1f, 0xfc, 0xc1]);
        self.data.write_all(&client::data_header(h, seq, len, 0))?;
        self.data.write_all(&p)?;
        let offset = self.written[i];
        let idx = encode(&Command::SendIndex(SendIndex {
            relay_stream_id: StreamId(h),
            net_seq: NetSeq(seq),
            packet_size: u64::from(len) * 8,
            content_size: u64::from(len) * 8,
            timestamp_begin: 1000 + seq * 10,
            timestamp_end: 1005 + seq * 10,
            events_discarded: 0,
            stream_class_id: 0,
            stream_instance_id: i as u64,
            packet_seq_num: seq,
        }));
        let rc = self.control.status(13, &idx)?;
        ensure!(rc == OK, "SEND_INDEX: {rc}");
        self.seq[i] += 1;
        self.written[i] += u64::from(len);
        Ok(offset)
    }

    /// Sends a live beacon (an index with packet size 0) for data stream `i`.
    pub fn beacon(&mut self, i: usize, timestamp_end: u64) -> Result<()> {
        let idx = encode(&Command::SendIndex(SendIndex {
            relay_stream_id: StreamId(self.streams[i]),
            net_seq: NetSeq(u64::MAX),
            packet_size: 0,
            content_size: 0,
            timestamp_begin: 0,
            timestamp_end,
            events_discarded: 0,
            stream_class_id: 0,
            stream_instance_id: i as u64,
            packet_seq_num: 0,
        }));
        let rc = self.control.status(13, &idx)?;
        ensure!(rc == OK, "beacon: {rc}");
        Ok(())
    }

    /// Adds a data stream (published with STREAMS_SENT); returns its index in `streams`.
    pub fn add_stream(&mut self) -> Result<usize> {
        let i = self.streams.len();
        let (h, rc) = self
            .control
            .add_stream(&format!("chan_{i}"), "ust/uid/0/64-bit")?;
        ensure!(rc == OK, "ADD_STREAM chan_{i}: {rc}");
        ensure!(self.control.status(16, &[])? == OK, "STREAMS_SENT");
        self.streams.push(h);
        self.seq.push(0);
        self.written.push(0);
        Ok(i)
    }

    /// CLOSE_STREAM for every data stream and the metadata stream, then both connections close
    /// (what `lttng destroy` ends with).
    pub fn close(mut self) -> Result<()> {
        for (i, h) in self.streams.clone().into_iter().enumerate() {
            let mut p = h.to_be_bytes().to_vec();
            p.extend_from_slice(&self.seq[i].saturating_sub(1).to_be_bytes());
            ensure!(self.control.status(7, &p)? == OK, "CLOSE_STREAM");
        }
        let mut p = self.metadata.to_be_bytes().to_vec();
        p.extend_from_slice(&0u64.to_be_bytes());
        ensure!(self.control.status(7, &p)? == OK, "CLOSE_STREAM metadata");
        Ok(())
    }
}
