//! Reading TCP segments out of a classic pcap file.
//!
//! Supported: pcap (micro- and nanosecond variants, either byte order) with link types
//! Ethernet (1, with 802.1Q tags), BSD loopback (0) and OpenBSD loopback (108), Linux cooked
//! capture v1 (113) and v2 (276), raw IP (101, 12, 14, 228, 229). IPv4 (unfragmented) and IPv6
//! (TCP as the first next header). The TCP payload is bounded by the IP length, so Ethernet
//! padding is not taken for data.

use std::net::IpAddr;

/// A TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Capture time, nanoseconds since the Epoch.
    pub time_ns: u64,
    /// Record number in the file (from 1).
    pub frame: u64,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// TCP flags (FIN 0x01, SYN 0x02, RST 0x04, ...).
    pub flags: u8,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// TCP SYN flag.
pub const SYN: u8 = 0x02;
/// TCP FIN flag.
pub const FIN: u8 = 0x01;
/// TCP RST flag.
pub const RST: u8 = 0x04;

/// Why a capture could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// Not a pcap file.
    #[error("not a pcap file (magic {0:#010x}); pcapng is not supported: convert with `editcap -F pcap`")]
    BadMagic(u32),
    /// The file ends inside a record.
    #[error("frame {frame}: file ends inside the record")]
    Truncated {
        /// Record number.
        frame: u64,
    },
    /// A link type this reader does not know.
    #[error("unsupported link type {0}")]
    LinkType(u32),
    /// A TCP segment was cut by the capture's snap length.
    #[error("frame {frame}: captured {captured} of {original} bytes (snap length too small)")]
    Snapped {
        /// Record number.
        frame: u64,
        /// Bytes captured.
        captured: u32,
        /// Bytes on the wire.
        original: u32,
    },
    /// A fragmented IPv4 packet.
    #[error("frame {frame}: fragmented IPv4 packet (not supported)")]
    Fragmented {
        /// Record number.
        frame: u64,
    },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Every TCP segment of a pcap file, in file order. Frames that are not TCP over IP are
/// skipped.
pub fn segments(file: &[u8]) -> Result<Vec<Segment>, PcapError> {
    let magic = be32(file, 0).ok_or(PcapError::BadMagic(0))?;
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xd4c3_b2a1 => (true, false),
        0xa1b2_3c4d => (false, true),
        0x4d3c_b2a1 => (true, true),
        m => return Err(PcapError::BadMagic(m)),
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = file.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link = u32_at(20).ok_or(PcapError::Truncated { frame: 0 })?;
    let mut pos = 24usize;
    let mut out = Vec::new();
    let mut frame = 0u64;
    while pos < file.len() {
        frame += 1;
        let rec = (|| {
            let sec = u32_at(pos)?;
            let frac = u32_at(pos + 4)?;
            let incl = u32_at(pos + 8)?;
            let orig = u32_at(pos + 12)?;
            let start = pos.checked_add(16)?;
            let data = file.get(start..start.checked_add(incl as usize)?)?;
            Some((sec, frac, incl, orig, data))
        })();
        let Some((sec, frac, incl, orig, data)) = rec else {
            return Err(PcapError::Truncated { frame });
        };
        pos = pos + 16 + incl as usize;
        let time_ns = u64::from(sec) * 1_000_000_000
            + if nanos {
                u64::from(frac)
            } else {
                u64::from(frac) * 1000
            };
        let Some((ip, proto_hint)) = network_layer(link, data, le)? else {
            continue;
        };
        if let Some(seg) = tcp_of_ip(ip, proto_hint, frame)? {
            if incl < orig {
                return Err(PcapError::Snapped {
                    frame,
                    captured: incl,
                    original: orig,
                });
            }
            out.push(Segment {
                time_ns,
                frame,
                ..seg
            });
        }
    }
    Ok(out)
}

fn ether(ty: u16, rest: &[u8]) -> Option<(&[u8], u8)> {
    match ty {
        0x0800 => Some((rest, 4)),
        0x86dd => Some((rest, 6)),
        _ => None,
    }
}

/// The IP packet inside a link-layer frame and its version hint (4 or 6), if it carries IP.
fn network_layer(link: u32, f: &[u8], le: bool) -> Result<Option<(&[u8], u8)>, PcapError> {
    Ok(match link {
        1 => {
            let mut off = 12usize;
            let mut ty = be16(f, off);
            while matches!(ty, Some(0x8100) | Some(0x88a8)) {
                off += 4;
                ty = be16(f, off);
            }
            ty.and_then(|t| ether(t, f.get(off + 2..)?))
        }
        113 => be16(f, 14).and_then(|t| ether(t, f.get(16..)?)),
        276 => be16(f, 0).and_then(|t| ether(t, f.get(20..)?)),
        0 | 108 => {
            let fam = f
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(|b| {
                    if link == 108 {
                        u32::from_be_bytes(b)
                    } else if le {
                        u32::from_le_bytes(b)
                    } else {
                        u32::from_be_bytes(b)
                    }
                });
            match fam {
                Some(2) => f.get(4..).map(|r| (r, 4)),
                Some(24 | 28 | 30) => f.get(4..).map(|r| (r, 6)),
                _ => None,
            }
        }
        101 | 12 | 14 => f.first().and_then(|b| match b >> 4 {
            4 => Some((f, 4)),
            6 => Some((f, 6)),
            _ => None,
        }),
        228 => Some((f, 4)),
        229 => Some((f, 6)),
        other => return Err(PcapError::LinkType(other)),
    })
}

fn tcp_of_ip(ip: &[u8], version: u8, frame: u64) -> Result<Option<Segment>, PcapError> {
    let parsed = if version == 4 {
        let Some(&vihl) = ip.first() else {
            return Ok(None);
        };
        let ihl = usize::from(vihl & 0x0f) * 4;
        let (Some(total), Some(&proto), Some(frag)) = (be16(ip, 2), ip.get(9), be16(ip, 6)) else {
            return Ok(None);
        };
        if proto != 6 {
            return Ok(None);
        }
        if frag & 0x3fff != 0 {
            return Err(PcapError::Fragmented { frame });
        }
        let src = ip.get(12..16).and_then(|b| <[u8; 4]>::try_from(b).ok());
        let dst = ip.get(16..20).and_then(|b| <[u8; 4]>::try_from(b).ok());
        let tcp = ip.get(ihl..usize::from(total).min(ip.len()));
        match (src, dst, tcp) {
            (Some(s), Some(d), Some(t)) => Some((IpAddr::from(s), IpAddr::from(d), t)),
            _ => None,
        }
    } else {
        let (Some(plen), Some(&next)) = (be16(ip, 4), ip.get(6)) else {
            return Ok(None);
        };
        if next != 6 {
            return Ok(None);
        }
        let src = ip.get(8..24).and_then(|b| <[u8; 16]>::try_from(b).ok());
        let dst = ip.get(24..40).and_then(|b| <[u8; 16]>::try_from(b).ok());
        let tcp = ip.get(40..(40 + usize::from(plen)).min(ip.len()));
        match (src, dst, tcp) {
            (Some(s), Some(d), Some(t)) => Some((IpAddr::from(s), IpAddr::from(d), t)),
            _ => None,
        }
    };
    let Some((src, dst, tcp)) = parsed else {
        return Ok(None);
    };
    let (Some(sport), Some(dport), Some(seq), Some(&off), Some(&flags)) = (
        be16(tcp, 0),
        be16(tcp, 2),
        be32(tcp, 4),
        tcp.get(12),
        tcp.get(13),
    ) else {
        return Ok(None);
    };
    let Some(payload) = tcp.get(usize::from(off >> 4) * 4..) else {
        return Ok(None);
    };
    Ok(Some(Segment {
        time_ns: 0,
        frame,
        src,
        dst,
        sport,
        dport,
        seq,
        flags,
        payload: payload.to_vec(),
    }))
}
