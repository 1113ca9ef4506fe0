//! A real S3-compatible server for the archive tests: `s3s-fs` (the `s3s-fs` crate's binary,
//! built with its `binary` feature; `scripts/test.sh` installs it under
//! `~/.cache/trelay/s3s-fs`), serving a temporary directory on a loopback port.

use anyhow::{bail, Context, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The access key the test server accepts.
pub const ACCESS_KEY: &str = "trelaytest";
/// The secret key the test server accepts.
pub const SECRET_KEY: &str = "trelaytestsecret";
/// The bucket the tests use.
pub const BUCKET: &str = "traces";

/// Where the server binary is: `$TRELAY_S3S_FS`, else the cache `scripts/test.sh` installs
/// into, else `s3s-fs` on the PATH. Fails (never skips) when none exists.
pub fn server_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TRELAY_S3S_FS") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(".cache/trelay/s3s-fs/bin/s3s-fs");
    if cached.exists() {
        return Ok(cached);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("s3s-fs"))
                .find(|c| c.exists())
        })
        .unwrap_or_default();
    on_path.context(
        "s3s-fs is not installed: scripts/test.sh installs it (cargo install s3s-fs \
         --features binary into ~/.cache/trelay/s3s-fs), or set TRELAY_S3S_FS",
    )
}

/// A running S3 server, killed when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    /// The directory it serves (buckets are its subdirectories).
    pub root: PathBuf,
}

/// A free loopback port (bound then released).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl S3Server {
    /// Starts the server on `port` serving `root` (created, with the bucket [`BUCKET`]), and
    /// waits until it accepts connections.
    pub fn start(root: &Path, port: u16) -> Result<S3Server> {
        std::fs::create_dir_all(root.join(BUCKET))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.with_extension("log"))?;
        let child = Command::new(server_bin()?)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start s3s-fs")?;
        let mut s = S3Server {
            child: Some(child),
            port,
            root: root.to_path_buf(),
        };
        let up = crate::wait_for(Duration::from_secs(30), "s3s-fs to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if let Err(e) = up {
            s.stop();
            bail!("{e}");
        }
        Ok(s)
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        endpoint(self.port)
    }

    /// A client of the test bucket.
    pub fn client(&self) -> Result<AmazonS3> {
        client(self.port)
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The endpoint URL of a server on `port`.
pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The environment trelayd and trelay-viewer need to reach a server on `port`.
pub fn env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", endpoint(port)),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
    ]
}

/// A client of the test bucket on a server at `port`.
pub fn client(port: u16) -> Result<AmazonS3> {
    Ok(AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_endpoint(endpoint(port))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .build()?)
}
