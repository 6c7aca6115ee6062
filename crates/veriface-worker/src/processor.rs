//! One message, start to finish: parse, resolve the path under the images
//! root, read the photo, enrol (decode, detect, embed, store; or record
//! `verified = false` with the reason), and only then delete the file.
//! Transport-independent: the Kafka loop and the tests drive it.

use std::sync::Arc;

use bytes::Bytes;
use veriface_core::enrol::{EnrolOutcome, EnrolRequest, IdentityService};
use veriface_core::Error;

use crate::images_root::{ImagesRoot, PathError};
use crate::message::EnrolMessage;

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The decision is recorded (or was, for a redelivery) and the file is
    /// gone: commit.
    Processed(EnrolOutcome),
    /// The message cannot be processed: dead-letter it with this reason,
    /// then commit.
    DeadLetter {
        /// Stable reason code.
        reason: &'static str,
        /// Explanation (no personal data).
        detail: String,
    },
}

/// Processes enrolment messages.
#[derive(Debug, Clone)]
pub struct Processor {
    service: Arc<IdentityService>,
    root: ImagesRoot,
}

impl Processor {
    /// A processor enrolling through `service`, reading under `root`.
    pub fn new(service: Arc<IdentityService>, root: ImagesRoot) -> Self {
        Self { service, root }
    }

    /// Processes one delivery. `key` identifies it (`kafka:<topic>:<partition>:<offset>`),
    /// so a redelivery is recognised even when its file is already gone.
    ///
    /// # Errors
    /// Only failures worth retrying the same message for: the database is
    /// unavailable, or an internal error. Nothing was committed then, and the
    /// file is still there.
    pub async fn process(&self, payload: Option<&[u8]>, key: String) -> Result<Disposition, Error> {
        let msg = match EnrolMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => return Ok(dead_letter(e.code(), e.to_string())),
        };
        // A redelivery after a crash between "recorded" and "committed":
        // the decision stands; only the file may be left to delete.
        if self.service.repo().is_recorded(&key).await? {
            if let Ok(path) = self.root.resolve(&msg.path) {
                remove(&path).await;
            }
            return Ok(Disposition::Processed(EnrolOutcome::AlreadyRecorded));
        }
        let path = match self.root.resolve(&msg.path) {
            Ok(p) => p,
            Err(e) => return Ok(dead_letter(e.code(), e.to_string())),
        };
        let max = self.service.config().limits.max_bytes;
        let image = match read_limited(&path, max).await {
            Ok(Some(b)) => b,
            // Too large to read: a decision about the photo, like a decode
            // failure, so it is recorded and the file removed.
            Ok(None) => {
                let outcome = self
                    .service
                    .reject(msg.username, key, "image_too_large")
                    .await?;
                remove(&path).await;
                return Ok(Disposition::Processed(outcome));
            }
            Err(e) => return Ok(dead_letter(e.code(), e.to_string())),
        };
        let outcome = self
            .service
            .enrol(EnrolRequest {
                username: msg.username,
                image,
                idempotency_key: key,
                job: None,
            })
            .await?;
        // Only now, with the decision committed, may the photo go.
        remove(&path).await;
        Ok(Disposition::Processed(outcome))
    }
}

fn dead_letter(reason: &'static str, detail: String) -> Disposition {
    Disposition::DeadLetter { reason, detail }
}

/// Reads the file unless it is larger than `max` bytes (`None`).
async fn read_limited(path: &std::path::Path, max: usize) -> Result<Option<Bytes>, PathError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => PathError::NotFound,
        k => PathError::Unreadable(k.to_string()),
    };
    let len = tokio::fs::metadata(path).await.map_err(io)?.len();
    if len > max as u64 {
        return Ok(None);
    }
    let bytes = tokio::fs::read(path).await.map_err(io)?;
    if bytes.len() > max {
        return Ok(None);
    }
    Ok(Some(Bytes::from(bytes)))
}

/// Deletes a processed photo. A failure is logged, not retried: the
/// decision is stored, and a leftover file is an operator's cleanup, not a
/// reason to process the message again.
async fn remove(path: &std::path::Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e.kind(), "processed image could not be deleted"),
    }
}
