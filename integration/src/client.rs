//! A raw control/data client for hostile-input tests: encodes LTTng 2.13 sender messages with
//! trelay-proto's codecs and sends them as bytes, so tests can also corrupt them on purpose.

use anyhow::{bail, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use trelay_proto::lttng::relayd::{
    AddStream, Command, ControlHeader, CreateSession, CreateTraceChunk, DataHeader, ProtocolMinor,
    SendIndex, Version,
};
use trelay_proto::{NetSeq, StreamId};

/// A control connection.
#[derive(Debug)]
pub struct Control {
    /// The socket.
    pub sock: TcpStream,
}

/// The protocol minor the client speaks.
pub const MINOR: ProtocolMinor = ProtocolMinor(13);

fn payload(cmd: &Command<'_>) -> Vec<u8> {
    let mut p = Vec::new();
    cmd.encode_payload(MINOR, &mut p);
    p
}

/// CREATE_SESSION (2.11+ layout) payload.
pub fn create_session_payload(name: &str, host: &str, base: &str, live_us: u32) -> Vec<u8> {
    payload(&Command::CreateSession(CreateSession {
        session_name: name.into(),
        hostname: host.into(),
        base_path: Some(base.into()),
        live_timer_us: live_us,
        snapshot: false,
        name_contains_creation_time: false,
        sessiond_uuid: [7; 16],
        sessiond_session_id: 42,
        creation_time: 1_795_414_943,
        current_chunk_id: None,
    }))
}

/// ADD_STREAM (2.11+ layout) payload.
pub fn add_stream_payload(channel: &str, path: &str) -> Vec<u8> {
    payload(&Command::AddStream(AddStream {
        channel_name: channel.into(),
        pathname: path.into(),
        tracefile_size: 0,
        tracefile_count: 0,
        trace_chunk_id: 0,
    }))
}

/// SEND_INDEX (80 bytes) payload for a packet of `packet_bytes` bytes.
pub fn index_payload(stream: u64, seq: u64, packet_bytes: u64, psn: u64) -> Vec<u8> {
    payload(&Command::SendIndex(SendIndex {
        relay_stream_id: StreamId(stream),
        net_seq: NetSeq(seq),
        packet_size: packet_bytes * 8,
        content_size: packet_bytes * 8,
        timestamp_begin: 1000 + seq,
        timestamp_end: 2000 + seq,
        events_discarded: 0,
        stream_class_id: 0,
        stream_instance_id: 0,
        packet_seq_num: psn,
    }))
}

/// A data header.
pub fn data_header(stream: u64, seq: u64, size: u32, padding: u32) -> Vec<u8> {
    DataHeader {
        circuit_id: 0,
        stream_id: StreamId(stream),
        net_seq: NetSeq(seq),
        data_size: size,
        padding_size: padding,
    }
    .to_bytes()
    .to_vec()
}

impl Control {
    /// Connects from the loopback address `src`.
    pub fn connect_from(src: &str, port: u16) -> Result<Control> {
        Ok(Control {
            sock: crate::peers::connect_from(src, port)?,
        })
    }

    /// Connects.
    pub fn connect(port: u16) -> Result<Control> {
        let sock = TcpStream::connect(("127.0.0.1", port))?;
        sock.set_read_timeout(Some(Duration::from_secs(20)))?;
        sock.set_nodelay(true)?;
        Ok(Control { sock })
    }

    /// Sends a command with an explicit declared size.
    pub fn send_raw(&mut self, cmd: u32, declared: u64, payload: &[u8]) -> Result<()> {
        let mut m = Vec::with_capacity(24 + payload.len());
        ControlHeader {
            circuit_id: 0,
            data_size: declared,
            cmd,
            cmd_version: 0,
        }
        .encode(&mut m);
        m.extend_from_slice(payload);
        self.sock.write_all(&m)?;
        Ok(())
    }

    /// Sends a command.
    pub fn send(&mut self, cmd: u32, payload: &[u8]) -> Result<()> {
        self.send_raw(cmd, payload.len() as u64, payload)
    }

    /// Reads exactly `n` reply bytes.
    pub fn recv(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut b = vec![0; n];
        self.sock.read_exact(&mut b)?;
        Ok(b)
    }

    /// Sends and reads an `n`-byte reply.
    pub fn call(&mut self, cmd: u32, payload: &[u8], n: usize) -> Result<Vec<u8>> {
        self.send(cmd, payload)?;
        self.recv(n)
    }

    /// Whether the relay closed the connection (EOF within the timeout).
    pub fn closed_by_peer(&mut self) -> bool {
        let _ = self.sock.set_read_timeout(Some(Duration::from_secs(10)));
        let mut b = [0u8; 1];
        matches!(self.sock.read(&mut b), Ok(0) | Err(_))
    }

    /// VERSION 2.13 then GET_CONFIGURATION.
    pub fn handshake(&mut self) -> Result<()> {
        let v = payload(&Command::Version(Version {
            major: 2,
            minor: MINOR.0,
        }));
        let r = self.call(5, &v, 8)?;
        if r != v {
            bail!("VERSION reply {r:?}");
        }
        Ok(())
    }

    /// CREATE_SESSION; returns (session id, status, path).
    pub fn create_session(&mut self, payload: &[u8]) -> Result<(u64, u32, String)> {
        self.send(2, payload)?;
        let head = self.recv(16)?;
        let id = u64::from_be_bytes(head[0..8].try_into()?);
        let rc = u32::from_be_bytes(head[8..12].try_into()?);
        let n = u32::from_be_bytes(head[12..16].try_into()?) as usize;
        let path = self.recv(n)?;
        Ok((
            id,
            rc,
            String::from_utf8_lossy(&path)
                .trim_end_matches('\0')
                .to_owned(),
        ))
    }

    /// CREATE_TRACE_CHUNK with an optional override name; returns the status.
    pub fn create_chunk(&mut self, id: u64, name: Option<&str>) -> Result<u32> {
        let p = payload(&Command::CreateTraceChunk(CreateTraceChunk {
            chunk_id: id,
            creation_timestamp: 1_795_414_943,
            override_name: name.map(str::to_owned),
        }));
        let r = self.call(19, &p, 4)?;
        Ok(u32::from_be_bytes(r[..4].try_into()?))
    }

    /// ADD_STREAM; returns (handle, status).
    pub fn add_stream(&mut self, channel: &str, path: &str) -> Result<(u64, u32)> {
        let r = self.call(1, &add_stream_payload(channel, path), 12)?;
        Ok((
            u64::from_be_bytes(r[0..8].try_into()?),
            u32::from_be_bytes(r[8..12].try_into()?),
        ))
    }

    /// A generic 4-byte status reply.
    pub fn status(&mut self, cmd: u32, payload: &[u8]) -> Result<u32> {
        let r = self.call(cmd, payload, 4)?;
        Ok(u32::from_be_bytes(r[..4].try_into()?))
    }
}

/// Opens a data connection.
pub fn data(port: u16) -> Result<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// A fake CTF packet of `len` bytes (magic first, zeros after).
pub fn packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[..4].copy_from_slice(&[0xc1, 0x1f, 0xfc, 0xc1]);
    p
}
