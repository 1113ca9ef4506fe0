//! `dissect`: the three LTTng relay protocols, and trelay:// on the control port, as readable
//! messages, one per line.
//!
//! Input is either a pcap capture ([`pcap`], reassembled per connection and direction by
//! [`tcp`]) or the bytes of one direction of one connection (as `pcap-streams.py` writes them:
//! `PORT-N.client` / `PORT-N.server`). Replies carry no header, so they are decoded using the
//! commands of the opposite direction: for a byte file, the sibling file of the other direction
//! is used when it exists.
//!
//! Every byte must decode: bytes that do not (unknown command, bad length, a message cut short,
//! a hole in the capture) are reported as `FILE: offset N: what` and make the run fail.

pub mod control;
pub mod data;
pub mod live;
pub mod native;
pub mod pcap;
mod replies;
pub mod tcp;

use std::path::{Path, PathBuf};

use trelay_proto::lttng::relayd::{CONTROL_PORT, DATA_PORT, LIVE_PORT};

/// A direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Side {
    /// Sent by the client (sender or viewer) to the relay.
    Client,
    /// Sent by the relay.
    Server,
}

impl Side {
    fn arrow(self) -> &'static str {
        match self {
            Side::Client => "C>",
            Side::Server => "S<",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// The protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Control (5342).
    Control,
    /// Data (5343).
    Data,
    /// Live (5344).
    Live,
}

/// Decoded messages and undecodable spots of one connection.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// `(side, offset in that side's bytes, text)`, in protocol order.
    pub lines: Vec<(Side, u64, String)>,
    /// `(side, offset, what)`.
    pub errors: Vec<(Side, u64, String)>,
}

impl Transcript {
    fn line(&mut self, side: Side, offset: u64, text: String) {
        self.lines.push((side, offset, text));
    }

    fn error(&mut self, side: Side, offset: u64, what: impl Into<String>) {
        self.errors.push((side, offset, what.into()));
    }

    /// Records that `what` at `offset` is cut short: `left` bytes where `needed` are.
    fn incomplete(&mut self, side: Side, offset: u64, what: &str, left: usize, needed: usize) {
        let text = format!("incomplete {what}: {left} bytes left, {needed} needed");
        self.error(side, offset, text);
    }
}

/// Decodes one connection of `protocol` from its two directions.
pub fn dissect_connection(
    protocol: Protocol,
    client: Option<&[u8]>,
    server: Option<&[u8]>,
) -> Transcript {
    let mut t = Transcript::default();
    match protocol {
        Protocol::Control => control::dissect(client, server, &mut t),
        Protocol::Data => data::dissect(client, server, &mut t),
        Protocol::Live => live::dissect(client, server, &mut t),
    }
    t
}

/// Options of a dissection.
#[derive(Debug, Clone)]
pub struct DissectOptions {
    /// For a byte file: its port (protocol), else inferred from the name `PORT-N.DIRECTION`.
    pub port: Option<u16>,
    /// For a byte file: its direction, else inferred from the name.
    pub direction: Option<Side>,
    /// Control port in captures.
    pub control_port: u16,
    /// Data port in captures.
    pub data_port: u16,
    /// Live port in captures.
    pub live_port: u16,
}

impl Default for DissectOptions {
    fn default() -> Self {
        DissectOptions {
            port: None,
            direction: None,
            control_port: CONTROL_PORT,
            data_port: DATA_PORT,
            live_port: LIVE_PORT,
        }
    }
}

impl DissectOptions {
    fn protocol(&self, port: u16) -> Option<Protocol> {
        if port == self.control_port {
            Some(Protocol::Control)
        } else if port == self.data_port {
            Some(Protocol::Data)
        } else if port == self.live_port {
            Some(Protocol::Live)
        } else {
            None
        }
    }
}

/// The text output of a dissection.
#[derive(Debug, Clone, Default)]
pub struct Dissection {
    /// Message lines.
    pub lines: Vec<String>,
    /// Problem lines (`FILE: offset N: what`); non-empty means some bytes did not decode.
    pub problems: Vec<String>,
    /// Messages decoded.
    pub messages: u64,
}

/// Why a file could not be dissected at all.
#[derive(Debug, thiserror::Error)]
pub enum DissectError {
    /// Reading failed.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
    /// The capture is unreadable.
    #[error("{}: {}", .0.display(), .1)]
    Pcap(PathBuf, pcap::PcapError),
    /// The port or direction of a byte file is unknown.
    #[error("{0}")]
    Usage(String),
}

/// Dissects a pcap capture or a byte file.
pub fn dissect_path(path: &Path, opts: &DissectOptions) -> Result<Dissection, DissectError> {
    let bytes = std::fs::read(path).map_err(|e| DissectError::Io(path.to_owned(), e))?;
    let magic = bytes
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes);
    let is_pcap = matches!(
        magic,
        Some(0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1)
    );
    if is_pcap && opts.port.is_none() {
        let segs = pcap::segments(&bytes).map_err(|e| DissectError::Pcap(path.to_owned(), e))?;
        return Ok(dissect_capture(&segs, opts));
    }
    dissect_byte_file(path, &bytes, opts)
}

/// Dissects the connections of a capture.
pub fn dissect_capture(segs: &[pcap::Segment], opts: &DissectOptions) -> Dissection {
    let mut out = Dissection::default();
    let conns = tcp::reassemble(segs, |p| opts.protocol(p).is_some());
    for c in &conns {
        let Some(proto) = opts.protocol(c.port) else {
            continue;
        };
        let name = format!("{}-{}", c.port, c.index);
        out.lines.push(format!(
            "# {name} {} -> {} {proto:?}: {} bytes from the client, {} from the relay",
            c.client,
            c.server,
            c.to_server.bytes.len(),
            c.to_client.bytes.len()
        ));
        for (side, dir) in [(Side::Client, &c.to_server), (Side::Server, &c.to_client)] {
            for p in &dir.problems {
                out.problems.push(format!("{name}.{}: {p}", side.suffix()));
            }
        }
        let t = dissect_connection(proto, Some(&c.to_server.bytes), Some(&c.to_client.bytes));
        render(&name, &t, None, &mut out);
    }
    if conns.is_empty() {
        out.lines
            .push("# no connection on the relay ports in this capture".to_owned());
    }
    out
}

fn render(name: &str, t: &Transcript, only: Option<Side>, out: &mut Dissection) {
    for (side, offset, text) in &t.lines {
        if only.is_none_or(|s| s == *side) {
            out.messages += 1;
            out.lines
                .push(format!("{name} {} @{offset} {text}", side.arrow()));
        }
    }
    for (side, offset, what) in &t.errors {
        if only.is_none_or(|s| s == *side) {
            out.problems
                .push(format!("{name}.{}: offset {offset}: {what}", side.suffix()));
        }
    }
}

/// `(port, connection number, direction)` from a name like `5342-0.client`.
pub fn parse_stream_name(file_name: &str) -> Option<(u16, String, Side)> {
    let (stem, dir) = file_name.rsplit_once('.')?;
    let side = match dir {
        "client" => Side::Client,
        "server" => Side::Server,
        _ => return None,
    };
    let (port, n) = stem.split_once('-')?;
    Some((port.parse().ok()?, n.to_owned(), side))
}

fn dissect_byte_file(
    path: &Path,
    bytes: &[u8],
    opts: &DissectOptions,
) -> Result<Dissection, DissectError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let inferred = parse_stream_name(&file_name);
    let port = opts.port.or(inferred.as_ref().map(|i| i.0)).ok_or_else(|| {
        DissectError::Usage(format!(
            "{}: not a pcap file, and its name does not say its port: use --port 5342|5343|5344 --direction client|server",
            path.display()
        ))
    })?;
    let side = opts
        .direction
        .or(inferred.as_ref().map(|i| i.2))
        .ok_or_else(|| {
            DissectError::Usage(format!(
                "{}: direction unknown: use --direction client|server",
                path.display()
            ))
        })?;
    let proto = match port {
        CONTROL_PORT => Protocol::Control,
        DATA_PORT => Protocol::Data,
        LIVE_PORT => Protocol::Live,
        p => opts.protocol(p).ok_or_else(|| {
            DissectError::Usage(format!("port {p} is not a relay port (5342, 5343, 5344)"))
        })?,
    };
    // The other direction, when it sits next to this file under the conventional name.
    let sibling_bytes = inferred.as_ref().and_then(|(p, n, s)| {
        let other = match s {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        let sib = path.with_file_name(format!("{p}-{n}.{}", other.suffix()));
        std::fs::read(sib).ok()
    });
    let (client, server) = match side {
        Side::Client => (Some(bytes), sibling_bytes.as_deref()),
        Side::Server => (sibling_bytes.as_deref(), Some(bytes)),
    };
    let t = dissect_connection(proto, client, server);
    let name = file_name
        .rsplit_once('.')
        .map_or(file_name.as_str(), |(stem, _)| stem)
        .to_owned();
    let mut out = Dissection::default();
    render(&name, &t, Some(side), &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert_eq!(
            parse_stream_name("5342-0.client"),
            Some((5342, "0".into(), Side::Client))
        );
        assert_eq!(
            parse_stream_name("5344-12.server"),
            Some((5344, "12".into(), Side::Server))
        );
        assert_eq!(parse_stream_name("capture.pcap"), None);
        assert_eq!(parse_stream_name("x-0.client"), None);
    }

    #[test]
    fn garbage_is_reported_at_its_offset() {
        let mut bytes = Vec::new();
        // VERSION 2.13, then an unknown command 99.
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&8u64.to_be_bytes());
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&13u32.to_be_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&0u64.to_be_bytes());
        bytes.extend_from_slice(&99u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        let t = dissect_connection(Protocol::Control, Some(&bytes), None);
        assert_eq!(t.lines.len(), 1);
        assert_eq!(t.lines[0].2, "VERSION major=2 minor=13");
        assert_eq!(t.errors.len(), 1);
        assert_eq!(t.errors[0].1, 32);
        assert!(t.errors[0].2.contains("99"), "{:?}", t.errors);
        let t = dissect_connection(Protocol::Data, Some(&[0u8; 10]), Some(b"x"));
        assert_eq!(t.errors.len(), 2);
        let header_len = trelay_proto::lttng::relayd::DATA_HEADER_LEN;
        let want = format!("incomplete data header: 10 bytes left, {header_len} needed");
        assert!(t.errors.iter().any(|e| e.2 == want), "{:?}", t.errors);
    }
}
