//! [`BlobStore`] on the `object_store` crate: a local directory by default,
//! any S3-compatible service when configured.
//!
//! Both backends go through the same adapter, so the same contract tests
//! cover them. Keys are checked against the port's grammar before they
//! reach `object_store`, so no client string becomes a path.
//!
//! ```no_run
//! # async fn demo() -> veriface_core::Result<()> {
//! use veriface_core::ports::BlobStore;
//! use veriface_store::blob::ObjectBlobStore;
//!
//! let store = ObjectBlobStore::local("./data/blobs")?;
//! store.put("uploads/abc.jpg", bytes::Bytes::from_static(b"...")).await?;
//! assert_eq!(store.get("uploads/abc.jpg").await?.as_ref(), b"...");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use veriface_core::ports::BlobStore;
use veriface_core::{Error, Result};

/// A secret string (an S3 secret key) that never appears in `Debug` output
/// or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where S3 objects go and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name (seed 000's `bucketName`).
    pub bucket: String,
    /// Region (`region_name`); S3-compatible servers accept any.
    pub region: String,
    /// Endpoint URL of an S3-compatible server (MinIO, s3s-fs, Ceph...);
    /// `None` for AWS itself. Path-style requests are used with an
    /// endpoint, since such servers rarely have per-bucket DNS names.
    pub endpoint: Option<String>,
    /// Access key id; with the secret, or neither to use the AWS default
    /// credential chain (instance profile, web identity).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
}

/// An `object_store`-backed blob store.
#[derive(Clone)]
pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
    backend: &'static str,
    location: String,
}

impl fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBlobStore")
            .field("backend", &self.backend)
            .field("location", &self.location)
            .finish()
    }
}

impl ObjectBlobStore {
    /// Objects as files under `dir` (created if missing). Writes go to a
    /// temporary file renamed into place, so a reader never sees half an
    /// object and a failed write leaves nothing behind; empty directories
    /// are removed on delete.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the directory cannot be created or
    /// opened.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| unavailable(Box::new(e)))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| unavailable(Box::new(e)))?
            .with_automatic_cleanup(true);
        Ok(Self {
            inner: Arc::new(fs),
            backend: "local",
            location: PathBuf::from(dir).display().to_string(),
        })
    }

    /// Objects in an S3 bucket.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the configuration is unusable (for
    /// example a malformed endpoint URL). No request is made here; use
    /// [`BlobStore::ping`] to check that the bucket answers.
    pub fn s3(config: &S3Config) -> Result<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            // A request that hangs must not hold an HTTP request (and its
            // upload) for minutes; failures surface as 503 instead.
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(30))
                    .with_allow_http(true),
            )
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        let s3 = builder.build().map_err(|e| unavailable(Box::new(e)))?;
        Ok(Self {
            inner: Arc::new(s3),
            backend: "s3",
            location: match &config.endpoint {
                Some(e) => format!("{e}/{}", config.bucket),
                None => format!("s3://{}", config.bucket),
            },
        })
    }

    /// Where the objects live (a directory, or endpoint and bucket), for
    /// the startup log. Holds no secret.
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// Checks a key against the port's grammar: `/`-separated segments of
/// `[A-Za-z0-9._-]`, none empty, `.` or `..`.
///
/// # Errors
/// [`Error::InvalidInput`] with code `invalid_key`.
pub fn validate_key(key: &str) -> Result<Path> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if key.len() <= 1024 && key.split('/').all(segment_ok) {
        Path::parse(key).map_err(|e| Error::InvalidInput {
            code: "invalid_key",
            message: format!("invalid storage key: {e}"),
        })
    } else {
        Err(Error::InvalidInput {
            code: "invalid_key",
            message: "storage keys are /-separated segments of [A-Za-z0-9._-]".to_string(),
        })
    }
}

/// Prefixes may be empty (everything) or end with `/`.
fn validate_prefix(prefix: &str) -> Result<Option<Path>> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        Ok(None)
    } else {
        validate_key(trimmed).map(Some)
    }
}

fn unavailable(source: Box<dyn std::error::Error + Send + Sync>) -> Error {
    Error::Unavailable {
        what: "blob store",
        source,
    }
}

fn map_err(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            code: "image_not_found",
            what: "image",
        },
        other => unavailable(Box::new(other)),
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = validate_key(key)?;
        self.inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(map_err)
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = validate_key(key)?;
        let found = self.inner.get(&path).await.map_err(map_err)?;
        found.bytes().await.map_err(map_err)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let path = validate_key(key)?;
        // S3 answers a DELETE of a missing key with success, so existence
        // is asked first; a concurrent delete between the two only changes
        // which caller is told it existed.
        match self.inner.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(map_err(e)),
        }
        match self.inner.delete(&path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = validate_prefix(prefix)?;
        let metas: Vec<_> = self
            .inner
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut keys: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        Ok(keys)
    }

    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn ping(&self) -> Result<()> {
        // A prefix that holds nothing: one LIST request on S3, one
        // directory lookup locally.
        self.inner
            .list(Some(&Path::from(".readyz")))
            .try_collect::<Vec<_>>()
            .await
            .map(drop)
            .map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_the_grammar_are_refused() {
        for bad in [
            "", "/abs", "a//b", "a/../b", "..", "./a", "a/", "a\\b", "a b", "a/%2e%2e",
        ] {
            assert_eq!(
                validate_key(bad).unwrap_err().code(),
                "invalid_key",
                "{bad:?}"
            );
        }
        assert_eq!(
            validate_key("uploads/ab-c_1.jpg").unwrap().as_ref(),
            "uploads/ab-c_1.jpg"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
