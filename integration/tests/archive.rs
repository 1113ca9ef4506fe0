//! Archive to object storage against a real S3 server (`s3s-fs`, started here on a free port
//! over a temporary directory) and a real lttng-sessiond: a session rotated once and destroyed
//! ends up in the bucket, chunk by chunk, and `trelay-viewer fetch` brings back a trace
//! babeltrace2 reads exactly like the relay's local copy; while the session still streams, the
//! status API shows its rotated chunk uploaded. Serialized with the other
//! lttng-sessiond tests (see `lttng::sessiond`).

use anyhow::{ensure, Context, Result};
use futures_util::StreamExt;
use object_store::ObjectStore;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use trelay_integration::lttng::{lttng, sessiond, Workload};
use trelay_integration::relay::Trelayd;
use trelay_integration::s3::{self, S3Server};
use trelay_integration::scenario::WORKLOAD;
use trelay_integration::session::{
    add_vpid_procname, create_streaming, enable_event, large_allocs,
};
use trelay_integration::{normalized_events, unique, wait_for};

/// How long an archive may take once its session is closed.
const ARCHIVED: Duration = Duration::from_secs(120);

fn config(dir: &Path, port: u16, keep_local: bool) -> Result<PathBuf> {
    let path = dir.join("trelayd.toml");
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        &path,
        format!(
            "metrics_addr = \"127.0.0.1:0\"\n[archive]\nurl = \"s3://{}/relay\"\n\
             endpoint = \"{}\"\nallow_http = true\nkeep_local = {keep_local}\n\
             interval_ms = 200\nretry_initial_ms = 200\nretry_max_ms = 1000\n",
            s3::BUCKET,
            s3::endpoint(port)
        ),
    )?;
    Ok(path)
}

fn start_relay(dir: &Path, port: u16, keep_local: bool) -> Result<Trelayd> {
    let cfg = config(dir, port, keep_local)?;
    // Credentials and region from the environment, as an operator would pass them.
    let env: Vec<(&str, String)> = s3::env(port)
        .into_iter()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL" && *k != "AWS_ALLOW_HTTP")
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cfg = cfg.to_string_lossy().into_owned();
    Trelayd::start_with_env(dir, &dir.join("out"), &["--config", &cfg], &env)
}

/// Records a session into `relay`: events, one rotation, more events, destroy. Returns the
/// session directory relative to the output root.
fn record(relay: &Trelayd, tmp: &Path, tag: &str) -> Result<PathBuf> {
    record_checking(relay, tmp, tag, false)
}

/// The status API of `relay` shows session `tag`'s rotated chunk uploaded, in its row's
/// archive state and in its session document's archived chunks.
fn archive_state_shows_the_upload(relay: &Trelayd, tag: &str) -> Result<()> {
    use trelay_proto::status::{SessionDoc, SessionsDoc};
    let ops = relay.metrics.context("an operations port")?;
    let get = |path: &str| -> Result<String> {
        Ok(ureq::get(&format!("http://127.0.0.1:{ops}{path}"))
            .call()?
            .into_string()?)
    };
    let start = std::time::Instant::now();
    loop {
        let doc: SessionsDoc = serde_json::from_str(&get("/api/v1/sessions")?)?;
        let row = doc.sessions.iter().find(|r| r.name == tag).cloned();
        if let Some(row) = row {
            let one: SessionDoc =
                serde_json::from_str(&get(&format!("/api/v1/sessions/{}", row.id))?)?;
            let listed = one.chunks.archived.iter().any(|c| c.uploaded == Some(true));
            if let (Some(a), true) = (&row.archive, listed) {
                ensure!(
                    a.uploaded_chunks >= 1 && a.chunks >= a.uploaded_chunks && !a.session_uploaded,
                    "{a:?}"
                );
                return Ok(());
            }
            ensure!(
                start.elapsed() < ARCHIVED,
                "no uploaded chunk in the API: {:?} {:?}",
                row.archive,
                one.chunks
            );
        } else {
            ensure!(start.elapsed() < ARCHIVED, "no row for {tag}: {doc:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// [`record`], checking after the rotation (with `check_api`) that the status API shows the
/// rotated chunk uploaded while the session still streams.
fn record_checking(relay: &Trelayd, tmp: &Path, tag: &str, check_api: bool) -> Result<PathBuf> {
    let work = Workload::python(tmp, tag)?;
    let guard = create_streaming(tag, &relay.ports, &[])?;
    enable_event(tag, None, "lttng_ust_libc:malloc", &large_allocs(&work))?;
    add_vpid_procname(tag, None)?;
    lttng(&["start", tag])?;
    work.run(&["-c", WORKLOAD, "150"])?;
    lttng(&["rotate", tag]).with_context(|| relay.log_tail())?;
    if check_api {
        archive_state_shows_the_upload(relay, tag)?;
    }
    work.run(&["-c", WORKLOAD, "150"])?;
    lttng(&["stop", tag])?;
    lttng(&["destroy", tag]).with_context(|| relay.log_tail())?;
    drop(guard);
    for host in std::fs::read_dir(&relay.out)?.flatten() {
        if !host.path().is_dir() {
            continue;
        }
        for s in std::fs::read_dir(host.path())?.flatten() {
            if s.file_name().to_string_lossy().starts_with(tag) {
                return Ok(PathBuf::from(host.file_name()).join(s.file_name()));
            }
        }
    }
    anyhow::bail!(
        "no session directory for {tag} under {}",
        relay.out.display()
    )
}

fn list(port: u16, prefix: &str) -> Result<Vec<String>> {
    let store = s3::client(port)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let prefix = object_store::path::Path::from(prefix);
        let mut l = store.list(Some(&prefix));
        let mut keys = Vec::new();
        while let Some(m) = l.next().await {
            keys.push(m?.location.to_string());
        }
        keys.sort();
        Ok(keys)
    })
}

/// `trelay-viewer fetch s3://BUCKET/relay/SESSION OUT`, its output.
fn fetch(port: u16, session: &Path, out: &Path) -> Result<String> {
    let url = format!("s3://{}/relay/{}", s3::BUCKET, session.display());
    let o = Command::new(env!("CARGO_BIN_EXE_trelay-viewer-under-test"))
        .arg("fetch")
        .arg(&url)
        .arg(out)
        .envs(s3::env(port))
        .output()?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    ensure!(
        o.status.success(),
        "fetch {url} failed: {text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(text)
}

/// The chunk manifests (`…/archives/CHUNK/.trelay-archive.json`) and the session's among `keys`.
fn manifests(keys: &[String]) -> (usize, bool) {
    let chunks = keys
        .iter()
        .filter(|k| k.contains("/archives/") && k.ends_with("/.trelay-archive.json"))
        .count();
    let session = keys
        .iter()
        .any(|k| !k.contains("/archives/") && k.ends_with("/.trelay-archive.json"));
    (chunks, session)
}

#[test]
fn rotated_chunks_and_the_closed_session_are_archived_and_fetched_back() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new()
        .prefix("trelay-archive-")
        .tempdir()?;
    let port = s3::free_port()?;
    let server = S3Server::start(&tmp.path().join("s3"), port)?;
    let mut relay = start_relay(&tmp.path().join("relay"), port, true)?;
    let tag = unique("arc");
    let session = record_checking(&relay, tmp.path(), &tag, true)?;
    let local = relay.out.join(&session);
    wait_for(ARCHIVED, "the session's archive marker", || {
        local.join(".trelay-archived").exists()
    })
    .with_context(|| relay.log_tail())?;
    let keys = list(port, &format!("relay/{}", session.display()))?;
    let (chunks, whole) = manifests(&keys);
    ensure!(
        chunks >= 2 && whole,
        "a rotation and a destroy make two chunks: {keys:#?}"
    );
    ensure!(
        keys.iter()
            .any(|k| k.contains("/archives/") && k.ends_with("/metadata")),
        "{keys:#?}"
    );
    // The real server stored them as files.
    ensure!(server
        .root
        .join(s3::BUCKET)
        .join("relay")
        .join(&session)
        .is_dir());
    let want = normalized_events(&local)?;
    ensure!(want.len() >= 300, "only {} events recorded", want.len());
    let fetched = tmp.path().join("fetched");
    let printed = fetch(port, &session, &fetched)?;
    ensure!(printed.contains("fetched "), "{printed}");
    let got = normalized_events(&fetched)?;
    ensure!(
        want == got,
        "the fetched trace reads {} events, the local one {}",
        got.len(),
        want.len()
    );
    ensure!(relay.metric("trelay_archive_uploaded_bytes_total") > 0.0);
    ensure!(relay.metric("trelay_archive_units_total") >= 3.0);
    let log = relay.log_text();
    ensure!(
        log.contains("archive: uploaded and verified"),
        "{}",
        relay.log_tail()
    );
    ensure!(!log.contains(" ERROR "), "{}", relay.log_tail());
    relay.stop_ok()?;
    Ok(())
}

#[test]
fn a_server_down_at_first_is_retried_and_local_copies_go_only_once_archived() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new()
        .prefix("trelay-archive-")
        .tempdir()?;
    let port = s3::free_port()?;
    let mut relay = start_relay(&tmp.path().join("relay"), port, false)?;
    let tag = unique("arr");
    let session = record(&relay, tmp.path(), &tag)?;
    let local = relay.out.join(&session);
    // The first chunk may fail several times while the session is still recording; wait until
    // the closed session's units are all seen as pending too.
    wait_for(ARCHIVED, "failed archive attempts on every unit", || {
        relay.metric("trelay_archive_failures_total") >= 3.0
            && relay.metric("trelay_archive_pending_units") >= 2.0
    })
    .with_context(|| relay.log_tail())?;
    // Nothing was uploaded: everything is still here, and reads.
    let chunk_dirs = std::fs::read_dir(local.join("archives"))?.count();
    ensure!(chunk_dirs >= 2, "{chunk_dirs} chunk directories");
    let want = normalized_events(&local)?;
    ensure!(want.len() >= 300, "only {} events recorded", want.len());
    let _server = S3Server::start(&tmp.path().join("s3"), port)?;
    wait_for(ARCHIVED, "the local session directory to go", || {
        !local.exists()
    })
    .with_context(|| relay.log_tail())?;
    let keys = list(port, &format!("relay/{}", session.display()))?;
    let (chunks, whole) = manifests(&keys);
    ensure!(chunks >= 2 && whole, "{keys:#?}");
    let fetched = tmp.path().join("fetched");
    fetch(port, &session, &fetched)?;
    let got = normalized_events(&fetched)?;
    ensure!(
        want == got,
        "the fetched trace reads {} events, the local one {}",
        got.len(),
        want.len()
    );
    let log = relay.log_text();
    ensure!(log.contains("archive: failed"), "{}", relay.log_tail());
    ensure!(
        log.contains("archive: local copy removed"),
        "{}",
        relay.log_tail()
    );
    relay.stop_ok()?;
    Ok(())
}

#[test]
fn large_files_go_up_in_parts_and_a_changed_object_fails_verification() -> Result<()> {
    use object_store::{ObjectStoreExt, PutPayload};
    use trelay_relayd::archive::{settings::MIN_PART_SIZE, upload};
    let tmp = tempfile::Builder::new()
        .prefix("trelay-archive-")
        .tempdir()?;
    let port = s3::free_port()?;
    let _server = S3Server::start(&tmp.path().join("s3"), port)?;
    let store = s3::client(port)?;
    let file = tmp.path().join("big");
    let bytes: Vec<u8> = (0..MIN_PART_SIZE * 2 + 4321)
        .map(|i| (i % 253) as u8)
        .collect();
    std::fs::write(&file, &bytes)?;
    let fs = trelay_relayd::storage::RealFs::shared();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let key = object_store::path::Path::from("relay/big");
        let e = upload::upload(&store, &fs, &file, &key, "big".into(), MIN_PART_SIZE).await?;
        ensure!(e.size == bytes.len() as u64);
        upload::verify(&store, &key, &e).await?;
        let back = store.get(&key).await?.bytes().await?;
        ensure!(back.as_ref() == bytes.as_slice(), "the object differs");
        // Same size, one byte changed: the read-back checksum refuses it.
        let mut other = bytes.clone();
        if let Some(b) = other.get_mut(MIN_PART_SIZE + 7) {
            *b ^= 1;
        }
        store.put(&key, PutPayload::from(other)).await?;
        ensure!(
            upload::verify(&store, &key, &e).await.is_err(),
            "a changed object passed verification"
        );
        Ok(())
    })
}

#[test]
fn a_ctf2_session_is_archived_and_fetched_back_as_ctf2() -> Result<()> {
    use trelay_consumer::native::send::{send, NativeSendOptions};
    use trelay_consumer::synth::{write_trace_dir, SynthTrace};
    use trelay_integration::bt21;
    use trelay_proto::ctf::format::TraceFormat;
    let tmp = tempfile::Builder::new()
        .prefix("trelay-archive-")
        .tempdir()?;
    let port = s3::free_port()?;
    let _server = S3Server::start(&tmp.path().join("s3"), port)?;
    let mut relay = start_relay(&tmp.path().join("relay"), port, true)?;
    let t = SynthTrace::new("arc-host", "arc2", 4096).with_format(TraceFormat::Ctf2);
    let sent = tmp.path().join("sent");
    write_trace_dir(&t, &sent.join("ust/uid/0/64-bit"), 2, 50)?;
    let url = trelay_consumer::url::RelayUrl::parse(&format!(
        "trelay://127.0.0.1:{}",
        relay.ports.control
    ))?;
    let mut o = NativeSendOptions::new(sent.clone(), url);
    o.progress = false;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(send(&o))?;
    let session = PathBuf::from(&r.relay_path);
    let local = relay.out.join(&session);
    wait_for(ARCHIVED, "the session's archive marker", || {
        local.join(".trelay-archived").exists()
    })
    .with_context(|| relay.log_tail())?;
    let fetched = tmp.path().join("fetched");
    fetch(port, &session, &fetched)?;
    bt21::assert_ctf2(&fetched)?;
    let (want, got) = (bt21::babeltrace(&sent)?, bt21::babeltrace(&fetched)?);
    ensure!(
        want.lines().count() > 100 && want == got,
        "babeltrace2 2.1 reads the fetched trace differently ({} / {} lines)",
        want.lines().count(),
        got.lines().count()
    );
    relay.stop_ok()?;
    Ok(())
}
