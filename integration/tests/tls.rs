//! trelay:// over TLS with client certificates made by the test: a sender whose certificate the
//! relay's CA signed ships a trace that lands under the certificate's name and reads back
//! identically; a sender without a client certificate, or with one from another CA, is refused.
//! The live protocol over TLS (`[tls] live_addr`): a viewer the live ACL names by its
//! certificate mirrors and tails sessions; others are refused or see nothing. `follow` and
//! `bench` speak TLS like `send`.

mod consumer_support;

use anyhow::{ensure, Result};
use consumer_support::{assert_same_output, runtime};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::path::Path;
use std::time::Duration;
use trelay_consumer::native::client::ClientTls;
use trelay_consumer::native::send::{send, NativeSendOptions};
use trelay_consumer::synth::{write_trace_dir, SynthTrace};
use trelay_consumer::url::RelayUrl;
use trelay_integration::relay::Trelayd;

/// A CA, and a certificate named `cn` (with the SANs `sans`) it signed: `(ca.pem, cert.pem,
/// key.pem)` written under `dir/tag.*`.
fn ca(dir: &Path, tag: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, format!("{tag} CA"));
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join(format!("{tag}-ca.pem")), ca.pem()).unwrap();
    ca
}

fn issue(dir: &Path, ca: &CertifiedIssuer<'_, KeyPair>, name: &str, sans: &[&str]) {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, ca).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn tls_port(dir: &Path) -> u16 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ports.json")).unwrap()).unwrap();
    v["tls"].as_u64().unwrap() as u16
}

fn opts(local: &Path, port: u16, tls: ClientTls) -> NativeSendOptions {
    let url = RelayUrl::parse(&format!("trelay://127.0.0.1:{port}")).unwrap();
    let mut o = NativeSendOptions::new(local.to_path_buf(), url);
    o.progress = false;
    o.retry_for = Duration::from_secs(2);
    o.tls = Some(tls);
    o
}

#[test]
fn mutual_tls_names_the_peer_and_refuses_strangers() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let (mut relay, port, good) = tls_relay(d)?;
    let other_ca = ca(d, "other");
    issue(d, &other_ca, "mallory", &[]);
    let t = SynthTrace::new("claimed-host", "tlstrace", 4096);
    let local = d.join("tlstrace");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 2, 40)?;
    let ca_pem = d.join("relay-ca.pem");
    let rt = runtime();

    // A certificate of the relay's CA: the trace lands under its name, whole.
    let r = rt.block_on(send(&opts(&local, port, good)))?;
    ensure!(
        r.relay_path.starts_with("edge-a/tlstrace"),
        "{}",
        r.relay_path
    );
    assert_same_output(&local, &relay.out.join(&r.relay_path))?;

    // No client certificate, or one of another CA: refused.
    let none = ClientTls::new(&ca_pem, None, None).map_err(anyhow::Error::msg)?;
    ensure!(rt.block_on(send(&opts(&local, port, none))).is_err());
    let stranger = ClientTls::new(
        &ca_pem,
        Some(&d.join("mallory.pem")),
        Some(&d.join("mallory.key")),
    )
    .map_err(anyhow::Error::msg)?;
    ensure!(rt.block_on(send(&opts(&local, port, stranger))).is_err());
    relay.stop_ok()?;
    ensure!(
        !relay.out.join("claimed-host").exists(),
        "the claimed hostname was used"
    );
    ensure!(
        relay.log_text().contains("TLS handshake refused"),
        "{}",
        relay.log_tail()
    );
    Ok(())
}

fn tls_live_port(dir: &Path) -> u16 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ports.json")).unwrap()).unwrap();
    v["tls_live"].as_u64().unwrap() as u16
}

/// The live protocol over TLS: a viewer whose certificate the relay's CA signed and the live
/// ACL names mirrors a live session over the TLS live port and gets every event; one without a
/// certificate, or with one of another CA, is refused; one whose certificate name no
/// `[[viewer]]` rule allows sees no session; the plain live port shows nothing either (the
/// only rule asks for a certificate).
#[test]
fn tls_live_port_serves_viewers_the_acl_names() -> Result<()> {
    use trelay_integration::fleet::{host_trace, ship_live};
    use trelay_viewer::live::{list_sessions, list_sessions_with, mirror, LiveOptions, ViewerTls};
    use trelay_viewer::url::LiveUrl;

    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let relay_ca = ca(d, "relay");
    issue(d, &relay_ca, "relay", &["127.0.0.1", "localhost"]);
    issue(d, &relay_ca, "viewer-ops", &[]);
    issue(d, &relay_ca, "viewer-dev", &[]);
    let other_ca = ca(d, "other");
    issue(d, &other_ca, "mallory", &[]);
    let cfg = d.join("trelay.toml");
    std::fs::write(
        &cfg,
        format!(
            "[tls]\naddr = \"127.0.0.1:0\"\nlive_addr = \"127.0.0.1:0\"\ncert = \"{0}/relay.pem\"\nkey = \"{0}/relay.key\"\nclient_ca = \"{0}/relay-ca.pem\"\n\n[[viewer]]\ncertificates = [\"viewer-ops\"]\nsessions = [\"secure*\"]\n",
            d.display()
        ),
    )?;
    let mut relay = Trelayd::start(d, &["--config", &cfg.display().to_string()])?;
    let port = tls_live_port(d);
    let ca_pem = d.join("relay-ca.pem");
    let viewer = |name: Option<&str>, ca: &Path| {
        let cert = name.map(|n| d.join(format!("{n}.pem")));
        let key = name.map(|n| d.join(format!("{n}.key")));
        ViewerTls::new(ca, cert.as_deref(), key.as_deref()).map_err(anyhow::Error::msg)
    };
    let ops = viewer(Some("viewer-ops"), &ca_pem)?;
    let relay_url: LiveUrl = format!("tls+net://127.0.0.1:{port}")
        .parse()
        .map_err(anyhow::Error::msg)?;

    let trace = host_trace(d, "host-x", "secure", 1_800_000_000, 2, 20)?;
    let sender = ship_live(&trace, "secure", relay.ports, Duration::from_secs(5));
    let mut listed = Vec::new();
    trelay_integration::wait_for(Duration::from_secs(30), "the session over TLS", || {
        listed = list_sessions_with(&relay_url, Some(&ops)).unwrap_or_default();
        !listed.is_empty()
    })?;
    ensure!(
        listed[0].url == format!("tls+net://127.0.0.1:{port}/host/host-x/secure"),
        "{}",
        listed[0].url
    );

    // Outside the ACL: nothing listed; no certificate or a stranger's: refused.
    let dev = viewer(Some("viewer-dev"), &ca_pem)?;
    ensure!(list_sessions_with(&relay_url, Some(&dev))?.is_empty());
    let plain: LiveUrl = format!("net://127.0.0.1:{}", relay.ports.live)
        .parse()
        .map_err(anyhow::Error::msg)?;
    ensure!(
        list_sessions(&plain)?.is_empty(),
        "the plain port showed it"
    );
    let none = viewer(None, &ca_pem)?;
    ensure!(list_sessions_with(&relay_url, Some(&none)).is_err());
    let stranger = viewer(Some("mallory"), &d.join("other-ca.pem"))?;
    ensure!(list_sessions_with(&relay_url, Some(&stranger)).is_err());
    let stranger = viewer(Some("mallory"), &ca_pem)?;
    ensure!(list_sessions_with(&relay_url, Some(&stranger)).is_err());

    // The ACL's viewer mirrors it all over TLS.
    let mut opts = LiveOptions::new(
        listed[0].url.parse().map_err(anyhow::Error::msg)?,
        d.join("mirror"),
    );
    opts.tls = Some(ops);
    opts.poll = Duration::from_millis(20);
    let stats = mirror(
        &opts,
        &std::sync::atomic::AtomicBool::new(false),
        |_| Ok(()),
    )?;
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    ensure!(!stats.detached && stats.packets == 40, "{stats:?}");
    let theirs = trelay_integration::normalized_events(&relay.out)?;
    let mine = trelay_integration::normalized_events(&d.join("mirror"))?;
    ensure!(
        theirs.len() as u64 == trace.events,
        "{} events",
        theirs.len()
    );
    ensure!(mine == theirs, "{} events mirrored", mine.len());

    // The same viewer tails another session over TLS: every packet, once.
    let trace2 = host_trace(
        &d.join("second"),
        "host-y",
        "secure-tail",
        1_800_000_000,
        2,
        15,
    )?;
    let mut base = LiveOptions::new(relay_url.clone(), d.join("unused"));
    base.tls = Some(viewer(Some("viewer-ops"), &ca_pem)?);
    base.poll = Duration::from_millis(20);
    base.select = Some(
        trelay_viewer::live::SessionMatch::glob("secure-tail", None).map_err(anyhow::Error::msg)?,
    );
    let multi = trelay_viewer::live::multi::MultiOptions {
        relays: vec![format!("r=tls+net://127.0.0.1:{port}")
            .parse()
            .map_err(anyhow::Error::msg)?],
        base,
        give_up: Duration::from_secs(5),
        progress: Duration::ZERO,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut tailed = 0u64;
    let report = std::thread::scope(|s| {
        let t = s.spawn(|| {
            trelay_viewer::live::multi::tail::tail_all(&multi, Default::default(), &stop, |_| {
                tailed += 1;
                Ok(())
            })
        });
        let sent = ship_live(&trace2, "secure-tail", relay.ports, Duration::from_secs(3))
            .join()
            .map_err(|_| anyhow::anyhow!("sender panicked"))?;
        sent?;
        t.join()
            .map_err(|_| anyhow::anyhow!("tail panicked"))?
            .map_err(anyhow::Error::msg)
    })?;
    ensure!(report.all_ok(), "{report:?}");
    ensure!(tailed == 30, "{tailed} packets tailed over TLS");

    relay.stop_ok()?;
    ensure!(
        relay.log_text().contains("TLS handshake refused"),
        "{}",
        relay.log_tail()
    );
    Ok(())
}

/// A relay with a `[tls]` port whose clients need a certificate of `relay-ca`; an `edge-a`
/// client certificate next to it.
fn tls_relay(d: &Path) -> Result<(Trelayd, u16, ClientTls)> {
    let relay_ca = ca(d, "relay");
    issue(d, &relay_ca, "relay", &["127.0.0.1", "localhost"]);
    issue(d, &relay_ca, "edge-a", &[]);
    let cfg = d.join("trelay.toml");
    std::fs::write(
        &cfg,
        format!(
            "[tls]\naddr = \"127.0.0.1:0\"\ncert = \"{0}/relay.pem\"\nkey = \"{0}/relay.key\"\nclient_ca = \"{0}/relay-ca.pem\"\n",
            d.display()
        ),
    )?;
    let relay = Trelayd::start(d, &["--config", &cfg.display().to_string()])?;
    let port = tls_port(d);
    let good = ClientTls::new(
        &d.join("relay-ca.pem"),
        Some(&d.join("edge-a.pem")),
        Some(&d.join("edge-a.key")),
    )
    .map_err(anyhow::Error::msg)?;
    Ok((relay, port, good))
}

#[test]
fn follow_and_bench_speak_tls() -> Result<()> {
    use trelay_consumer::bench::BenchOptions;
    use trelay_consumer::native::follow::{follow, NativeFollowOptions};
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let (mut relay, port, good) = tls_relay(d)?;
    let url = RelayUrl::parse(&format!("trelay://127.0.0.1:{port}")).unwrap();
    let t = SynthTrace::new("claimed-host", "followed", 4096);
    let local = d.join("followed");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 2, 30)?;
    let rt = runtime();

    let mut o = NativeFollowOptions::new(local.clone(), url.clone());
    o.tls = Some(good.clone());
    o.watch_session = false;
    o.idle_timeout = Some(Duration::from_millis(800));
    o.progress = false;
    o.retry_for = Duration::from_secs(2);
    let r = rt.block_on(follow(&o, std::future::pending()))?;
    ensure!(
        r.relay_path.starts_with("edge-a/followed"),
        "{}",
        r.relay_path
    );
    ensure!(r.packets == 60, "{} packets followed", r.packets);
    assert_same_output(&local, &relay.out.join(&r.relay_path))?;

    let b = BenchOptions {
        url,
        tls: Some(good),
        streams: 2,
        packet_size: 4096,
        duration: Duration::from_millis(700),
        connections: 1,
        sessions: 1,
        no_index: false,
        index_window: 0,
        relay_pid: None,
        session: "tls-bench".into(),
        hostname: "claimed-host".into(),
        label: None,
        trace_format: Default::default(),
    };
    let r = rt.block_on(trelay_consumer::native::bench::bench(&b))?;
    ensure!(r.packets > 0 && r.bytes > 0, "bench sent nothing: {r:?}");
    relay.stop_ok()?;
    let names: Vec<String> = std::fs::read_dir(relay.out.join("edge-a"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    ensure!(
        names.iter().any(|n| n.starts_with("tls-bench")),
        "bench session not under the certificate's name: {names:?}"
    );
    ensure!(
        !relay.out.join("claimed-host").exists(),
        "claimed hostname used"
    );
    Ok(())
}

/// An edge forwarding over TLS (`[forward]` with `ca`, `cert`, `key`) to a core whose `[tls]`
/// port asks for client certificates: the session lands at the core under the edge's
/// certificate name, whole.
#[test]
fn an_edge_forwards_over_mutual_tls() -> Result<()> {
    use consumer_support::{relay_url, session_dir};
    use trelay_consumer::ship::{send as ship_send, SendOptions};
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let (mut core, port, _) = tls_relay(d)?;
    let cfg = d.join("edge.toml");
    std::fs::write(
        &cfg,
        format!(
            "[forward]\nurl = \"trelay://127.0.0.1:{port}\"\nca = \"{0}/relay-ca.pem\"\ncert = \"{0}/edge-a.pem\"\nkey = \"{0}/edge-a.key\"\n",
            d.display()
        ),
    )?;
    let mut edge = Trelayd::start(&d.join("edge"), &["--config", &cfg.display().to_string()])?;
    let t = SynthTrace::new("claimed-host", "forwarded", 4096);
    let local = d.join("forwarded");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 2, 40)?;
    let mut o = SendOptions::new(local.clone(), relay_url(edge.ports));
    o.progress = false;
    let r = runtime().block_on(ship_send(&o))?;
    ensure!(r.packets == 80, "{r:?}");
    trelay_integration::wait_for(Duration::from_secs(30), "the session forwarded", || {
        edge.log_text().contains("session forwarded")
    })?;
    edge.stop_ok()?;
    core.stop_ok()?;
    assert_same_output(&local, &session_dir(&core.out, "edge-a")?)?;
    ensure!(
        !core.out.join("claimed-host").exists(),
        "the core used the claimed hostname"
    );
    Ok(())
}
