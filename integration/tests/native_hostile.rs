//! Hostile trelay:// input: oversized frames, unknown kinds, data without a header, a second
//! hello, resets in the middle of a message, and resume requests for another peer's session.
//! Each gets an error frame and a closed connection (or is taken, for a reset); the relay goes
//! on serving others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use trelay_integration::client::Control;
use trelay_integration::peers::connect_from;
use trelay_integration::relay::Trelayd;
use trelay_proto::trelay::frame::{self, Kind, END};
use trelay_proto::trelay::hello::{self, Hello};
use trelay_proto::trelay::message::{AckLevel, ErrorFrame, Message, Open};
use trelay_proto::trelay::MAGIC;
use trelay_proto::Decoded;

fn greet(mut s: TcpStream) -> TcpStream {
    let mut b = MAGIC.to_vec();
    Hello {
        version: hello::VERSION,
        max_frame: 4096,
        features: 0,
    }
    .encode(&mut b);
    s.write_all(&b).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut h = [0u8; frame::HEADER_LEN + hello::LEN];
    s.read_exact(&mut h).unwrap();
    s
}

/// Reads frames until the relay closes; returns them (kind, payload).
fn drain(s: &mut TcpStream) -> Vec<(Kind, Vec<u8>)> {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let mut out = Vec::new();
    let mut rest = &all[..];
    while let Ok(Decoded::Done { msg, used }) = frame::decode(rest, 1 << 20) {
        out.push((msg.kind, msg.payload.to_vec()));
        rest = &rest[used..];
    }
    out
}

fn expect_error(s: &mut TcpStream, code: u32) -> String {
    let frames = drain(s);
    let (_, p) = frames
        .iter()
        .find(|(k, _)| *k == Kind::Error)
        .unwrap_or_else(|| panic!("no error frame in {frames:?}"));
    let e = ErrorFrame::decode(p).unwrap();
    assert_eq!(e.code, code, "{}", e.message);
    e.message
}

fn header(m: &Message) -> Vec<u8> {
    let mut b = Vec::new();
    frame::encode(Kind::Header, END, &m.to_bytes().unwrap(), &mut b);
    b
}

fn open(uuid: [u8; 16]) -> Message {
    Message::Open(Open {
        session: uuid,
        name: "hostile".into(),
        hostname: "h".into(),
        live_timer_us: 0,
        creation_time: 1_795_414_943,
        ack: AckLevel::Committed,
    })
}

#[test]
fn hostile_frames_get_an_error_and_only_their_connection_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = Trelayd::start(tmp.path(), &[]).unwrap();
    let port = relay.ports.control;
    let connect = || greet(TcpStream::connect(("127.0.0.1", port)).unwrap());

    // A frame longer than the agreed maximum: refused before it is read.
    let mut s = connect();
    let mut b = Vec::new();
    frame::encode_header(Kind::Data, 0, 64 << 20, &mut b);
    s.write_all(&b).unwrap();
    let why = expect_error(&mut s, ErrorFrame::PROTOCOL);
    assert!(why.contains("exceeds"), "{why}");

    // An unknown frame kind.
    let mut s = connect();
    s.write_all(&[42, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert!(expect_error(&mut s, ErrorFrame::PROTOCOL).contains("unknown frame kind"));

    // Data without a header, and a second hello.
    let mut s = connect();
    let mut b = Vec::new();
    frame::encode(Kind::Data, END, b"xyz", &mut b);
    s.write_all(&b).unwrap();
    expect_error(&mut s, ErrorFrame::PROTOCOL);
    let mut s = connect();
    let mut b = Vec::new();
    Hello {
        version: hello::VERSION,
        max_frame: 4096,
        features: 0,
    }
    .encode(&mut b);
    s.write_all(&b).unwrap();
    expect_error(&mut s, ErrorFrame::PROTOCOL);

    // A header that is not a message.
    let mut s = connect();
    let mut b = Vec::new();
    frame::encode(Kind::Header, END, &[0xff; 40], &mut b);
    s.write_all(&b).unwrap();
    expect_error(&mut s, ErrorFrame::PROTOCOL);

    // A reset in the middle of a message abandons it; the connection goes on.
    let mut s = connect();
    let full = open([7; 16]).to_bytes().unwrap();
    let mut b = Vec::new();
    frame::encode(Kind::Header, 0, &full[..full.len() / 2], &mut b);
    frame::encode(Kind::Reset, END, &[], &mut b);
    b.extend(header(&open([7; 16])));
    s.write_all(&b).unwrap();
    let mut got = vec![0u8; 256];
    let n = s.read(&mut got).unwrap();
    let Ok(Decoded::Done { msg, .. }) = frame::decode(&got[..n], 4096) else {
        panic!("no reply after a reset: {:?}", &got[..n])
    };
    assert_eq!(msg.kind, Kind::Header);
    assert!(matches!(
        Message::from_bytes(msg.payload).unwrap(),
        Message::Opened(_)
    ));
    drop(s);

    // Garbage right after the magic.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&[2, 1, 0, 0, 0, 0, 0, 1, 0]);
    s.write_all(&b).unwrap();
    expect_error(&mut s, ErrorFrame::PROTOCOL);

    // The stock protocol still works on the same port.
    let mut c = Control::connect(port).unwrap();
    c.handshake().unwrap();
    relay.stop_ok().unwrap();
}

#[test]
fn a_peer_cannot_resume_another_peers_session() {
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = Trelayd::start(tmp.path(), &[]).unwrap();
    let port = relay.ports.control;
    let uuid = [9u8; 16];
    let mut a = greet(connect_from("127.0.0.2", port).unwrap());
    a.write_all(&header(&open(uuid))).unwrap();
    let mut got = vec![0u8; 256];
    assert!(a.read(&mut got).unwrap() > 0);
    drop(a); // cut without Close: the session waits for its sender
    std::thread::sleep(Duration::from_millis(200));
    let mut b = greet(connect_from("127.0.0.3", port).unwrap());
    b.write_all(&header(&open(uuid))).unwrap();
    let why = expect_error(&mut b, ErrorFrame::REFUSED);
    assert!(why.contains("another peer"), "{why}");
    // Its own sender may.
    let mut a = greet(connect_from("127.0.0.2", port).unwrap());
    a.write_all(&header(&open(uuid))).unwrap();
    let n = a.read(&mut got).unwrap();
    let Ok(Decoded::Done { msg, .. }) = frame::decode(&got[..n], 4096) else {
        panic!()
    };
    let Message::Opened(o) = Message::from_bytes(msg.payload).unwrap() else {
        panic!()
    };
    assert!(o.resumed);
    drop(a);
    relay.stop_ok().unwrap();
}
