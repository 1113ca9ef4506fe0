//! Who may send and who may read, with loopback aliases standing for different machines:
//! 127.0.0.2 is the peer "edge-a", 127.0.0.3 the peer "edge-b", 127.0.0.4 is nobody.

use anyhow::Result;
use std::path::Path;
use std::time::Duration;
use trelay_integration::client::{create_session_payload, Control};
use trelay_integration::live::LiveClient;
use trelay_integration::peers::{closed_by_relay, connect_from};
use trelay_integration::relay::Trelayd;
use trelay_proto::lttng::live::{AttachStatus, Seek};

const OK: u32 = 10;

fn relay(dir: &Path, config: &str) -> Trelayd {
    let path = dir.join("trelay.toml");
    std::fs::write(&path, config).unwrap();
    let p = path.display().to_string();
    Trelayd::start(dir, &["--config", &p]).unwrap()
}

const PEERS: &str = r#"
[[peer]]
cidr = "127.0.0.2/32"
name = "edge-a"

[[peer]]
cidr = "127.0.0.3/32"
name = "edge-b"
"#;

#[test]
fn a_peer_outside_the_allowlist_is_refused_on_every_sending_port() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = relay(tmp.path(), PEERS);
    for port in [relay.ports.control, relay.ports.data] {
        let mut s = connect_from("127.0.0.4", port)?;
        assert!(
            closed_by_relay(&mut s, Duration::from_secs(5)),
            "port {port} kept a stranger"
        );
        let mut ok = connect_from("127.0.0.2", port)?;
        assert!(!closed_by_relay(&mut ok, Duration::from_millis(300)));
    }
    let mut c = Control::connect_from("127.0.0.2", relay.ports.control)?;
    c.handshake()?;
    relay.stop_ok()?;
    let log = relay.log_text();
    assert!(log.contains("connection refused"), "{log}");
    assert!(log.contains("not_allowed"), "{log}");
    Ok(())
}

#[test]
fn a_peer_claiming_another_hostname_writes_only_under_its_own_name() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = relay(tmp.path(), PEERS);
    let mut b = Control::connect_from("127.0.0.3", relay.ports.control)?;
    b.handshake()?;
    let (_, rc, path) = b.create_session(&create_session_payload("spoof", "edge-a", "", 0))?;
    assert_eq!(rc, OK);
    assert!(path.starts_with("edge-b/spoof"), "{path}");
    assert_eq!(b.create_chunk(0, None)?, OK);
    assert_eq!(b.add_stream("chan_0", "ust/uid/0/64-bit")?.1, OK);
    let files = trelay_integration::files_under(&relay.out);
    assert!(!files.is_empty());
    for rel in &files {
        assert!(
            rel.starts_with("edge-b"),
            "{} is not under edge-b",
            rel.display()
        );
    }
    // The real edge-a gets its own name.
    let mut a = Control::connect_from("127.0.0.2", relay.ports.control)?;
    a.handshake()?;
    let (_, rc, path) = a.create_session(&create_session_payload("mine", "whatever", "", 0))?;
    assert_eq!(rc, OK);
    assert!(path.starts_with("edge-a/mine"), "{path}");
    drop((a, b));
    relay.stop_ok()?;
    assert!(relay.log_text().contains("claims another hostname"));
    Ok(())
}

#[test]
fn a_viewer_outside_the_live_acl_sees_no_session() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let acl = format!(
        "{PEERS}\n[[viewer]]\ncidr = \"127.0.0.2/32\"\npeers = [\"edge-a\"]\nsessions = [\"live-*\"]\n"
    );
    let mut relay = relay(tmp.path(), &acl);
    let mut a = Control::connect_from("127.0.0.2", relay.ports.control)?;
    a.handshake()?;
    let (id, rc, _) = a.create_session(&create_session_payload("live-1", "x", "", 1_000_000))?;
    assert_eq!(rc, OK);
    let mut a2 = Control::connect_from("127.0.0.2", relay.ports.control)?;
    a2.handshake()?;
    assert_eq!(
        a2.create_session(&create_session_payload("other", "x", "", 1_000_000))?
            .1,
        OK
    );
    let mut allowed = LiveClient::viewer_from("127.0.0.2", relay.ports.live)?;
    let names: Vec<String> = allowed
        .list()?
        .into_iter()
        .map(|s| s.session_name)
        .collect();
    assert_eq!(names, ["live-1"], "the ACL allows live-* of edge-a only");
    let mut stranger = LiveClient::viewer_from("127.0.0.4", relay.ports.live)?;
    assert!(stranger.list()?.is_empty());
    let (status, streams) = stranger.attach(trelay_proto::SessionId(id), Seek::Beginning)?;
    assert_eq!(status, AttachStatus::Unknown);
    assert!(streams.is_empty());
    drop((a, a2));
    relay.stop_ok()?;
    Ok(())
}

#[test]
fn limits_refuse_what_exceeds_them() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = relay(
        tmp.path(),
        "[limits]\nmax_connections_per_peer = 3\nmax_sessions_per_peer = 1\nhandshake_timeout_ms = 300\n",
    );
    // A control connection that says nothing is let go after the handshake deadline; an idle
    // data connection is not (a consumer's data socket is silent until tracing starts).
    let mut quiet = connect_from("127.0.0.5", relay.ports.control)?;
    let mut data = connect_from("127.0.0.5", relay.ports.data)?;
    assert!(closed_by_relay(&mut quiet, Duration::from_secs(5)));
    assert!(!closed_by_relay(&mut data, Duration::from_millis(500)));
    // One session per peer.
    let mut c = Control::connect_from("127.0.0.5", relay.ports.control)?;
    c.handshake()?;
    assert_eq!(
        c.create_session(&create_session_payload("one", "h", "", 0))?
            .1,
        OK
    );
    let mut c2 = Control::connect_from("127.0.0.5", relay.ports.control)?;
    c2.handshake()?;
    assert_ne!(
        c2.create_session(&create_session_payload("two", "h", "", 0))?
            .1,
        OK
    );
    // Three connections from 127.0.0.5 are open (data, c, c2): a fourth is refused, another
    // address is not.
    let mut fourth = connect_from("127.0.0.5", relay.ports.control)?;
    assert!(closed_by_relay(&mut fourth, Duration::from_secs(5)));
    let mut other = Control::connect_from("127.0.0.6", relay.ports.control)?;
    other.handshake()?;
    drop((c, c2, data));
    relay.stop_ok()?;
    let log = relay.log_text();
    for reason in [
        "max_connections_per_peer",
        "max_sessions_per_peer",
        "handshake_timeout_ms",
    ] {
        assert!(log.contains(reason), "{reason} not logged:\n{log}");
    }
    Ok(())
}

#[test]
fn thousands_of_idle_connections_do_not_stop_a_real_session() -> Result<()> {
    // The idle connections come from 127.0.0.10–15, 500 each (under the per-peer limit);
    // control and live ones are dropped at the handshake deadline, data ones stay.
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("limits.toml");
    std::fs::write(&config, "[limits]\nhandshake_timeout_ms = 1000\n")?;
    let config: &'static str = Box::leak(config.display().to_string().into_boxed_str());
    let mut sc = trelay_integration::scenario::Scenario::new("idle");
    sc.live = Some(200_000);
    sc.idle_connections = 3000;
    sc.trelayd_args = vec!["--config", config];
    sc.steps = vec![
        trelay_integration::scenario::Step::Run(2, 200),
        trelay_integration::scenario::Step::Sleep(1500),
        trelay_integration::scenario::Step::Run(1, 200),
    ];
    let out = trelay_integration::scenario::run(&sc)?;
    assert!(out.events.len() >= 1200, "{} events", out.events.len());
    let [control, data, live] = out.idle_closed;
    assert_eq!(
        (control, live),
        (1000, 1000),
        "idle control/live not let go"
    );
    assert_eq!(data, 0, "idle data connections are allowed to wait");
    Ok(())
}
