//! TCP stream reassembly, per connection and direction.
//!
//! Sequence numbers are taken relative to the SYN (or to the first segment seen when the
//! capture starts mid-connection) and unwrapped to 64 bits. Retransmitted bytes are dropped
//! (and compared with what was already received), out-of-order segments wait until the hole
//! before them is filled, and a hole that is never filled is reported. A SYN on a 4-tuple whose
//! previous connection was closed starts a new connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::pcap::{Segment, FIN, RST, SYN};

const ACK: u8 = 0x10;

/// One direction of a connection.
#[derive(Debug, Clone, Default)]
pub struct Direction {
    isn: Option<u32>,
    /// The reassembled bytes.
    pub bytes: Vec<u8>,
    /// Capture time (ns) of the segment that brought each run of bytes: `(offset, time)`.
    pub times: Vec<(u64, u64)>,
    pending: BTreeMap<u64, Vec<u8>>,
    /// Problems found (retransmissions that disagree, holes).
    pub problems: Vec<String>,
    /// Retransmitted segments dropped.
    pub retransmissions: u64,
    closed: bool,
}

impl Direction {
    fn add(&mut self, seg: &Segment) {
        if seg.flags & SYN != 0 {
            self.isn = Some(seg.seq.wrapping_add(1));
        }
        if seg.flags & (FIN | RST) != 0 {
            self.closed = true;
        }
        if seg.payload.is_empty() {
            return;
        }
        let isn = *self.isn.get_or_insert(seg.seq);
        let cur = self.bytes.len() as u64;
        let rel32 = seg.seq.wrapping_sub(isn);
        let delta = i64::from(rel32.wrapping_sub(cur as u32) as i32);
        let Some(start) = (cur as i64)
            .checked_add(delta)
            .and_then(|v| u64::try_from(v).ok())
        else {
            self.problems.push(format!(
                "frame {}: segment before the start of the stream",
                seg.frame
            ));
            return;
        };
        if start > cur {
            self.pending
                .entry(start)
                .or_insert_with(|| seg.payload.clone());
            return;
        }
        self.append(start, &seg.payload, seg.time_ns, seg.frame);
        while let Some((&s, _)) = self.pending.first_key_value() {
            if s > self.bytes.len() as u64 {
                break;
            }
            if let Some((s, p)) = self.pending.pop_first() {
                self.append(s, &p, seg.time_ns, seg.frame);
            }
        }
    }

    fn append(&mut self, start: u64, data: &[u8], time: u64, frame: u64) {
        let cur = self.bytes.len() as u64;
        let skip = usize::try_from(cur - start).unwrap_or(usize::MAX);
        let (old, new) = data.split_at(skip.min(data.len()));
        if !old.is_empty() {
            self.retransmissions += 1;
            let from = start as usize;
            if self.bytes.get(from..from + old.len()) != Some(old) {
                self.problems.push(format!(
                    "frame {frame}: retransmitted bytes at offset {start} differ from the first copy"
                ));
            }
        }
        if !new.is_empty() {
            self.times.push((cur, time));
            self.bytes.extend_from_slice(new);
        }
    }

    fn finish(&mut self) {
        if let Some((&s, p)) = self.pending.first_key_value() {
            self.problems.push(format!(
                "hole in the capture at offset {} ({} bytes missing before a {}-byte segment)",
                self.bytes.len(),
                s - self.bytes.len() as u64,
                p.len()
            ));
        }
    }

    /// Capture time of the byte at `offset`.
    pub fn time_at(&self, offset: u64) -> u64 {
        match self.times.partition_point(|&(o, _)| o <= offset) {
            0 => self.times.first().map_or(0, |t| t.1),
            i => self.times.get(i - 1).map_or(0, |t| t.1),
        }
    }
}

/// A reassembled connection.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The server's port (5342, 5343, 5344 or a mapped one).
    pub port: u16,
    /// Connection number among those to the same port, in order of appearance (from 0).
    pub index: usize,
    /// Client address.
    pub client: SocketAddr,
    /// Server address.
    pub server: SocketAddr,
    /// Time of the first segment, ns since the Epoch.
    pub start_ns: u64,
    /// Client to server.
    pub to_server: Direction,
    /// Server to client.
    pub to_client: Direction,
}

/// Groups `segments` into connections to a port for which `is_server_port` holds.
pub fn reassemble(segments: &[Segment], is_server_port: impl Fn(u16) -> bool) -> Vec<Connection> {
    let mut conns: Vec<Connection> = Vec::new();
    let mut open: BTreeMap<(SocketAddr, SocketAddr), usize> = BTreeMap::new();
    for seg in segments {
        let s = SocketAddr::new(seg.src, seg.sport);
        let d = SocketAddr::new(seg.dst, seg.dport);
        let pure_syn = seg.flags & SYN != 0 && seg.flags & ACK == 0;
        let (client, server, to_server) =
            if pure_syn || (is_server_port(seg.dport) && !is_server_port(seg.sport)) {
                (s, d, true)
            } else if is_server_port(seg.sport) {
                (d, s, false)
            } else if is_server_port(seg.dport) {
                (s, d, true)
            } else {
                continue;
            };
        if !is_server_port(server.port()) {
            continue;
        }
        let key = (client, server);
        let reuse = open.get(&key).copied().filter(|&i| {
            let c = conns.get(i);
            // A new SYN after both sides closed (or after data) is a new connection.
            !(pure_syn && c.is_some_and(|c| c.to_server.closed || !c.to_server.bytes.is_empty()))
        });
        let i = match reuse {
            Some(i) => i,
            None => {
                let index = conns.iter().filter(|c| c.port == server.port()).count();
                conns.push(Connection {
                    port: server.port(),
                    index,
                    client,
                    server,
                    start_ns: seg.time_ns,
                    to_server: Direction::default(),
                    to_client: Direction::default(),
                });
                open.insert(key, conns.len() - 1);
                conns.len() - 1
            }
        };
        if let Some(c) = conns.get_mut(i) {
            if to_server {
                c.to_server.add(seg);
            } else {
                c.to_client.add(seg);
            }
        }
    }
    for c in &mut conns {
        c.to_server.finish();
        c.to_client.finish();
    }
    conns
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn seg(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Segment {
        Segment {
            time_ns: u64::from(seq),
            frame: 0,
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sport,
            dport,
            seq,
            flags,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn reorders_drops_retransmissions_and_reports_holes() {
        let segs = [
            seg(40000, 5342, u32::MAX - 1, SYN, b""),
            seg(5342, 40000, 77, SYN | ACK, b""),
            seg(40000, 5342, u32::MAX, ACK, b"abc"),
            seg(40000, 5342, 5, ACK, b"ghi"), // out of order (after the wrap)
            seg(40000, 5342, 2, ACK, b"def"),
            seg(40000, 5342, 2, ACK, b"def"), // retransmission
            seg(5342, 40000, 78, ACK, b"OK"),
            seg(40000, 5342, 20, ACK, b"zz"), // hole
        ];
        let c = reassemble(&segs, |p| p == 5342);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].to_server.bytes, b"abcdefghi");
        assert_eq!(c[0].to_client.bytes, b"OK");
        assert_eq!(c[0].to_server.retransmissions, 1);
        assert_eq!(
            c[0].to_server.problems.len(),
            1,
            "{:?}",
            c[0].to_server.problems
        );
        assert!(c[0].to_server.problems[0].contains("hole"));
    }

    #[test]
    fn conflicting_retransmission_is_reported() {
        let segs = [
            seg(1, 5344, 0, SYN, b""),
            seg(1, 5344, 1, ACK, b"abcd"),
            seg(1, 5344, 3, ACK, b"XYZ"),
        ];
        let c = reassemble(&segs, |p| p == 5344);
        assert_eq!(c[0].to_server.bytes, b"abcdZ");
        assert!(c[0].to_server.problems[0].contains("differ"));
    }

    #[test]
    fn port_reuse_makes_a_new_connection() {
        let segs = [
            seg(1, 5343, 0, SYN, b""),
            seg(1, 5343, 1, ACK, b"one"),
            seg(1, 5343, 4, FIN | ACK, b""),
            seg(1, 5343, 1000, SYN, b""),
            seg(1, 5343, 1001, ACK, b"two"),
        ];
        let c = reassemble(&segs, |p| p == 5343);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].index, c[1].index), (0, 1));
        assert_eq!(c[1].to_server.bytes, b"two");
    }
}
