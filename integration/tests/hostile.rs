//! Hostile peers: traversal names in every name field, oversized lengths, unknown ids, duplicate
//! sequence numbers, data for unknown streams, connections cut mid-packet. trelayd must answer
//! with an error status (or close only the offending connection), create nothing outside its
//! output folder, and keep serving other sessions.

use anyhow::{ensure, Result};
use std::io::Write;
use std::path::Path;
use trelay_integration::client::{self, Control};
use trelay_integration::relay::Trelayd;

const FATAL: u32 = 25;
const OK: u32 = 10;
const UNK: u32 = 11;
const INVALID: u32 = 97;

struct Sandbox {
    tmp: tempfile::TempDir,
    relay: Trelayd,
}

impl Sandbox {
    fn new() -> Result<Sandbox> {
        let tmp = tempfile::tempdir()?;
        let relay = Trelayd::start_with_output(
            &tmp.path().join("run"),
            &tmp.path().join("box/a/b/out"),
            &[],
        )?;
        Ok(Sandbox { tmp, relay })
    }

    /// Nothing exists under the sandbox but the output folder and the relay's run folder.
    fn nothing_escaped(&self) -> Result<()> {
        for f in trelay_integration::files_under(self.tmp.path()) {
            let s = f.to_string_lossy();
            ensure!(
                s.starts_with("box/a/b/out/") || s.starts_with("run/"),
                "file outside the output folder: {s}"
            );
            ensure!(!s.contains("escape"), "escaped file: {s}");
        }
        ensure!(!Path::new("/escape").exists() && !Path::new("/tmp/escape").exists());
        Ok(())
    }

    fn control(&self) -> Result<Control> {
        let mut c = Control::connect(self.relay.ports.control)?;
        c.handshake()?;
        Ok(c)
    }

    /// A control connection with a session and chunk 0.
    fn session(&self, name: &str) -> Result<Control> {
        let mut c = self.control()?;
        let (_, rc, _) = c.create_session(&client::create_session_payload(name, "host", "", 0))?;
        ensure!(rc == OK, "CREATE_SESSION {name}: {rc}");
        ensure!(c.create_chunk(0, None)? == OK);
        Ok(c)
    }

    /// A whole valid exchange still works: stream, one packet, its index, close.
    fn still_serves(&mut self, name: &str) -> Result<()> {
        let mut c = self.session(name)?;
        let (h, rc) = c.add_stream("chan_0", "ust/uid/0/64-bit")?;
        ensure!(rc == OK, "ADD_STREAM: {rc}");
        ensure!(c.status(16, &[])? == OK);
        let mut d = client::data(self.relay.ports.data)?;
        d.write_all(&client::data_header(h, 0, 1000, 24))?;
        d.write_all(&client::packet(1000))?;
        ensure!(c.status(13, &client::index_payload(h, 0, 1024, 0))? == OK);
        let mut close = h.to_be_bytes().to_vec();
        close.extend_from_slice(&0u64.to_be_bytes());
        ensure!(c.status(7, &close)? == OK);
        let idx = self.relay.out.join(format!(
            "host/{name}-20261123-062223/ust/uid/0/64-bit/index/chan_0.idx"
        ));
        trelay_integration::wait_for(
            std::time::Duration::from_secs(20),
            "the index entry",
            || {
                std::fs::metadata(&idx)
                    .map(|m| m.len() == 16 + 72)
                    .unwrap_or(false)
            },
        )
        .map_err(|e| {
            let sizes: Vec<_> = trelay_integration::files_under(&self.relay.out)
                .into_iter()
                .map(|f| {
                    (
                        std::fs::metadata(self.relay.out.join(&f))
                            .map(|m| m.len())
                            .unwrap_or(0),
                        f,
                    )
                })
                .collect();
            anyhow::anyhow!("{e}\n{sizes:?}\n{}", self.relay.log_tail())
        })?;
        ensure!(self.relay.alive(), "trelayd died");
        Ok(())
    }
}

#[test]
fn traversal_names_are_refused_everywhere() -> Result<()> {
    let mut sb = Sandbox::new()?;
    for (name, host, base) in [
        ("../../escape", "h", ""),
        ("a/escape", "h", ""),
        (".escape", "h", ""),
        ("..", "h", ""),
        ("s", "../../../escape", ""),
        ("s", "h/../../escape", ""),
        ("s", "h", "../../../../escape"),
        ("s", "h", "a/../../../../escape"),
        ("s", "h", "/abs/../../escape"),
    ] {
        let mut c = sb.control()?;
        let (id, rc, path) =
            c.create_session(&client::create_session_payload(name, host, base, 0))?;
        ensure!(
            rc == FATAL && id == 0 && path.is_empty(),
            "{name:?} {host:?} {base:?} accepted: {rc} {path}"
        );
    }
    let mut c = sb.session("chunky")?;
    ensure!(c.create_chunk(1, Some(".."))? == INVALID);
    ensure!(c.closed_by_peer());
    let mut c = sb.session("chunky2")?;
    ensure!(c.create_chunk(1, Some("../escape"))? == INVALID);

    for (channel, path) in [
        ("../../../../escape", "ust/uid/0/64-bit"),
        ("a/../../escape", "ust"),
        ("metadata", "../../../../escape"),
        ("chan", "ust/../../../../escape"),
        ("chan", "//escape"),
        ("chan", "/../escape"),
        ("", "ust"),
        ("chan", ""),
    ] {
        let mut c = sb.session("streams")?;
        let (h, rc) = c.add_stream(channel, path)?;
        ensure!(
            h == u64::MAX && rc == UNK,
            "ADD_STREAM {channel:?} {path:?} accepted"
        );
        ensure!(
            c.closed_by_peer(),
            "connection kept after a refused ADD_STREAM"
        );
    }
    sb.nothing_escaped()?;
    sb.still_serves("after")?;
    ensure!(
        sb.relay.log_text().contains("ADD_STREAM refused"),
        "no log line for refusals"
    );
    Ok(())
}

#[test]
fn oversized_lengths_end_only_their_connection() -> Result<()> {
    let mut sb = Sandbox::new()?;
    // A header announcing a terabyte.
    let mut c = sb.control()?;
    c.send_raw(5, 1 << 40, &[])?;
    ensure!(c.closed_by_peer());
    // Declared name lengths far past the payload or the caps.
    let mut p = client::create_session_payload("s", "h", "", 0);
    p[0..4].copy_from_slice(&100_000u32.to_be_bytes());
    let mut c = sb.control()?;
    ensure!(c.create_session(&p)?.1 == FATAL);
    let mut p = client::create_session_payload("s", "h", "", 0);
    p[4..8].copy_from_slice(&200u32.to_be_bytes());
    ensure!(sb.control()?.create_session(&p)?.1 == FATAL);
    let mut c = sb.session("big")?;
    let mut p = client::add_stream_payload("chan", "ust");
    p[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
    ensure!(c.call(1, &p, 12)?[8..12] == UNK.to_be_bytes());
    // A data packet larger than the cap.
    let mut c = sb.session("bigdata")?;
    let (h, _) = c.add_stream("chan_0", "ust")?;
    let mut d = client::data(sb.relay.ports.data)?;
    d.write_all(&client::data_header(h, 0, u32::MAX, u32::MAX))?;
    let mut dd = Control { sock: d };
    ensure!(dd.closed_by_peer(), "oversized packet accepted");
    // SEND_METADATA declaring more than the metadata cap.
    let mut c = sb.session("bigmeta")?;
    c.send_raw(6, 1 << 33, &[0; 12])?;
    ensure!(c.closed_by_peer());
    sb.still_serves("after")?;
    sb.nothing_escaped()
}

#[test]
fn unknown_ids_and_missing_setup() -> Result<()> {
    let mut sb = Sandbox::new()?;
    // Commands that need a session, without one: no reply, connection closed.
    let mut c = sb.control()?;
    c.send(1, &client::add_stream_payload("chan", "ust"))?;
    ensure!(c.closed_by_peer());
    let mut c = sb.session("ids")?;
    ensure!(c.status(13, &client::index_payload(9999, 0, 4096, 0))? == UNK);
    ensure!(c.closed_by_peer());
    let mut c = sb.session("ids2")?;
    let mut p = 9999u64.to_be_bytes().to_vec();
    p.extend_from_slice(&0u64.to_be_bytes());
    ensure!(
        c.status(8, &p)? == u32::MAX,
        "DATA_PENDING on an unknown stream"
    );
    let mut c = sb.session("ids3")?;
    ensure!(c.status(10, &12345u64.to_be_bytes())? == UNK);
    let mut c = sb.session("ids4")?;
    ensure!(c.status(4, &[])? == UNK, "unknown command");
    ensure!(c.closed_by_peer());
    // Data for a stream nobody announced.
    let mut d = client::data(sb.relay.ports.data)?;
    d.write_all(&client::data_header(777, 0, 16, 0))?;
    d.write_all(&[0u8; 16])?;
    ensure!(Control { sock: d }.closed_by_peer());
    sb.still_serves("after")?;
    sb.nothing_escaped()
}

#[test]
fn duplicate_sequence_numbers() -> Result<()> {
    let mut sb = Sandbox::new()?;
    let mut c = sb.session("dup")?;
    let (h, _) = c.add_stream("chan_0", "ust")?;
    ensure!(c.status(13, &client::index_payload(h, 0, 64, 0))? == OK);
    ensure!(
        c.status(13, &client::index_payload(h, 0, 64, 0))? == UNK,
        "duplicate index accepted"
    );
    ensure!(c.closed_by_peer());
    let mut c = sb.session("dupdata")?;
    let (h, _) = c.add_stream("chan_0", "ust")?;
    let mut d = client::data(sb.relay.ports.data)?;
    for _ in 0..2 {
        d.write_all(&client::data_header(h, 0, 64, 0))?;
        d.write_all(&client::packet(64))?;
    }
    ensure!(
        Control { sock: d }.closed_by_peer(),
        "duplicate data packet accepted"
    );
    sb.still_serves("after")?;
    sb.nothing_escaped()
}

/// Packet 0 whole, packet 1 cut after `sent` of its `size` bytes: the file keeps packet 0 only.
fn cut_mid_packet(size: u32, sent: usize) -> Result<()> {
    let mut sb = Sandbox::new()?;
    let mut c = sb.session("cut")?;
    let (h, _) = c.add_stream("chan_0", "ust")?;
    let padding = 4096 - size % 4096;
    let whole = u64::from(size + padding);
    {
        let mut d = client::data(sb.relay.ports.data)?;
        d.write_all(&client::data_header(h, 0, size, padding))?;
        d.write_all(&client::packet(size as usize))?;
        ensure!(c.status(13, &client::index_payload(h, 0, whole, 0))? == OK);
        d.write_all(&client::data_header(h, 1, size, padding))?;
        d.write_all(&client::packet(sent))?;
    }
    trelay_integration::wait_for(
        std::time::Duration::from_secs(20),
        "the cut connection to be closed",
        || sb.relay.log_text().contains("data connection closed"),
    )?;
    let file = sb.relay.out.join("host/cut-20261123-062223/ust/chan_0");
    let len = std::fs::metadata(&file)?.len();
    ensure!(
        len == whole,
        "data file holds {len} bytes, packet 0 is {whole}"
    );
    sb.still_serves("after")?;
    sb.nothing_escaped()
}

#[test]
fn connection_cut_mid_packet() -> Result<()> {
    cut_mid_packet(4000, 100)
}

#[test]
fn connection_cut_mid_spliced_packet() -> Result<()> {
    // Large enough for the splice path.
    cut_mid_packet(300_000, 70_000)
}

#[test]
fn a_peer_reusing_another_sessions_ids_stays_in_its_own_folder() -> Result<()> {
    // Both sessions claim the same sessiond uuid and session id (the test client always sends
    // the same ones) while both are alive: chunks are not shared across session folders.
    let mut sb = Sandbox::new()?;
    let mut victim = sb.session("victim")?;
    let (hv, _) = victim.add_stream("chan_0", "ust")?;
    let mut intruder = sb.session("intruder")?;
    let (hi, rc) = intruder.add_stream("chan_1", "ust")?;
    ensure!(rc == OK && hv != hi);
    let victim_dir = sb.relay.out.join("host/victim-20261123-062223/ust");
    let intruder_dir = sb.relay.out.join("host/intruder-20261123-062223/ust");
    ensure!(victim_dir.join("chan_0").exists() && !victim_dir.join("chan_1").exists());
    ensure!(intruder_dir.join("chan_1").exists());
    sb.still_serves("after")?;
    sb.nothing_escaped()
}
