//! One file up, then checked: the bytes are read through the storage seam in bounded pieces and
//! hashed (SHA-256) as they go; a file up to the part size goes in one PUT, a larger one in a
//! multipart upload of part-size pieces with at most [`MAX_PARTS_IN_FLIGHT`] parts in flight, so
//! memory stays bounded whatever the file's size. [`verify`] then asks the object's size (HEAD)
//! and reads it back (GET, streamed) to compare its SHA-256 with the one computed locally: an
//! object counts only once both match.

use super::manifest::{hex, Entry};
use super::ArchiveError;
use crate::storage::{Fs, StorageFile};
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Parts of one multipart upload in flight at once.
pub const MAX_PARTS_IN_FLIGHT: usize = 2;
/// Bytes read from the file at a time for a multipart upload.
const READ_PIECE: usize = 1 << 20;

/// Uploads the local file `local` as `key`; returns its size and SHA-256 (as an entry named
/// `rel`).
pub async fn upload(
    store: &dyn ObjectStore,
    fs: &Fs,
    local: &Path,
    key: &ObjectPath,
    rel: String,
    part_size: usize,
) -> Result<Entry, ArchiveError> {
    let file = StorageFile::open(fs, local.to_path_buf(), false)?;
    let len = file.len()?;
    let mut hasher = Sha256::new();
    match usize::try_from(len).ok().filter(|l| *l <= part_size) {
        Some(small) => {
            let mut buf = vec![0u8; small];
            file.read_exact_at(&mut buf, 0)?;
            hasher.update(&buf);
            store.put(key, PutPayload::from(buf)).await?;
        }
        None => {
            let mut w =
                WriteMultipart::new_with_chunk_size(store.put_multipart(key).await?, part_size);
            let mut buf = vec![0u8; READ_PIECE];
            let mut offset = 0u64;
            let sent: Result<(), ArchiveError> = async {
                while offset < len {
                    let n = usize::try_from(len.saturating_sub(offset))
                        .unwrap_or(READ_PIECE)
                        .min(READ_PIECE);
                    let piece = buf.get_mut(..n).unwrap_or_default();
                    file.read_exact_at(piece, offset)?;
                    hasher.update(&*piece);
                    w.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
                    w.write(piece);
                    offset = offset.saturating_add(n as u64);
                }
                Ok(())
            }
            .await;
            match sent {
                Ok(()) => {
                    w.finish().await?;
                }
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e);
                }
            }
        }
    }
    Ok(Entry {
        path: rel,
        size: len,
        sha256: hex(&hasher.finalize()),
    })
}

/// Checks that `key` holds exactly what `entry` describes: its size (HEAD), then its bytes
/// read back, hashed and compared.
pub async fn verify(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    entry: &Entry,
) -> Result<(), ArchiveError> {
    let mismatch = |what: String| ArchiveError::Verify {
        key: key.to_string(),
        what,
    };
    let meta = store.head(key).await?;
    if meta.size != entry.size {
        return Err(mismatch(format!(
            "size {} where {} was uploaded",
            meta.size, entry.size
        )));
    }
    let mut stream = store.get(key).await?.into_stream();
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        got = got.saturating_add(piece.len() as u64);
        if got > entry.size {
            return Err(mismatch(format!(
                "more than {} bytes read back",
                entry.size
            )));
        }
        hasher.update(&piece);
    }
    let sha = hex(&hasher.finalize());
    if got != entry.size || sha != entry.sha256 {
        return Err(mismatch(format!(
            "read back {got} bytes with SHA-256 {sha}, uploaded {} bytes with {}",
            entry.size, entry.sha256
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn small_and_multipart_uploads_verify_and_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::storage::RealFs::shared();
        let part = super::super::settings::MIN_PART_SIZE;
        let small = dir.path().join("small");
        let big = dir.path().join("big");
        std::fs::write(&small, b"hello").unwrap();
        let bytes: Vec<u8> = (0..part * 2 + 12345).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &bytes).unwrap();
        let store = InMemory::new();
        runtime().block_on(async {
            for (p, name) in [(&small, "small"), (&big, "big")] {
                let key = ObjectPath::from(name);
                let e = upload(&store, &fs, p, &key, name.into(), part)
                    .await
                    .unwrap();
                assert_eq!(e.size, std::fs::metadata(p).unwrap().len());
                verify(&store, &key, &e).await.unwrap();
            }
            let got = store.get(&ObjectPath::from("big")).await.unwrap();
            assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
            // Same size, other bytes: the checksum catches it.
            let key = ObjectPath::from("small");
            let e = upload(&store, &fs, &small, &key, "small".into(), part)
                .await
                .unwrap();
            store
                .put(&key, PutPayload::from_static(b"jello"))
                .await
                .unwrap();
            let err = verify(&store, &key, &e).await.unwrap_err();
            assert!(err.to_string().contains("SHA-256"), "{err}");
            // Other size: HEAD catches it.
            store
                .put(&key, PutPayload::from_static(b"hell"))
                .await
                .unwrap();
            assert!(verify(&store, &key, &e)
                .await
                .unwrap_err()
                .to_string()
                .contains("size"));
            // Gone: an error too.
            store.delete(&key).await.unwrap();
            assert!(verify(&store, &key, &e).await.is_err());
        });
    }
}
