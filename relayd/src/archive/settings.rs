//! The `[archive]` settings and the object store they describe.
//!
//! ```toml
//! [archive]
//! url = "s3://bucket/prefix"   # where closed chunks and sessions go (required)
//! keep_local = true            # false: a unit's local directory goes once it is archived
//! endpoint = "http://host:9000" # else AWS_ENDPOINT_URL (S3-compatible servers)
//! region = "us-east-1"         # else AWS_REGION
//! allow_http = false           # else AWS_ALLOW_HTTP
//! interval_ms = 5000           # how often the output folder is scanned for closed units
//! retry_initial_ms = 1000      # first retry delay after a failed upload (doubles each time)
//! retry_max_ms = 300000        # longest retry delay
//! part_size = 8388608          # files larger than this go up in parts of this size
//! ```
//!
//! Credentials come from the usual environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), read by object_store's
//! [`AmazonS3Builder::from_env`].

use super::key::check_component;
use super::ArchiveError;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use serde::Deserialize;
use std::time::Duration;

/// S3's smallest part of a multipart upload (every part but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The largest part this relay uploads (bounds its memory).
pub const MAX_PART_SIZE: usize = 64 << 20;

/// The `[archive]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveSettings {
    /// `s3://BUCKET/PREFIX`.
    pub url: String,
    /// Keep the local copy of what was archived.
    pub keep_local: bool,
    /// S3 endpoint (else `AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: Option<String>,
    /// Region (else `AWS_REGION`).
    pub region: Option<String>,
    /// Allow plain HTTP endpoints (else `AWS_ALLOW_HTTP`).
    pub allow_http: Option<bool>,
    /// Scan period of the output folder (ms).
    pub interval_ms: u64,
    /// First retry delay after a failure (ms).
    pub retry_initial_ms: u64,
    /// Longest retry delay (ms).
    pub retry_max_ms: u64,
    /// Part size of multipart uploads (bytes).
    pub part_size: usize,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            url: String::new(),
            keep_local: true,
            endpoint: None,
            region: None,
            allow_http: None,
            interval_ms: 5000,
            retry_initial_ms: 1000,
            retry_max_ms: 300_000,
            part_size: 8 << 20,
        }
    }
}

/// A parsed `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveUrl {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, one component each (possibly none).
    pub prefix: Vec<String>,
}

impl ArchiveUrl {
    /// Parses `s3://BUCKET[/PREFIX…]`: the bucket must be a plain name, every prefix component
    /// one path component (no `.`, `..` or empty ones but a trailing slash).
    pub fn parse(url: &str) -> Result<ArchiveUrl, ArchiveError> {
        let bad = |why: &str| ArchiveError::Url(format!("{url:?}: {why}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("expected s3://BUCKET/PREFIX"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut parts = rest.split('/');
        let bucket = parts.next().unwrap_or_default();
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(bad("bad bucket name"));
        }
        let prefix = parts
            .map(|p| check_component(p).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(ArchiveUrl {
            bucket: bucket.to_owned(),
            prefix,
        })
    }
}

impl ArchiveSettings {
    /// Checks the values (the URL parses, the sizes and periods are usable).
    pub fn validate(&self) -> Result<(), String> {
        ArchiveUrl::parse(&self.url).map_err(|e| format!("[archive] url: {e}"))?;
        if self.interval_ms == 0 || self.retry_initial_ms == 0 {
            return Err("[archive] interval_ms and retry_initial_ms must be positive".into());
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return Err("[archive] retry_max_ms must be at least retry_initial_ms".into());
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(format!(
                "[archive] part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}"
            ));
        }
        Ok(())
    }

    /// The scan period.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The object store: the environment's settings, then the explicit keys over them. Its own
    /// retries are few and short; the archiver retries whole units with a longer backoff.
    pub fn store(&self) -> Result<(AmazonS3, ArchiveUrl), ArchiveError> {
        let url = ArchiveUrl::parse(&self.url)?;
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(20),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            );
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        if let Some(h) = self.allow_http {
            b = b.with_allow_http(h);
        }
        Ok((b.build()?, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_bucket_and_prefix() {
        let u = ArchiveUrl::parse("s3://traces/relay/a/").unwrap();
        assert_eq!(u.bucket, "traces");
        assert_eq!(u.prefix, ["relay", "a"]);
        assert!(ArchiveUrl::parse("s3://traces").unwrap().prefix.is_empty());
        for bad in [
            "http://b/p",
            "s3://",
            "s3:///p",
            "s3://b/../p",
            "s3://b//p",
            "s3://b/./p",
            "s3://b c/p",
        ] {
            assert!(ArchiveUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_are_validated() {
        let mut s = ArchiveSettings {
            url: "s3://b/p".into(),
            ..ArchiveSettings::default()
        };
        assert!(s.validate().is_ok());
        s.part_size = 1024;
        assert!(s.validate().is_err());
        s.part_size = MIN_PART_SIZE;
        s.retry_max_ms = 1;
        assert!(s.validate().is_err());
    }
}
