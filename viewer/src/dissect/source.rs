//! What `trelay-viewer dissect FILE` reads: a pcap capture, or the bytes one side of one
//! connection sent (`PORT-N.client` / `PORT-N.server`, or any name with `--port` and
//! `--direction`). For a byte file, the opposite direction is read from `--peer` or the sibling
//! file (`.client` ↔ `.server`) when present: replies need the requests to be decoded.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{dissect, pcap, Direction, Dissection, Protocol, RELAY_PORTS};

/// How to read a byte file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The relay port of the connection (default: from the file name).
    pub port: Option<u16>,
    /// Which side sent the file's bytes (default: from the file name).
    pub direction: Option<Direction>,
    /// The opposite direction's bytes (default: the sibling file, if any).
    pub peer: Option<PathBuf>,
}

/// One connection's dissection, with what to print of it.
#[derive(Debug, Clone)]
pub struct Section {
    /// Describes the connection.
    pub label: String,
    /// Its protocol.
    pub proto: Protocol,
    /// The decoded messages and problems.
    pub dissection: Dissection,
    /// Print only this side's messages (`None`: both).
    pub only: Option<Direction>,
}

/// Reads and dissects `path`. `Err` is a usage problem (unreadable file, unknown port).
pub fn load(path: &Path, opts: &Options) -> Result<Vec<Section>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let is_pcap = bytes.get(..4).is_some_and(|m| {
        matches!(
            m,
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
        )
    });
    if is_pcap && opts.port.is_none() && opts.direction.is_none() {
        return from_pcap(path, &bytes);
    }
    let (name_port, name_dir) = infer(path);
    let port = opts.port.or(name_port).ok_or_else(|| {
        format!(
            "{}: cannot tell the port from the name; use --port",
            path.display()
        )
    })?;
    let proto = Protocol::from_port(port)
        .ok_or_else(|| format!("port {port} is not a relay port (5342, 5343 or 5344)"))?;
    let dir = opts.direction.or(name_dir).ok_or_else(|| {
        format!(
            "{}: cannot tell the direction from the name; use --direction",
            path.display()
        )
    })?;
    let peer_path = opts.peer.clone().or_else(|| sibling(path, dir));
    let peer = match &peer_path {
        Some(p) if opts.peer.is_some() || p.exists() => {
            Some(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        _ => None,
    };
    let (client, server) = match dir {
        Direction::Client => (Some(bytes.as_slice()), peer.as_deref()),
        Direction::Server => (peer.as_deref(), Some(bytes.as_slice())),
    };
    if dir == Direction::Server && client.is_none() && proto != Protocol::Data {
        return Err(format!(
            "{}: replies are decoded with the requests; name the client's file with --peer",
            path.display()
        ));
    }
    let mut dissection = dissect(proto, client, server);
    // Problems of the peer file are not this file's.
    dissection.errors.retain(|(d, _)| *d == dir);
    Ok(vec![Section {
        label: format!("{} ({}, {dir})", path.display(), proto.name()),
        proto,
        dissection,
        only: Some(dir),
    }])
}

fn from_pcap(path: &Path, bytes: &[u8]) -> Result<Vec<Section>, String> {
    let conns = match pcap::connections(bytes, &RELAY_PORTS) {
        Ok(c) => c,
        Err(e) => {
            return Ok(vec![Section {
                label: format!("{} (capture)", path.display()),
                proto: Protocol::Control,
                dissection: Dissection {
                    lines: Vec::new(),
                    errors: vec![(Direction::Client, e)],
                },
                only: None,
            }])
        }
    };
    Ok(conns
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let proto = Protocol::from_port(c.server.1)?;
            Some(Section {
                label: format!(
                    "connection {i}: {}:{} -> {}:{} ({}), client {} bytes, server {} bytes, {} retransmitted segments skipped",
                    c.client.0,
                    c.client.1,
                    c.server.0,
                    c.server.1,
                    proto.name(),
                    c.client_bytes.len(),
                    c.server_bytes.len(),
                    c.retransmissions
                ),
                proto,
                dissection: dissect(proto, Some(&c.client_bytes), Some(&c.server_bytes)),
                only: None,
            })
        })
        .collect())
}

/// Port and direction from a name like `5342-0.client`.
fn infer(path: &Path) -> (Option<u16>, Option<Direction>) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let port = name
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse::<u16>().ok());
    let dir = match path.extension().and_then(|e| e.to_str()) {
        Some("client") => Some(Direction::Client),
        Some("server") => Some(Direction::Server),
        _ => None,
    };
    (port, dir)
}

fn sibling(path: &Path, dir: Direction) -> Option<PathBuf> {
    let ext = path.extension()?.to_str()?;
    let other = match (ext, dir) {
        ("client", Direction::Client) => "server",
        ("server", Direction::Server) => "client",
        _ => return None,
    };
    Some(path.with_extension(other))
}

/// Prints the sections: a `#` line per connection, one line per message, and a
/// `FILE: offset N: what` line on stderr per problem. Returns whether everything decoded.
pub fn print(
    file: &Path,
    sections: &[Section],
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<bool> {
    let mut clean = true;
    let many = sections.len() > 1 || sections.first().is_some_and(|s| s.only.is_none());
    for (i, s) in sections.iter().enumerate() {
        writeln!(out, "# {}", s.label)?;
        let prefix = if many {
            format!("[{i}] {} ", s.proto.name())
        } else {
            format!("{} ", s.proto.name())
        };
        for line in &s.dissection.lines {
            if s.only.is_none_or(|d| d == line.dir) {
                writeln!(out, "{prefix}{line}")?;
            }
        }
        for (dir, e) in &s.dissection.errors {
            clean = false;
            let side = if many {
                format!("[{i}] {} {dir}", s.proto.name())
            } else {
                format!("{} {dir}", s.proto.name())
            };
            writeln!(
                err,
                "{}: offset {}: {side}: {}",
                file.display(),
                e.offset,
                e.what
            )?;
        }
    }
    Ok(clean)
}
