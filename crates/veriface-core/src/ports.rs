//! Ports: the traits adapters implement. The HTTP layer and the worker
//! hold them as `Arc<dyn Trait>` (dyn-safe through `async-trait`), so only
//! the binaries know which backend is in use.

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// Opaque binary objects (uploaded images) addressed by a key that veriface
/// generated. Keys are `/`-separated relative paths of `[A-Za-z0-9._-]`
/// segments; a client-chosen string never becomes a key unchecked.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `key`, replacing any previous object.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the backend fails.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// Reads the object at `key`.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`] (code `image_not_found`) when there is none;
    /// [`crate::Error::Unavailable`] when the backend fails.
    async fn get(&self, key: &str) -> Result<Bytes>;

    /// Deletes the object at `key`; returns whether it existed.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the backend fails.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Lists keys under `prefix` (for erasure of everything a subject owns).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the backend fails.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// A short name for logs and `/readyz` (`"local"`, `"s3"`).
    fn backend(&self) -> &'static str;

    /// Checks that the backend answers (for `/readyz`). The default lists
    /// a prefix that holds nothing, which costs one request and no data.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the backend fails.
    async fn ping(&self) -> Result<()> {
        self.list(".readyz").await.map(drop)
    }
}
