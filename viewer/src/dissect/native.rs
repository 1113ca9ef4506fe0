//! trelay:// on the control port (a connection whose first bytes are the trelay magic): both
//! directions are frames, decoded each on its own. Header messages are shown whole; data frames
//! by size (packet content is not decoded here).

use trelay_proto::trelay::assembler::{Assembler, Event};
use trelay_proto::trelay::frame;
use trelay_proto::trelay::message::Message;
use trelay_proto::trelay::MAGIC;
use trelay_proto::Decoded;

use super::{Side, Transcript};

/// Whether the sender's bytes start a trelay:// connection.
pub fn is_native(client: &[u8]) -> bool {
    trelay_proto::trelay::is_magic(client)
}

/// Decodes a trelay:// connection.
pub fn dissect(client: Option<&[u8]>, server: Option<&[u8]>, t: &mut Transcript) {
    if let Some(c) = client {
        t.line(Side::Client, 0, "trelay:// magic".into());
        direction(Side::Client, c, MAGIC.len(), t);
    }
    if let Some(s) = server {
        direction(Side::Server, s, 0, t);
    }
}

fn message_text(m: &Message) -> String {
    match m {
        Message::Packets(p) => {
            let bytes: u64 = p.packets.iter().map(|x| u64::from(x.content)).sum();
            match (p.packets.first(), p.packets.last()) {
                (Some(a), Some(b)) => format!(
                    "Packets stream {}: {} packet(s), seq {}..={}, {bytes} content bytes",
                    p.stream,
                    p.packets.len(),
                    a.seq,
                    b.seq
                ),
                _ => format!("Packets stream {}: none", p.stream),
            }
        }
        other => format!("{other:?}"),
    }
}

fn direction(side: Side, bytes: &[u8], start: usize, t: &mut Transcript) {
    let mut pos = start;
    let mut asm = Assembler::new();
    let mut max = frame::HELLO_MAX;
    let mut data_bytes = 0u64;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (f, used) = match frame::decode(rest, max) {
            Ok(Decoded::Done { msg, used }) => (msg, used),
            Ok(Decoded::Incomplete { needed }) => {
                t.incomplete(side, pos as u64, "frame", rest.len(), needed);
                return;
            }
            Err(e) => {
                t.error(side, pos as u64, e.to_string());
                return;
            }
        };
        match asm.feed(f) {
            Ok(Some(Event::Hello(h))) => {
                max = h.max_frame.max(frame::HELLO_MAX);
                t.line(
                    side,
                    pos as u64,
                    format!(
                        "hello v{} max_frame {} features {:#x}",
                        h.version, h.max_frame, h.features
                    ),
                );
            }
            Ok(Some(Event::Header { msg, data })) => {
                let more = if data { " (data follows)" } else { "" };
                t.line(side, pos as u64, format!("{}{more}", message_text(&msg)));
            }
            Ok(Some(Event::Data { bytes: b, end })) => {
                data_bytes += b.len() as u64;
                if end {
                    t.line(side, pos as u64, format!("data: {data_bytes} bytes"));
                    data_bytes = 0;
                }
            }
            Ok(Some(Event::Ack(a))) => t.line(
                side,
                pos as u64,
                format!("ack {:?} up to message {}", a.level, a.upto),
            ),
            Ok(Some(Event::Error(e))) => {
                t.line(side, pos as u64, format!("error {}: {}", e.code, e.message))
            }
            Ok(Some(Event::Reset)) => t.line(side, pos as u64, "reset".into()),
            Ok(None) => {}
            Err(e) => {
                t.error(side, pos as u64, e.to_string());
                return;
            }
        }
        pos += used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trelay_proto::trelay::frame::{Kind, DATA_FOLLOWS, END};
    use trelay_proto::trelay::hello::{self, Hello};
    use trelay_proto::trelay::message::{Ack, AckLevel, Open, Opened, PacketMeta, Packets};

    fn hello() -> Vec<u8> {
        let mut b = Vec::new();
        Hello {
            version: hello::VERSION,
            max_frame: 1 << 20,
            features: 0,
        }
        .encode(&mut b);
        b
    }

    #[test]
    fn a_trelay_exchange_reads_as_messages() {
        let mut c = MAGIC.to_vec();
        c.extend(hello());
        let open = Message::Open(Open {
            session: [1; 16],
            name: "s".into(),
            hostname: "h".into(),
            live_timer_us: 0,
            creation_time: 0,
            ack: AckLevel::Committed,
        });
        frame::encode(Kind::Header, END, &open.to_bytes().unwrap(), &mut c);
        let batch = Message::Packets(Packets {
            stream: 0,
            packets: (0..2)
                .map(|seq| PacketMeta {
                    seq,
                    content: 5,
                    padding: 3,
                    index: None,
                })
                .collect(),
        });
        frame::encode(
            Kind::Header,
            DATA_FOLLOWS,
            &batch.to_bytes().unwrap(),
            &mut c,
        );
        frame::encode(Kind::Data, 0, b"abcde", &mut c);
        frame::encode(Kind::Data, END, b"fghij", &mut c);
        frame::encode(
            Kind::Header,
            END,
            &Message::Commit.to_bytes().unwrap(),
            &mut c,
        );
        let mut s = hello();
        let opened = Message::Opened(Opened {
            session_id: 1,
            path: "h/s".into(),
            resumed: false,
        });
        frame::encode(Kind::Header, END, &opened.to_bytes().unwrap(), &mut s);
        let mut p = Vec::new();
        Ack {
            level: AckLevel::Committed,
            upto: 3,
        }
        .encode(&mut p);
        frame::encode(Kind::Ack, END, &p, &mut s);
        let mut t = Transcript::default();
        super::super::control::dissect(Some(&c), Some(&s), &mut t);
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        let text: Vec<&str> = t.lines.iter().map(|(_, _, l)| l.as_str()).collect();
        assert!(text.iter().any(|l| l.starts_with("Open(")), "{text:?}");
        assert!(
            text.iter()
                .any(|l| l.starts_with("Packets stream 0: 2 packet(s), seq 0..=1")),
            "{text:?}"
        );
        assert!(text.contains(&"data: 10 bytes"), "{text:?}");
        assert!(text.contains(&"Commit"), "{text:?}");
        assert!(text.iter().any(|l| l.starts_with("Opened(")), "{text:?}");
        assert!(text.contains(&"ack Committed up to message 3"), "{text:?}");
        // A frame cut short is an error, like any undecodable byte.
        let mut t = Transcript::default();
        super::super::control::dissect(Some(&c[..c.len() - 3]), None, &mut t);
        assert!(!t.errors.is_empty());
    }
}
