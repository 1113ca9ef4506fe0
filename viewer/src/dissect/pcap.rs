//! Reading a pcap capture and reassembling the TCP byte streams of the relay ports.
//!
//! Supported: classic pcap files of either byte order, micro- or nanosecond timestamps; link
//! types null/loopback (0), Ethernet (1), raw IP (101) and Linux cooked (113); IPv4 and IPv6
//! (without extension headers). Each TCP connection touching a relay port is split into its
//! client → relay and relay → client byte streams, ordered by sequence number; retransmitted
//! bytes are skipped, and a hole in a stream (a segment the capture missed) is an error.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DissectError;

/// One TCP connection to a relay port, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The client's address.
    pub client: (IpAddr, u16),
    /// The relay's address; its port says which protocol is spoken.
    pub server: (IpAddr, u16),
    /// Bytes the client sent, in order.
    pub client_bytes: Vec<u8>,
    /// Bytes the relay sent, in order.
    pub server_bytes: Vec<u8>,
    /// Segments skipped as retransmissions (both directions).
    pub retransmissions: u64,
}

/// A TCP segment extracted from one captured frame.
struct Segment<'a> {
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    seq: u32,
    syn: bool,
    payload: &'a [u8],
}

/// One direction of a connection while segments are collected.
#[derive(Default)]
struct HalfStream {
    /// Sequence number of the first payload byte (ISN + 1 once the SYN is seen).
    base: Option<u32>,
    /// Highest stream offset seen so far (to unwrap 32-bit sequence numbers).
    high: u64,
    /// (stream offset, payload) in capture order.
    segments: Vec<(u64, Vec<u8>)>,
}

impl HalfStream {
    fn syn(&mut self, seq: u32) {
        if self.segments.is_empty() {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    fn push(&mut self, seq: u32, payload: &[u8]) {
        let base = *self.base.get_or_insert(seq);
        let rel32 = seq.wrapping_sub(base);
        // Unwrap: the offset nearest to the highest one seen so far.
        let delta = i64::from(rel32.wrapping_sub(self.high as u32) as i32);
        let Some(off) = (self.high as i64).checked_add(delta).filter(|o| *o >= 0) else {
            return;
        };
        let off = off as u64;
        self.high = self.high.max(off);
        self.segments.push((off, payload.to_vec()));
    }

    /// Concatenates the segments: `(bytes, retransmitted segments)` or the offset of a hole.
    fn assemble(mut self) -> Result<(Vec<u8>, u64), (u64, u64)> {
        self.segments.sort_by_key(|(off, _)| *off);
        let mut out = Vec::new();
        let mut skipped = 0u64;
        for (off, seg) in self.segments {
            let have = out.len() as u64;
            if off > have {
                return Err((have, off));
            }
            let end = off.saturating_add(seg.len() as u64);
            if end <= have {
                skipped = skipped.saturating_add(1);
                continue;
            }
            let from = usize::try_from(have.saturating_sub(off)).unwrap_or(usize::MAX);
            out.extend_from_slice(seg.get(from..).unwrap_or_default());
        }
        Ok((out, skipped))
    }
}

/// Reads every connection to one of `ports` from the pcap bytes `file`, in order of first
/// appearance.
pub fn connections(file: &[u8], ports: &[u16]) -> Result<Vec<Connection>, DissectError> {
    let err = |offset: usize, what: String| DissectError {
        offset: offset as u64,
        what,
    };
    let head = file
        .get(..24)
        .ok_or_else(|| err(0, "too short for a pcap header".into()))?;
    let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let little = match magic_le {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        other => return Err(err(0, format!("not a pcap file (magic {other:#010x})"))),
    };
    let u32_at = |b: &[u8], at: usize| -> u32 {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if little {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let link = u32_at(head, 20);
    let mut order: Vec<(IpAddr, u16, IpAddr, u16)> = Vec::new();
    let mut conns: HashMap<(IpAddr, u16, IpAddr, u16), [HalfStream; 2]> = HashMap::new();
    let mut pos = 24usize;
    while pos < file.len() {
        let rec = file
            .get(pos..pos.saturating_add(16))
            .ok_or_else(|| err(pos, "truncated pcap record header".into()))?;
        let incl = u32_at(rec, 8) as usize;
        let orig = u32_at(rec, 12) as usize;
        let start = pos.saturating_add(16);
        let frame = file
            .get(start..start.saturating_add(incl))
            .ok_or_else(|| err(pos, format!("pcap record of {incl} bytes past the end")))?;
        if let Some(seg) = tcp_segment(link, frame, little).map_err(|w| err(pos, w))? {
            if incl < orig && !seg.payload.is_empty() {
                return Err(err(
                    pos,
                    format!("frame cut by the snapshot length ({incl} of {orig} bytes)"),
                ));
            }
            let (key, dir) = if ports.contains(&seg.dst.1) {
                ((seg.src.0, seg.src.1, seg.dst.0, seg.dst.1), 0)
            } else if ports.contains(&seg.src.1) {
                ((seg.dst.0, seg.dst.1, seg.src.0, seg.src.1), 1)
            } else {
                pos = start.saturating_add(incl);
                continue;
            };
            let halves = conns.entry(key).or_insert_with(|| {
                order.push(key);
                Default::default()
            });
            let half = &mut halves[dir];
            if seg.syn {
                half.syn(seg.seq);
            } else if !seg.payload.is_empty() {
                half.push(seg.seq, seg.payload);
            }
        }
        pos = start.saturating_add(incl);
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let Some([c, s]) = conns.remove(&key) else {
            continue;
        };
        let hole = |dir: &str, (have, next): (u64, u64)| {
            DissectError {
            offset: have,
            what: format!(
                "connection {}:{} -> {}:{} {dir}: bytes missing from the capture (next segment at {next})",
                key.0, key.1, key.2, key.3
            ),
        }
        };
        let (client_bytes, rc) = c.assemble().map_err(|h| hole("client", h))?;
        let (server_bytes, rs) = s.assemble().map_err(|h| hole("server", h))?;
        out.push(Connection {
            client: (key.0, key.1),
            server: (key.2, key.3),
            client_bytes,
            server_bytes,
            retransmissions: rc.saturating_add(rs),
        });
    }
    Ok(out)
}

/// The TCP segment in a frame, `None` for frames that are not TCP over IP.
fn tcp_segment(link: u32, frame: &[u8], little: bool) -> Result<Option<Segment<'_>>, String> {
    let ip = match link {
        0 => {
            let fam = frame.get(..4).ok_or("short loopback header")?;
            let fam = if little {
                u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]])
            } else {
                u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
            };
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the system.
            if !matches!(fam, 2 | 10 | 24 | 28 | 30) {
                return Ok(None);
            }
            &frame[4..]
        }
        1 => match be16(frame, 12) {
            Some(0x0800 | 0x86dd) => frame.get(14..).unwrap_or_default(),
            Some(0x8100) if matches!(be16(frame, 16), Some(0x0800 | 0x86dd)) => {
                frame.get(18..).unwrap_or_default()
            }
            _ => return Ok(None),
        },
        101 => frame,
        113 => match be16(frame, 14) {
            Some(0x0800 | 0x86dd) => frame.get(16..).unwrap_or_default(),
            _ => return Ok(None),
        },
        other => return Err(format!("unsupported pcap link type {other}")),
    };
    let Some(&v) = ip.first() else {
        return Ok(None);
    };
    let (src, dst, tcp) = match v >> 4 {
        4 => {
            let ihl = usize::from(v & 0x0f) * 4;
            let total = usize::from(be16(ip, 2).ok_or("short IPv4 header")?);
            if ip.get(9) != Some(&6) || ihl < 20 {
                return Ok(None);
            }
            let frag = be16(ip, 6).ok_or("short IPv4 header")?;
            if frag & 0x3fff != 0 {
                return Err("fragmented IPv4 packet (not supported)".into());
            }
            let a = |at: usize| -> Option<IpAddr> {
                let b = ip.get(at..at + 4)?;
                Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            };
            let tcp = ip.get(ihl..total.min(ip.len())).ok_or("bad IPv4 lengths")?;
            (a(12).ok_or("short IPv4")?, a(16).ok_or("short IPv4")?, tcp)
        }
        6 => {
            if ip.get(6) != Some(&6) {
                return Ok(None);
            }
            let plen = usize::from(be16(ip, 4).ok_or("short IPv6 header")?);
            let a = |at: usize| -> Option<IpAddr> {
                let b: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            };
            let end = 40usize.saturating_add(plen).min(ip.len());
            let tcp = ip.get(40..end).ok_or("bad IPv6 lengths")?;
            (a(8).ok_or("short IPv6")?, a(24).ok_or("short IPv6")?, tcp)
        }
        _ => return Ok(None),
    };
    let sport = be16(tcp, 0).ok_or("short TCP header")?;
    let dport = be16(tcp, 2).ok_or("short TCP header")?;
    let seq = tcp
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or("short TCP header")?;
    let off = usize::from(tcp.get(12).ok_or("short TCP header")? >> 4) * 4;
    let flags = *tcp.get(13).ok_or("short TCP header")?;
    let payload = tcp.get(off..).ok_or("TCP data offset past the segment")?;
    Ok(Some(Segment {
        src: (src, sport),
        dst: (dst, dport),
        seq,
        syn: flags & 0x02 != 0,
        payload,
    }))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let w = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([w[0], w[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(h: &mut HalfStream, seq: u32, data: &[u8]) {
        h.push(seq, data);
    }

    #[test]
    fn reassembles_out_of_order_and_skips_retransmissions() {
        let mut h = HalfStream::default();
        h.syn(99);
        seg(&mut h, 103, b"def");
        seg(&mut h, 100, b"abc");
        seg(&mut h, 100, b"abc");
        seg(&mut h, 104, b"efg");
        let (bytes, skipped) = h.assemble().unwrap();
        assert_eq!(bytes, b"abcdefg");
        assert_eq!(skipped, 1);
    }

    #[test]
    fn a_hole_is_reported() {
        let mut h = HalfStream::default();
        h.syn(0);
        seg(&mut h, 1, b"ab");
        seg(&mut h, 5, b"cd");
        assert_eq!(h.assemble().unwrap_err(), (2, 4));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut h = HalfStream::default();
        h.syn(u32::MAX - 2);
        seg(&mut h, u32::MAX - 1, b"ab");
        seg(&mut h, 0, b"cd");
        assert_eq!(h.assemble().unwrap().0, b"abcd");
    }

    #[test]
    fn rejects_non_pcap() {
        assert!(connections(b"hello world, this is not a capture", &[5342]).is_err());
    }
}
