//! Storage faults, injected through the relay's file-system seam: a relay runs in this process
//! on a fault-injecting file system, a sender streams a synthetic trace into it over the LTTng
//! protocol, and the test makes fdatasync, writes, splices, index appends and renames fail.
//! Whatever happens, what was committed before stays readable, no index entry points past its
//! data, and `trelay-viewer check` passes the output.

mod storage_support;

use std::time::Duration;
use storage_support::{entries, eventually, Relay};
use trelay_relayd::storage::fault::Rule;
use trelay_relayd::storage::Op;

/// The data file of the first stream (not its index, whose path ends the same).
const DATA: &str = "64-bit/channel0_0";
/// Its index file.
const INDEX: &str = "index/channel0_0.idx";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fdatasync_fails_the_session_and_publishes_nothing_past_it() {
    let relay = Relay::start(|_| {}).await;
    let mut s = relay.session("fsync", 4096).await;
    s.send(5).await.unwrap();
    eventually("5 entries committed", || entries(&relay.out, INDEX) == 5).await;
    relay.faults.add(Rule::new(Op::SyncData, DATA, libc::EIO));
    let _ = s.send(5).await;
    eventually("the session failed", || relay.failed("fsync")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(relay.faults.fired(), 1, "a failed fdatasync is not retried");
    assert_eq!(entries(&relay.out, INDEX), 5, "nothing published past it");
    drop(s);
    eventually("the session is gone", || relay.gone("fsync")).await;
    let out = relay.out.clone();
    let (_dir, stopped) = relay.stop_reporting().await;
    // A failed commit is never reported as committed at exit (the log's last line, the exit
    // status of trelayd).
    let stopped = stopped.expect_err("the relay reports the failed session when it stops");
    assert!(
        stopped
            .to_string()
            .contains("not everything received is committed"),
        "{stopped}"
    );
    // The packets received after the last commit are cut when the failed session's chunk is
    // released: the output holds exactly what was committed.
    let report = trelay_viewer::check::check(&out).unwrap();
    assert_eq!(report.entries, 5);
    storage_support::assert_checks(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eio_on_a_data_write_ends_the_session_and_keeps_what_was_committed() {
    let relay = Relay::start(|_| {}).await;
    let mut s = relay.session("eio", 4096).await;
    s.send(6).await.unwrap();
    eventually("6 entries committed", || entries(&relay.out, INDEX) == 6).await;
    relay.faults.add(Rule::new(Op::Write, DATA, libc::EIO));
    let _ = s.send(4).await;
    eventually("the session is gone", || relay.gone("eio")).await;
    assert!(relay.faults.fired() >= 1);
    assert_eq!(entries(&relay.out, INDEX), 6);
    relay.finish().await;
}

/// ENOSPC in the middle of a packet (a short write, then no space): the relay holds the packet,
/// stops reading the sender, publishes nothing more, and goes on by itself once space returns.
async fn disk_full_mid_packet(packet_len: usize, ops: &[Op]) {
    let relay = Relay::start(|_| {}).await;
    let mut s = relay.session("full", packet_len).await;
    s.send(5).await.unwrap();
    eventually("5 entries committed", || entries(&relay.out, INDEX) == 5).await;
    for op in ops {
        relay
            .faults
            .add(Rule::new(*op, DATA, libc::ENOSPC).short(1000).times(1));
        relay.faults.add(Rule::new(*op, DATA, libc::ENOSPC));
    }
    // More than the socket buffers hold: the sender must block while the disk is full.
    let more = (24 << 20) / packet_len as u64;
    let sender = tokio::spawn(async move {
        s.send(more).await?;
        Ok::<_, anyhow::Error>(s)
    });
    eventually("the session is disk-full", || {
        !relay.registry.disk_full().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!sender.is_finished(), "TCP pushes back on the sender");
    assert_eq!(
        entries(&relay.out, INDEX),
        5,
        "no entry for unwritten bytes"
    );
    relay.faults.clear();
    let s = tokio::time::timeout(Duration::from_secs(60), sender)
        .await
        .expect("the sender goes on once space returns")
        .unwrap()
        .unwrap();
    s.close().await.unwrap();
    assert!(relay.registry.disk_full().is_empty());
    assert_eq!(entries(&relay.out, INDEX), 5 + more);
    relay.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_mid_packet_pushes_back_and_resumes() {
    disk_full_mid_packet(4096, &[Op::Write]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_mid_spliced_packet_pushes_back_and_resumes() {
    disk_full_mid_packet(256 * 1024, &[Op::Write, Op::Splice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_mid_index_append_is_rolled_back_and_retried() {
    let relay = Relay::start(|_| {}).await;
    let mut s = relay.session("index", 4096).await;
    s.send(3).await.unwrap();
    eventually("3 entries committed", || entries(&relay.out, INDEX) == 3).await;
    // Part of an append lands, then the disk is full for a few commits.
    relay
        .faults
        .add(Rule::new(Op::Write, INDEX, libc::ENOSPC).short(10).times(1));
    relay
        .faults
        .add(Rule::new(Op::Write, INDEX, libc::ENOSPC).times(3));
    s.send(7).await.unwrap();
    eventually("the faults fired", || relay.faults.fired() == 4).await;
    s.close().await.unwrap();
    // Every packet exactly once, in order: the torn append was cut back, not kept and repeated.
    let seqs = storage_support::packet_seqs(&relay.out, INDEX);
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    relay.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rename_during_rotation_keeps_the_chunk_readable() {
    let relay = Relay::start(|_| {}).await;
    let mut s = relay.session("rotate", 4096).await;
    s.send(4).await.unwrap();
    eventually("4 entries committed", || entries(&relay.out, INDEX) == 4).await;
    relay.faults.add(Rule::new(Op::Rename, "", libc::EIO));
    assert!(s.rotate().await.is_err(), "the rotation is refused");
    eventually("the session is gone", || relay.gone("rotate")).await;
    assert!(relay.faults.fired() >= 1);
    assert_eq!(entries(&relay.out, INDEX), 4);
    relay.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_archives_the_previous_chunk_once_renames_work() {
    // The control case of the test above: the same rotation on a working file system.
    let relay = Relay::start(|_| {}).await;
    let mut s = relay.session("rotated", 4096).await;
    s.send(4).await.unwrap();
    let archive = s.rotate().await.unwrap();
    assert!(archive.contains("archives/"), "{archive}");
    s.send(3).await.unwrap();
    s.close().await.unwrap();
    assert_eq!(
        storage_support::find(&relay.out, INDEX).len(),
        2,
        "one index per chunk"
    );
    relay.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_creating_a_stream_file_waits_for_space_then_adds_the_stream() {
    let relay = Relay::start(|_| {}).await;
    // The first three attempts to create the data file find no space.
    relay
        .faults
        .add(Rule::new(Op::Create, DATA, libc::ENOSPC).times(3));
    let mut s = relay.session("addfull", 4096).await;
    assert_eq!(relay.faults.fired(), 3, "the creation was retried");
    s.send(4).await.unwrap();
    eventually("4 entries committed", || entries(&relay.out, INDEX) == 4).await;
    s.close().await.unwrap();
    relay.finish().await;
}

/// A session whose commit failed (fdatasync EIO) answers the sender's next SEND_INDEX,
/// DATA_PENDING and CLOSE_STREAM with the protocol's error status (then closes the connection),
/// never OK / "nothing pending": what it had not committed is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_answers_errors_not_ok() {
    use std::io::Write;
    use trelay_integration::client::{self, Control};
    const OK: u32 = 10;
    let relay = Relay::start(|_| {}).await;
    let (control, data) = relay.ports();
    // (command, payload for stream `h` after packet 0, the OK answer it must not get)
    type Payload = fn(u64) -> Vec<u8>;
    let cases: [(&str, u32, Payload, u32); 3] = [
        (
            "failindex",
            13,
            |h| client::index_payload(h, 1, 4096, 1),
            OK,
        ),
        (
            "failpending",
            8,
            |h| [h.to_be_bytes(), 0u64.to_be_bytes()].concat(),
            0,
        ),
        (
            "failclose",
            7,
            |h| [h.to_be_bytes(), 0u64.to_be_bytes()].concat(),
            OK,
        ),
    ];
    // Every session's data file: its first commit fails.
    relay
        .faults
        .add(Rule::new(Op::SyncData, "kernel/chan_0", libc::EIO));
    for (name, cmd, payload, ok) in cases {
        let session = name.to_owned();
        let (c, d, h) = tokio::task::spawn_blocking(move || {
            let mut c = Control::connect(control).unwrap();
            c.handshake().unwrap();
            let (_, rc, _) = c
                .create_session(&client::create_session_payload(&session, "h", "", 0))
                .unwrap();
            assert_eq!(rc, OK);
            assert_eq!(c.create_chunk(0, None).unwrap(), OK);
            let (h, _) = c.add_stream("chan_0", "kernel").unwrap();
            let mut d = client::data(data).unwrap();
            d.write_all(&client::data_header(h, 0, 4096, 0)).unwrap();
            d.write_all(&client::packet(4096)).unwrap();
            assert_eq!(
                c.status(13, &client::index_payload(h, 0, 4096, 0)).unwrap(),
                OK
            );
            (c, d, h)
        })
        .await
        .unwrap();
        // The first commit's fdatasync fails: the session fails.
        eventually("the session failed", || relay.failed(name)).await;
        let answered = tokio::task::spawn_blocking(move || {
            let mut c = c;
            let rc = c.status(cmd, &payload(h)).unwrap();
            let closed = c.closed_by_peer();
            drop(d);
            (rc, closed)
        })
        .await
        .unwrap();
        assert_ne!(answered.0, ok, "{name}: a failed session answered OK");
        assert!(answered.1, "{name}: the connection stays open");
    }
    let (_dir, stopped) = relay.stop_reporting().await;
    assert!(stopped.is_err(), "the failed sessions are reported at exit");
}
