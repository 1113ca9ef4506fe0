//! The sender side of trelay:// (`trelay://HOST[:PORT]` URLs): [`client::NativeConn`] speaks the
//! protocol on one connection, [`send::send`] ships a local trace with it and resumes after
//! cuts.

pub mod bench;
pub mod client;
pub mod follow;
mod follower;
pub mod send;

/// Appends packet `seq` (index entry `e`, its content read from `data` at `e.offset`) to a
/// batch: its content to `buf` (the padding is not sent), its metadata to `metas`.
pub(crate) fn push_packet(
    buf: &mut Vec<u8>,
    metas: &mut Vec<trelay_proto::trelay::message::PacketMeta>,
    data: &std::fs::File,
    seq: u64,
    e: &trelay_proto::ctf::index::IndexEntry,
) -> Result<(), client::NativeError> {
    use std::os::unix::fs::FileExt;
    let content = crate::trace::packets::content_len(e);
    let at = buf.len();
    buf.resize(at + content as usize, 0);
    data.read_exact_at(&mut buf[at..], e.offset)
        .map_err(client::NativeError::Io)?;
    metas.push(trelay_proto::trelay::message::PacketMeta {
        seq,
        content: content as u32,
        padding: (e.packet_size / 8 - content) as u32,
        index: Some(trelay_proto::trelay::message::IndexFields::from(e)),
    });
    Ok(())
}
