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
        ..CreateSession::default()
    }))
}

/// CREATE_SESSION payload in the 2.15 layout, with the trace format.
pub fn create_session_2_15_payload(
    name: &str,
    host: &str,
    live_us: u32,
    format: trelay_proto::TraceFormat,
) -> Vec<u8> {
    let mut p = Vec::new();
    Command::CreateSession(CreateSession {
        session_name: name.into(),
        hostname: host.into(),
        base_path: Some(String::new()),
        live_timer_us: live_us,
        sessiond_uuid: [8; 16],
        sessiond_session_id: 43,
        creation_time: 1_795_414_943,
        trace_format: format,
        ..CreateSession::default()
    })
    .encode_payload(ProtocolMinor(15), &mut p);
    p
}

/// A CREATE_SESSION 2.15 payload written field by field, lengths and trace format as given
/// (for hostile tests): `lens` are the declared session name, hostname and base path lengths,
/// `names` the bytes that follow the trace format.
pub fn create_session_2_15_raw(lens: [u32; 3], live_us: u32, format: u32, names: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for l in lens {
        p.extend_from_slice(&l.to_be_bytes());
    }
    p.extend_from_slice(&live_us.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&[9; 16]);
    p.extend_from_slice(&44u64.to_be_bytes());
    p.extend_from_slice(&1_795_414_943u64.to_be_bytes());
    p.extend_from_slice(&[0; 9]);
    p.extend_from_slice(&format.to_be_bytes());
    p.extend_from_slice(names);
    p
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

    /// VERSION 2.13; the relay must answer with its own version, 2.15.
    pub fn handshake(&mut self) -> Result<()> {
        self.handshake_at(MINOR.0)
    }

    /// VERSION 2.`minor`; the relay must answer with its own version, 2.15.
    pub fn handshake_at(&mut self, minor: u32) -> Result<()> {
        let v = payload(&Command::Version(Version { major: 2, minor }));
        let r = self.call(5, &v, 8)?;
        let relay = payload(&Command::Version(Version {
            major: 2,
            minor: trelay_proto::lttng::relayd::RELAYD_MINOR,
        }));
        if r != relay {
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
