//! `trelay-viewer fetch s3://BUCKET/PREFIX OUTDIR`: brings an archived trace back from object
//! storage as a local directory babeltrace2 reads.
//!
//! Every object under the prefix is downloaded (streamed, never whole in memory) to the same
//! relative path under OUTDIR. Keys are hostile input: each component must be one plain path
//! component (no `..`, `.`, empty component, `\` or NUL), so nothing lands outside OUTDIR, and
//! files are created without following symbolic links. Each file's size must match the listing;
//! the archive's manifests (`.trelay-archive.json`, written by trelayd's archiver, not copied)
//! give each file's SHA-256, checked against what was downloaded. Settings come from the
//! standard environment variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`) or the flags.

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The manifest objects' name.
pub const MANIFEST: &str = ".trelay-archive.json";
/// Largest manifest read (bytes).
const MAX_MANIFEST: u64 = 64 << 20;

/// `fetch`'s arguments.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Archive URL: s3://BUCKET/PREFIX (e.g. s3://traces/relay/HOST/SESSION-DATE).
    pub url: String,
    /// Directory to write into (created if missing).
    pub outdir: PathBuf,
    /// S3 endpoint (else AWS_ENDPOINT_URL).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region (else AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint (else AWS_ALLOW_HTTP).
    #[arg(long)]
    pub allow_http: bool,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not `s3://BUCKET/PREFIX`.
    #[error("bad url {0:?}: expected s3://BUCKET/PREFIX")]
    Url(String),
    /// An object's key would not stay inside OUTDIR.
    #[error("refusing object key {key:?}: {why}")]
    Key {
        /// The key.
        key: String,
        /// Why.
        why: &'static str,
    },
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local write failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// What was downloaded is not what was archived.
    #[error("{0}")]
    Mismatch(String),
    /// Nothing is stored under the prefix.
    #[error("no object under {0}")]
    Empty(String),
}

/// One file fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// Path relative to OUTDIR.
    pub path: String,
    /// Bytes.
    pub size: u64,
}

/// What a fetch brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The files, in key order.
    pub files: Vec<FetchedFile>,
    /// Files whose SHA-256 a manifest confirmed.
    pub verified: usize,
}

/// Splits `s3://BUCKET[/PREFIX]` into the bucket and the prefix key.
pub fn parse_url(url: &str) -> Result<(String, ObjectPath), FetchError> {
    let bad = || FetchError::Url(url.to_owned());
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad());
    }
    let prefix = prefix.trim_end_matches('/');
    let parts: Vec<&str> = if prefix.is_empty() {
        Vec::new()
    } else {
        prefix.split('/').collect()
    };
    if parts.iter().any(|p| component(p).is_err()) {
        return Err(bad());
    }
    Ok((bucket.to_owned(), ObjectPath::from_iter(parts)))
}

fn component(p: &str) -> Result<&str, &'static str> {
    match p {
        "" => Err("empty component"),
        "." | ".." => Err("relative component"),
        p if p.contains(['/', '\\', '\0']) => Err("component contains '/', '\\' or NUL"),
        p => Ok(p),
    }
}

/// The path of `key` relative to `prefix`, each component checked.
pub fn relative(prefix: &ObjectPath, key: &ObjectPath) -> Result<Vec<String>, FetchError> {
    let refuse = |why| FetchError::Key {
        key: key.to_string(),
        why,
    };
    let raw = key.as_ref();
    let rest = if prefix.as_ref().is_empty() {
        raw
    } else {
        raw.strip_prefix(prefix.as_ref())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| refuse("not under the prefix"))?
    };
    if rest.starts_with('/') {
        return Err(refuse("absolute"));
    }
    let parts: Vec<String> = rest
        .split('/')
        .map(|p| component(p).map(str::to_owned).map_err(refuse))
        .collect::<Result<_, _>>()?;
    Ok(parts)
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    path: String,
    size: u64,
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    files: Vec<ManifestEntry>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Downloads every object under `prefix` of `store` into `outdir`.
pub async fn fetch_from(
    store: &dyn ObjectStore,
    prefix: &ObjectPath,
    outdir: &Path,
) -> Result<Fetched, FetchError> {
    let mut listing = Vec::new();
    let mut list = store.list(Some(prefix));
    while let Some(meta) = list.next().await {
        listing.push(meta?);
    }
    listing.sort_by(|a, b| a.location.cmp(&b.location));
    if listing.is_empty() {
        return Err(FetchError::Empty(prefix.to_string()));
    }
    // Check every key before writing anything.
    let rels: Vec<Vec<String>> = listing
        .iter()
        .map(|m| relative(prefix, &m.location))
        .collect::<Result<_, _>>()?;
    let mut out = Fetched::default();
    let mut sums: BTreeMap<String, String> = BTreeMap::new();
    let mut manifests: Vec<(String, Manifest)> = Vec::new();
    for (meta, rel) in listing.iter().zip(rels) {
        let rel_path = rel.join("/");
        if rel.last().is_some_and(|n| n == MANIFEST) {
            if meta.size > MAX_MANIFEST {
                return Err(FetchError::Mismatch(format!(
                    "{rel_path}: manifest too large"
                )));
            }
            let bytes = store.get(&meta.location).await?.bytes().await?;
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| FetchError::Mismatch(format!("{rel_path}: bad manifest: {e}")))?;
            let dir = rel
                .get(..rel.len().saturating_sub(1))
                .unwrap_or_default()
                .join("/");
            manifests.push((dir, m));
            continue;
        }
        let path = rel.iter().fold(outdir.to_path_buf(), |p, c| p.join(c));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut stream = store.get(&meta.location).await?.into_stream();
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            got = got.saturating_add(piece.len() as u64);
            if got > meta.size {
                break;
            }
            hasher.update(&piece);
            file.write_all(&piece).map_err(io_err(&path))?;
        }
        if got != meta.size {
            return Err(FetchError::Mismatch(format!(
                "{rel_path}: {got} bytes downloaded, {} listed",
                meta.size
            )));
        }
        file.sync_all().map_err(io_err(&path))?;
        sums.insert(rel_path.clone(), hex(&hasher.finalize()));
        out.files.push(FetchedFile {
            path: rel_path,
            size: got,
        });
    }
    for (dir, m) in manifests {
        for e in m.files {
            let p = if dir.is_empty() {
                e.path.clone()
            } else {
                format!("{dir}/{}", e.path)
            };
            let Some(sum) = sums.get(&p) else {
                return Err(FetchError::Mismatch(format!(
                    "{p}: in a manifest, not stored"
                )));
            };
            let size = out.files.iter().find(|f| f.path == p).map(|f| f.size);
            if *sum != e.sha256 || size != Some(e.size) {
                return Err(FetchError::Mismatch(format!(
                    "{p}: downloaded SHA-256 {sum}, archived {}",
                    e.sha256
                )));
            }
            out.verified += 1;
        }
    }
    Ok(out)
}

/// Runs `fetch` (settings from the environment, then the flags).
pub fn fetch(args: &FetchArgs) -> Result<Fetched, FetchError> {
    let (bucket, prefix) = parse_url(&args.url)?;
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(e) = &args.endpoint {
        b = b.with_endpoint(e);
    }
    if let Some(r) = &args.region {
        b = b.with_region(r);
    }
    if args.allow_http {
        b = b.with_allow_http(true);
    }
    let store = b.build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err(Path::new("tokio runtime")))?;
    rt.block_on(fetch_from(&store, &prefix, &args.outdir))
}

/// The `fetch` subcommand: fetches, prints each file and a summary.
pub fn run(args: &FetchArgs) -> std::process::ExitCode {
    match fetch(args) {
        Ok(f) => {
            let mut out = std::io::stdout().lock();
            let total = f.files.iter().fold(0u64, |t, x| t.saturating_add(x.size));
            for x in &f.files {
                let _ = writeln!(out, "{:>12}  {}", x.size, x.path);
            }
            let _ = writeln!(
                out,
                "fetched {} files, {total} bytes into {} ({} checked against the archive's SHA-256)",
                f.files.len(),
                args.outdir.display(),
                f.verified
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("trelay-viewer: fetch: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::PutPayload;

    #[test]
    fn keys_that_escape_are_refused() {
        let p = ObjectPath::from("pre/fix");
        assert_eq!(
            relative(&p, &ObjectPath::from("pre/fix/a/b")).unwrap(),
            ["a", "b"]
        );
        for other in ["other/a", "pre/fixx/a", "pre"] {
            assert!(relative(&p, &ObjectPath::from(other)).is_err(), "{other}");
        }
        // The client never yields such keys; the check does not rely on it.
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            assert!(component(bad).is_err(), "{bad:?}");
        }
        assert!(parse_url("s3://b/x/../y").is_err());
        assert!(parse_url("s3://b//y").is_err());
        assert!(parse_url("http://b/x").is_err());
        assert_eq!(parse_url("s3://b/x/y/").unwrap().1.as_ref(), "x/y");
    }

    #[test]
    fn fetches_verifies_and_catches_a_corrupt_object() {
        let store = InMemory::new();
        let out = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let put = |k: &str, v: Vec<u8>| {
                let k = ObjectPath::from(k);
                let store = &store;
                async move { store.put(&k, PutPayload::from(v)).await.unwrap() }
            };
            put("p/s/c1/ust/chan_0", b"abc".to_vec()).await;
            let sum = hex(&Sha256::digest(b"abc"));
            let manifest =
                format!(r#"{{"files":[{{"path":"ust/chan_0","size":3,"sha256":"{sum}"}}]}}"#);
            put("p/s/c1/.trelay-archive.json", manifest.into_bytes()).await;
            let f = fetch_from(&store, &ObjectPath::from("p/s"), out.path())
                .await
                .unwrap();
            assert_eq!(f.files.len(), 1);
            assert_eq!(f.verified, 1);
            assert_eq!(
                std::fs::read(out.path().join("c1/ust/chan_0")).unwrap(),
                b"abc"
            );
            assert!(!out.path().join("c1/.trelay-archive.json").exists());
            // Same size, other bytes: the manifest's checksum refuses it.
            put("p/s/c1/ust/chan_0", b"abd".to_vec()).await;
            let e = fetch_from(&store, &ObjectPath::from("p/s"), out.path())
                .await
                .unwrap_err();
            assert!(matches!(e, FetchError::Mismatch(_)), "{e}");
            assert!(fetch_from(&store, &ObjectPath::from("none"), out.path())
                .await
                .is_err());
        });
    }
}
