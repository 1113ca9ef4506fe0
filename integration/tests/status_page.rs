//! The status page in a real browser: headless Chromium, driven over WebDriver, looks at
//! trelayd's operations port while a real lttng-sessiond live session streams into it (its row's
//! bytes grow without a reload, a babeltrace2 viewer attached shows in the viewers column), a
//! hand-fed session whose name is hostile HTML loses packets (the name renders as text, its lost
//! count shows), the page works in a narrow window, and the page's own script logs no error.
//! Serialized with the other sessiond tests (`lttng::sessiond`). Also: the JSON API (last packet
//! times, a live viewer's position lag), `trelay-viewer status`, and `[[ops]]` rules deciding
//! who gets the page.
//!
//! The screenshot lands in `CARGO_TARGET_TMPDIR/status-page.png`, and also at
//! `$TRELAY_STATUS_SCREENSHOT` when set (`docs/status-page.png` is made that way).

mod browser_support;

use anyhow::{ensure, Context, Result};
use browser_support::Driver;
use fantoccini::Client;
use serde_json::Value;
use std::time::{Duration, Instant};
use trelay_consumer::sender::{RelaySession, SessionConfig};
use trelay_consumer::synth::SynthTrace;
use trelay_integration::live::{wait_listed, LiveClient};
use trelay_integration::live_viewer::{wait_attached, LiveBabeltrace};
use trelay_integration::lttng::{lttng, sessiond, Workload};
use trelay_integration::relay::Trelayd;
use trelay_integration::session::{create_streaming, enable_event, large_allocs};
use trelay_integration::{unique, wait_for};

/// A session name the relay accepts (one path component) that is live HTML if not escaped.
const HOSTILE: &str = "<img src=x onerror=alert(1)><script>alert(2)<";
const LONG: Duration = Duration::from_secs(60);

/// The sessions table as the page shows it: per row, each cell's `data-value` by column, plus
/// the session cell's text (`name_text`).
const ROWS_JS: &str = r#"
return Array.from(document.querySelectorAll('#sessions tbody tr')).map(tr => {
  const row = {};
  for (const td of tr.cells) row[td.dataset.col] = td.dataset.value;
  const name = tr.querySelector('td[data-col="name"]');
  row.name_text = name ? name.textContent : null;
  row.id = tr.dataset.id;
  return row;
});"#;

async fn rows(client: &Client) -> Result<Vec<Value>> {
    let v = client.execute(ROWS_JS, vec![]).await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn row_named<'a>(rows: &'a [Value], name: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["name"].as_str() == Some(name))
}

fn num(row: &Value, col: &str) -> u64 {
    row[col]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

/// Polls the page (never reloading it) until `cond` holds on its rows.
async fn until(
    client: &Client,
    what: &str,
    mut cond: impl FnMut(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let start = Instant::now();
    loop {
        let r = rows(client).await?;
        if cond(&r) {
            return Ok(r);
        }
        ensure!(
            start.elapsed() < LONG,
            "timed out waiting for {what}; rows: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn js(client: &Client, script: &str) -> Result<Value> {
    Ok(client.execute(script, vec![]).await?)
}

/// Sends `HOSTILE`'s session: 10 whole packets, then 5 whose data never comes, then 5 whole.
async fn lossy_session(relay: &Trelayd) -> Result<RelaySession> {
    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let cfg = SessionConfig::new(HOSTILE, "status-host");
    let mut s = RelaySession::connect(control, data, &cfg).await?;
    let trace = SynthTrace::new("status-host", HOSTILE, 4096);
    let path = "ust/uid/0/64-bit";
    let stream = s.add_stream("channel0_0", path).await?;
    let meta = s.add_stream("metadata", path).await?;
    s.streams_sent().await?;
    for p in trace.metadata() {
        s.send_metadata(meta, &p.content, p.padding).await?;
    }
    let mut gen = trace.stream(0)?;
    for i in 0..20 {
        let p = gen.next_packet();
        if (10..15).contains(&i) {
            s.send_index_only(stream, &p.index).await?;
        } else {
            s.send_packet(stream, p.content, p.padding, Some(&p.index))
                .await?;
        }
    }
    Ok(s)
}

/// A live session `name` with 8 whole packets on one data stream, left open.
async fn live_session(relay: &Trelayd, name: &str) -> Result<RelaySession> {
    let control = ([127, 0, 0, 1], relay.ports.control).into();
    let data = ([127, 0, 0, 1], relay.ports.data).into();
    let mut cfg = SessionConfig::new(name, "status-host");
    cfg.live_timer_us = 100_000;
    let mut s = RelaySession::connect(control, data, &cfg).await?;
    let trace = SynthTrace::new("status-host", name, 4096);
    let path = "ust/uid/0/64-bit";
    let stream = s.add_stream("channel0_0", path).await?;
    let meta = s.add_stream("metadata", path).await?;
    s.streams_sent().await?;
    for p in trace.metadata() {
        s.send_metadata(meta, &p.content, p.padding).await?;
    }
    let mut gen = trace.stream(0)?;
    for _ in 0..8 {
        let p = gen.next_packet();
        s.send_packet(stream, p.content, p.padding, Some(&p.index))
            .await?;
    }
    Ok(s)
}

/// A raw live viewer attached to the session named `name` that took its metadata and one
/// index entry of its data stream: the API shows it one packet along.
fn viewer_one_packet_along(live_port: u16, name: &str) -> Result<LiveClient> {
    use trelay_proto::lttng::live::{GetMetadataStatus, NewStreamsStatus, NextIndexStatus, Seek};
    let sid = wait_listed(live_port, name, LONG)?.id;
    let mut v = LiveClient::viewer(live_port)?;
    let (_, mut streams) = v.attach(sid, Seek::Beginning)?;
    wait_for(LONG, "2 streams announced", || {
        if let Ok((NewStreamsStatus::Ok, more)) = v.new_streams(sid) {
            streams.extend(more);
        }
        streams.len() >= 2
    })?;
    let meta = streams
        .iter()
        .find(|s| s.is_metadata())
        .context("metadata")?
        .id;
    let data = streams
        .iter()
        .find(|s| !s.is_metadata())
        .context("data")?
        .id;
    wait_for(
        LONG,
        "metadata",
        || matches!(v.metadata(meta), Ok((GetMetadataStatus::Ok, ref d)) if !d.is_empty()),
    )?;
    let start = Instant::now();
    while v.next_index(data)?.status != NextIndexStatus::Ok {
        ensure!(start.elapsed() < LONG, "no index entry committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sees_sessions_rates_loss_and_viewers_on_the_status_page() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("trelay.toml");
    std::fs::write(&config, "merge_deadline_ms = 300\ntick_ms = 50\n")?;
    let cfg = config.display().to_string();
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(
        tmp.path(),
        &out,
        &["--metrics-addr", "127.0.0.1:0", "--config", &cfg],
    )?;
    let ops = relay.metrics.context("an operations port")?;
    let base = format!("http://127.0.0.1:{ops}");

    // A real live session, recording a steady workload.
    let name = unique("status");
    let work = Workload::python(tmp.path(), &unique("stpage"))?;
    let _session = create_streaming(&name, &relay.ports, &["--live=200000"])?;
    lttng(&[
        "enable-channel",
        "-u",
        "-s",
        &name,
        "chan",
        "--subbuf-size=64K",
    ])?;
    enable_event(
        &name,
        Some("chan"),
        "lttng_ust_libc:malloc",
        &large_allocs(&work),
    )?;
    lttng(&["start", &name])?;
    let mut app = work.spawn(&["-c", &trelay_integration::lttng::steady_allocs(60, 5)])?;
    let _viewer = LiveBabeltrace::start(
        &tmp.path().join("viewer"),
        "viewer",
        relay.ports.live,
        &name,
    )?;
    wait_attached(&relay, &name, 1, LONG)?;

    // The hostile, lossy session.
    let lossy = lossy_session(&relay).await?;

    // Without a script, the page already names the hostile session as text.
    let html = ureq::get(&format!("{base}/")).call()?.into_string()?;
    ensure!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;"),
        "server-rendered page escapes the name: {html}"
    );
    ensure!(!html.contains(HOSTILE), "the raw name is not in the page");

    let driver = Driver::start(tmp.path())?;
    let client = driver.browser(tmp.path()).await?;
    let result = look(&driver, &client, &base, &name).await;
    let console = driver.console(&client).await;
    let _ = client.close().await;
    drop(driver);
    let _ = app.kill();
    let _ = app.wait();
    result?;
    let console = console?;
    ensure!(
        console
            .iter()
            .any(|(_, m)| m.contains("trelay-console-probe")),
        "the browser log is read: {console:?}"
    );
    let errors: Vec<_> = console
        .iter()
        .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
        .collect();
    ensure!(errors.is_empty(), "the page logged errors: {errors:?}");

    lossy.close(Duration::from_secs(30)).await?;
    lttng(&["stop", &name])?;
    relay.stop_ok()?;
    Ok(())
}

async fn look(driver: &Driver, client: &Client, base: &str, name: &str) -> Result<()> {
    let _ = driver;
    client.goto(&format!("{base}/")).await?;
    ensure!(client.title().await? == "trelayd status");

    // The live session's row, with bytes growing while the page stays open.
    let r = until(client, "the live session's row with bytes", |r| {
        row_named(r, name).is_some_and(|row| num(row, "bytes") > 0)
    })
    .await?;
    let first = num(row_named(&r, name).context("row")?, "bytes");
    let r = until(client, "its bytes to grow", |r| {
        row_named(r, name).is_some_and(|row| num(row, "bytes") > first)
    })
    .await?;
    let live = row_named(&r, name).context("row")?.clone();
    ensure!(
        live["live"] == "1" && live["state"] == "streaming",
        "{live:?}"
    );
    let updated = js(client, "return document.body.dataset.updated || null").await?;
    ensure!(!updated.is_null(), "the page's script redrew it");

    // The babeltrace2 viewer in the viewers column.
    until(client, "one viewer on the live session", |r| {
        row_named(r, name).is_some_and(|row| num(row, "viewers") == 1)
    })
    .await?;

    // The hostile session: its lost packets counted, its name shown as text.
    let r = until(client, "the lossy session's 5 lost packets", |r| {
        row_named(r, HOSTILE).is_some_and(|row| num(row, "lost_packets") == 5)
    })
    .await?;
    let hostile = row_named(&r, HOSTILE).context("hostile row")?;
    ensure!(hostile["name_text"] == HOSTILE, "{hostile:?}");
    let injected = js(
        client,
        "return [document.querySelectorAll('img').length, document.scripts.length]",
    )
    .await?;
    ensure!(
        injected == serde_json::json!([0, 1]),
        "elements injected: {injected}"
    );
    ensure!(
        client.get_alert_text().await.is_err(),
        "no alert was opened"
    );
    let lost_class = js(
        client,
        "return document.querySelector('#sessions tr td[data-col=\"lost_packets\"].bad') !== null",
    )
    .await?;
    ensure!(
        lost_class == Value::Bool(true),
        "the lost count is highlighted"
    );

    // The filter box keeps only matching rows.
    let filter = client.find(fantoccini::Locator::Id("filter")).await?;
    filter.send_keys("status-host").await?;
    let visible = js(
        client,
        "return Array.from(document.querySelectorAll('#sessions tbody tr:not(.hidden)')).map(r => r.querySelector('td[data-col=\"host\"]').dataset.value)",
    )
    .await?;
    ensure!(
        visible == serde_json::json!(["status-host"]),
        "filtered: {visible}"
    );
    filter.clear().await?;
    js(
        client,
        "document.getElementById('filter').dispatchEvent(new Event('input')); return null",
    )
    .await?;

    // What an operator sees (once the sparkline has a few seconds of history).
    let history = "return Math.max(0, ...Array.from(document.querySelectorAll('svg.spark polyline')).map(p => p.getAttribute('points').split(' ').length))";
    // (A longer history for the picture in the docs.)
    let samples = if std::env::var_os("TRELAY_STATUS_SCREENSHOT").is_some() {
        45
    } else {
        10
    };
    let start = Instant::now();
    while js(client, history).await?.as_u64().unwrap_or(0) < samples {
        ensure!(
            start.elapsed() < LONG,
            "the sparkline never drew {samples} samples"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let png = client.screenshot().await?;
    ensure!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png"),
        &png,
    )?;
    if let Some(path) = std::env::var_os("TRELAY_STATUS_SCREENSHOT") {
        std::fs::write(path, &png)?;
    }

    // The session page lists the viewer by address with its position lag, and the streams with
    // their last packet times, once its script redrew it.
    let id = row_named(&rows(client).await?, name)
        .and_then(|r| r["id"].as_str().map(str::to_owned))
        .context("session id")?;
    client.goto(&format!("{base}/sessions/{id}")).await?;
    let start = Instant::now();
    loop {
        let v = js(
            client,
            "return [document.querySelectorAll('#streams tbody tr').length, \
             document.getElementById('viewers').textContent, \
             document.body.dataset.updated || null, \
             Array.from(document.querySelectorAll('#streams td[data-col=\"last_packet_ms\"]')) \
               .map(td => td.textContent), \
             document.querySelectorAll('#viewers li[data-lag]').length]",
        )
        .await?;
        let streams = v[0].as_u64().unwrap_or(0);
        let viewers = v[1].as_str().unwrap_or_default();
        let redrawn = !v[2].is_null();
        let clocked = v[3].as_array().is_some_and(|a| {
            a.iter().any(|t| {
                let t = t.as_str().unwrap_or_default();
                t.len() == 8 && t.as_bytes()[2] == b':' && t.as_bytes()[5] == b':'
            })
        });
        if streams >= 2
            && viewers.contains("127.0.0.1:")
            && viewers.contains(" · lag ")
            && v[4].as_u64() == Some(1)
            && redrawn
            && clocked
        {
            break;
        }
        ensure!(start.elapsed() < LONG, "session page: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A narrow window: nothing wider than the viewport but the table's own scroller.
    client.set_window_size(380, 800).await?;
    client.goto(&format!("{base}/")).await?;
    until(client, "rows in the narrow window", |r| r.len() >= 2).await?;
    let fits = js(
        client,
        "return document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await?;
    ensure!(fits == Value::Bool(true), "the page fits a narrow window");

    // Proof that the console is read (asserted by the caller).
    js(client, "console.info('trelay-console-probe'); return null").await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    Ok(())
}

const VIEWER: &str = env!("CARGO_BIN_EXE_trelay-viewer-under-test");

/// The JSON API and `trelay-viewer status` (once, `--json`, and `--watch` until SIGTERM) on a
/// hand-fed session that loses packets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_terminal_view_show_a_sessions_loss() -> Result<()> {
    use std::process::{Command, Stdio};
    use trelay_proto::status::{SessionDoc, SessionsDoc, StatusDoc};
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("trelay.toml");
    std::fs::write(&config, "merge_deadline_ms = 300\ntick_ms = 50\n")?;
    let cfg = config.display().to_string();
    let mut relay = Trelayd::start(
        tmp.path(),
        &["--metrics-addr", "127.0.0.1:0", "--config", &cfg],
    )?;
    let ops = relay.metrics.context("an operations port")?;
    let base = format!("http://127.0.0.1:{ops}");
    let before_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let lossy = lossy_session(&relay).await?;

    let get = |path: &str| -> Result<String> {
        Ok(ureq::get(&format!("{base}{path}")).call()?.into_string()?)
    };
    let start = Instant::now();
    let row = loop {
        let doc: SessionsDoc = serde_json::from_str(&get("/api/v1/sessions")?)?;
        ensure!(doc.schema == 1, "schema {}", doc.schema);
        if let Some(r) = doc
            .sessions
            .iter()
            .find(|r| r.name == HOSTILE && r.lost_packets == 5)
        {
            break r.clone();
        }
        ensure!(start.elapsed() < LONG, "no loss in {doc:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(
        row.host == "status-host" && row.packets == 15 && row.streams == 2,
        "{row:?}"
    );
    let status: StatusDoc = serde_json::from_str(&get("/api/v1/status")?)?;
    ensure!(
        status.relay.listeners.ops == Some(ops),
        "{:?}",
        status.relay
    );
    ensure!(status.relay.connections.control >= 1, "{:?}", status.relay);
    let start = Instant::now();
    loop {
        let status: StatusDoc = serde_json::from_str(&get("/api/v1/status")?)?;
        if status
            .events
            .iter()
            .any(|e| e.kind == "loss" && e.message.contains("+5 lost"))
        {
            break;
        }
        ensure!(
            start.elapsed() < LONG,
            "no loss event in {:?}",
            status.events
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let one: SessionDoc = serde_json::from_str(&get(&format!("/api/v1/sessions/{}", row.id))?)?;
    ensure!(
        one.streams.iter().any(|s| s.lost_packets == 5),
        "{:?}",
        one.streams
    );
    ensure!(one.chunks.current.is_some(), "{:?}", one.chunks);
    // Last packet time: data streams got one during this test, metadata streams show none.
    let after_ms = one.time_ms;
    for st in &one.streams {
        match (st.metadata, st.last_packet_ms) {
            (true, None) => {}
            (false, Some(t)) if (before_ms..=after_ms).contains(&t) => {}
            _ => anyhow::bail!("last packet time {before_ms}..{after_ms}: {st:?}"),
        }
    }
    // Without [archive] there is no archive state, and nothing was rotated into archives/.
    ensure!(
        one.session.archive.is_none() && one.chunks.archived.is_empty(),
        "{:?} {:?}",
        one.session.archive,
        one.chunks
    );

    // A live viewer one packet along lags by the rest of the committed packets.
    let live_name = unique("status-live");
    let live = live_session(&relay, &live_name).await?;
    let live_port = relay.ports.live;
    let name = live_name.clone();
    let viewer =
        tokio::task::spawn_blocking(move || viewer_one_packet_along(live_port, &name)).await??;
    let start = Instant::now();
    loop {
        let doc: SessionsDoc = serde_json::from_str(&get("/api/v1/sessions")?)?;
        let id = doc
            .sessions
            .iter()
            .find(|r| r.name == live_name)
            .context("the live session's row")?
            .id;
        let one: SessionDoc = serde_json::from_str(&get(&format!("/api/v1/sessions/{id}"))?)?;
        let committed = one
            .streams
            .iter()
            .find(|s| !s.metadata)
            .map_or(0, |s| s.committed);
        if let [v] = one.viewers.as_slice() {
            if committed == 8 {
                ensure!(
                    v.streams == 1 && v.lag_packets == 7,
                    "8 committed, 1 sent: {v:?}"
                );
                let page = get(&format!("/sessions/{id}"))?;
                ensure!(
                    page.contains("data-lag=\"7\"") && page.contains("Last packet"),
                    "{page}"
                );
                break;
            }
        }
        ensure!(
            start.elapsed() < LONG,
            "{:?} {:?}",
            one.viewers,
            one.streams
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(viewer);
    live.close(Duration::from_secs(30)).await?;
    for missing in [
        "/api/v1/sessions/999999",
        "/api/v1/sessions/x%3Cscript%3E",
        "/sessions/0",
    ] {
        match ureq::get(&format!("{base}{missing}")).call() {
            Err(ureq::Error::Status(404, _)) => {}
            other => anyhow::bail!("{missing}: {other:?}"),
        }
    }

    // The terminal view: the row with its loss, the name as it is.
    let out = Command::new(VIEWER).args(["status", &base]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains(HOSTILE))
        .with_context(|| format!("no row in {text}"))?;
    ensure!(
        text.lines().any(|l| l.contains("VIEWERS  ARCHIVE  STATE")),
        "{text}"
    );
    let cells: Vec<&str> = line.split_whitespace().collect();
    ensure!(
        cells.contains(&"5") && cells.contains(&"status-host"),
        "{line}"
    );
    let out = Command::new(VIEWER)
        .args(["status", "--json", &base])
        .output()?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    ensure!(v["sessions"]["sessions"][0]["lost_packets"] == 5, "{v}");
    let bad = Command::new(VIEWER)
        .args(["status", "https://x:1"])
        .output()?;
    ensure!(bad.status.code() == Some(2), "a bad URL is a usage error");

    // --watch redraws until SIGTERM, then exits 0.
    let log = tmp.path().join("watch.out");
    let mut watch = Command::new(VIEWER)
        .args(["status", "--watch", "--interval", "0.3", &base])
        .stdout(std::fs::File::create(&log)?)
        .stderr(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    while std::fs::read_to_string(&log)?.matches("\x1b[2J").count() < 3 {
        ensure!(start.elapsed() < LONG, "--watch did not redraw");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(watch.id())?),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let st = watch.wait()?;
    ensure!(st.success(), "--watch ends cleanly on SIGTERM: {st}");

    lossy.close(Duration::from_secs(30)).await?;
    relay.stop_ok()?;
    Ok(())
}

/// `[[ops]]` rules: from an address no rule holds the status page's connection is closed
/// unanswered; from one a rule holds the page is served.
#[test]
fn ops_rules_decide_who_gets_the_page() -> Result<()> {
    for (cidr, allowed) in [("10.0.0.0/8", false), ("127.0.0.0/8", true)] {
        let tmp = tempfile::tempdir()?;
        let config = tmp.path().join("trelay.toml");
        std::fs::write(&config, format!("[[ops]]\ncidr = \"{cidr}\"\n"))?;
        let cfg = config.display().to_string();
        let mut relay = Trelayd::start(
            tmp.path(),
            &["--metrics-addr", "127.0.0.1:0", "--config", &cfg],
        )?;
        let ops = relay.metrics.context("an operations port")?;
        let got = ureq::get(&format!("http://127.0.0.1:{ops}/"))
            .timeout(Duration::from_secs(10))
            .call();
        match (allowed, got) {
            (true, Ok(r)) => {
                ensure!(r.status() == 200, "{}", r.status());
                let body = r.into_string()?;
                ensure!(body.contains("<table id=\"sessions\">"), "{body}");
            }
            (false, Err(ureq::Error::Transport(_))) => {
                wait_for(LONG, "the refusal logged", || {
                    relay
                        .log_text()
                        .contains("connection refused: no [[ops]] rule holds the address")
                })?;
            }
            (_, other) => anyhow::bail!("under [[ops]] cidr {cidr}: {other:?}"),
        }
        relay.stop_ok()?;
    }
    Ok(())
}
