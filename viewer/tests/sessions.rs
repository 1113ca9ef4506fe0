//! `sessions` against a relay that answers with the recorded lttng-relayd replies of the
//! fixture (CONNECT, then LIST_SESSIONS), and the viewer's own requests checked byte for byte
//! against what babeltrace2 sent.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use support::*;

#[test]
fn sessions_lists_what_the_relay_answers() {
    let server = std::fs::read(fixture().join("streams/5344-0.server")).unwrap();
    let client = std::fs::read(fixture().join("streams/5344-0.client")).unwrap();
    // Recorded: CONNECT reply [0, 20), CREATE_SESSION reply [20, 24), LIST_SESSIONS [24, 367).
    let connect_reply = server[0..20].to_vec();
    let list_reply = server[24..367].to_vec();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // babeltrace2 2.0 announced live minor 4; the viewer announces 15 (offset 28: after the
    // 16-byte command header, the viewer session id and the major).
    let mut expected_connect = client[0..36].to_vec();
    assert_eq!(expected_connect[28..32], 4u32.to_be_bytes());
    expected_connect[28..32].copy_from_slice(&15u32.to_be_bytes());
    let expected_list = client[52..68].to_vec();
    let relay = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 36];
            s.read_exact(&mut req).unwrap();
            // The viewer's CONNECT, except its minor, is babeltrace2's.
            assert_eq!(req.to_vec(), expected_connect);
            s.write_all(&connect_reply).unwrap();
            let mut req = [0u8; 16];
            s.read_exact(&mut req).unwrap();
            assert_eq!(req.to_vec(), expected_list);
            s.write_all(&list_reply).unwrap();
        }
    });
    let url = format!("net://127.0.0.1:{port}");
    let o = viewer(&["sessions", &url]);
    assert_exit_0(&o, "sessions");
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("ID  HOST  NAME    STREAMS  CLIENTS  LIVE TIMER"),
        "{text}"
    );
    assert_eq!(
        lines[1],
        format!(
            "1   vm    fx3754  0        0        200000 us   CTF 1.8  net://127.0.0.1:{port}/host/vm/fx3754"
        )
    );
    let o = viewer(&["sessions", &url, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["name"], "fx3754");
    assert_eq!(v[0]["hostname"], "vm");
    assert_eq!(v[0]["live_timer_us"], 200000);
    assert_eq!(v[0]["trace_format"], "ctf-1.8");
    relay.join().unwrap();
}

#[test]
fn sessions_usage_and_connection_errors() {
    assert_eq!(viewer(&["sessions", "tcp://x"]).status.code(), Some(2));
    assert_eq!(
        viewer(&["sessions", "net://localhost/host/a/b"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        viewer(&["live", "net://localhost", "-o", "/tmp/x"])
            .status
            .code(),
        Some(2)
    );
    // Several relays: names must differ and be one path component; TLS needs --ca; relay URLs
    // need --session.
    for args in [
        &["tail", "a=net://h1/host/x/s", "a=net://h2/host/x/s"][..],
        &["tail", "../a=net://h1/host/x/s"],
        &["tail", "tls+net://h1/host/x/s", "net://h2/host/x/s"],
        &["tail", "net://h1", "net://h2"],
        &[
            "live", "net://h1", "net://h2", "-o", "/tmp/x", "--host", "x",
        ],
        &[
            "sessions",
            "tls+net://h1",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
        ],
        &["tail", "net://h1", "net://h2", "--session", "["],
    ] {
        assert_eq!(viewer(args).status.code(), Some(2), "{args:?}");
    }
    // Nothing listens on this port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = viewer(&["sessions", &format!("net://127.0.0.1:{port}")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect"));
    // A multi-relay tail whose relays are all down: each retried, given up and reported; exit 1.
    let o = viewer(&[
        "tail",
        &format!("a=net://127.0.0.1:{port}"),
        &format!("b=net://127.0.0.1:{port}"),
        "--session",
        "s",
        "--give-up",
        "0.5",
        "--progress",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for r in ["relay a (", "relay b ("] {
        assert!(err.contains(r) && err.contains("failed"), "{err}");
    }
}
