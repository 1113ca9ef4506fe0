//! A raw control/data client for hostile-input tests: builds LTTng 2.13 sender messages byte by
//! byte (wire doc §1.3, §1.4, §2.3) so tests can send both valid and malformed ones.

use anyhow::{bail, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A control connection.
#[derive(Debug)]
pub struct Control {
    /// The socket.
    pub sock: TcpStream,
}

/// Appends a NUL-terminated string.
fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// CREATE_SESSION (2.11+ layout) payload.
pub fn create_session_payload(name: &str, host: &str, base: &str, live_us: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(name.len() as u32 + 1).to_be_bytes());
    p.extend_from_slice(&(host.len() as u32 + 1).to_be_bytes());
    p.extend_from_slice(&(base.len() as u32 + 1).to_be_bytes());
    p.extend_from_slice(&live_us.to_be_bytes());
    p.push(0); // snapshot
    p.push(0); // name contains creation time
    p.extend_from_slice(&[7u8; 16]); // sessiond uuid
    p.extend_from_slice(&42u64.to_be_bytes()); // sessiond session id
    p.extend_from_slice(&1_795_414_943u64.to_be_bytes()); // creation time
    p.push(0);
    p.extend_from_slice(&0u64.to_be_bytes());
    cstr(&mut p, name);
    cstr(&mut p, host);
    cstr(&mut p, base);
    p
}

/// ADD_STREAM (2.11+ layout) payload.
pub fn add_stream_payload(channel: &str, path: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(channel.len() as u32 + 1).to_be_bytes());
    p.extend_from_slice(&(path.len() as u32 + 1).to_be_bytes());
    p.extend_from_slice(&0u64.to_be_bytes());
    p.extend_from_slice(&0u64.to_be_bytes());
    p.extend_from_slice(&0u64.to_be_bytes());
    cstr(&mut p, channel);
    cstr(&mut p, path);
    p
}

/// SEND_INDEX (80 bytes) payload.
pub fn index_payload(stream: u64, seq: u64, packet_bytes: u64, psn: u64) -> Vec<u8> {
    let mut p = Vec::new();
    for v in [
        stream,
        seq,
        packet_bytes * 8,
        packet_bytes * 8,
        1000 + seq,
        2000 + seq,
        0,
        0,
        0,
        psn,
    ] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// A data header.
pub fn data_header(stream: u64, seq: u64, size: u32, padding: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(&0u64.to_be_bytes());
    h.extend_from_slice(&stream.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&size.to_be_bytes());
    h.extend_from_slice(&padding.to_be_bytes());
    h
}

impl Control {
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
        m.extend_from_slice(&0u64.to_be_bytes());
        m.extend_from_slice(&declared.to_be_bytes());
        m.extend_from_slice(&cmd.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
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
        let mut v = Vec::new();
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(&13u32.to_be_bytes());
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
        let mut p = Vec::new();
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&1_795_414_943u64.to_be_bytes());
        match name {
            Some(n) => {
                p.extend_from_slice(&(n.len() as u32 + 1).to_be_bytes());
                cstr(&mut p, n);
            }
            None => p.extend_from_slice(&0u32.to_be_bytes()),
        }
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
