//! The session use-cases the HTTP routes call: start, upload, restart,
//! confirm, cancel, status. Each reads the session, asks the
//! [`transition`] table, and applies the change as a compare-and-set in
//! the [`SessionRepo`], retrying when another request moved the session
//! in between.
//!
//! Images live in the [`BlobStore`] under `sessions/{id}/{side}`, with
//! their metadata stripped. Retention: they are deleted when the session
//! is restarted (the old ones), cancelled, expires, or is decided; only
//! the decision (reasons, scores, no personal data) stays.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use veriface_vision::decode::{decode, DecodeLimits};

use super::state::{transition, Action, SessionState, Transition, INVALID_TRANSITION};
use super::types::{not_found, NewSession, Session, SessionId, Side};
use super::SessionRepo;
use crate::identity::Timestamp;
use crate::metadata::strip_metadata;
use crate::ports::BlobStore;
use crate::{Error, Result};

/// The code of a confirm before every image was uploaded (409).
pub const SCANS_INCOMPLETE: &str = "scans_incomplete";
/// The code of a malformed webhook URL (400).
pub const INVALID_WEBHOOK_URL: &str = "invalid_webhook_url";
/// The code of a webhook URL given to a server without a signing secret (400).
pub const WEBHOOKS_DISABLED: &str = "webhooks_disabled";

/// The session use-cases; cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionService {
    repo: Arc<dyn SessionRepo>,
    blobs: Arc<dyn BlobStore>,
    ttl: Duration,
    limits: DecodeLimits,
    webhooks: bool,
}

/// The blob key of a session's image.
pub fn blob_key(id: &SessionId, side: Side) -> String {
    format!("sessions/{id}/{}", side.as_str())
}

impl SessionService {
    /// Sessions in `repo`, images in `blobs`; an unconfirmed session
    /// expires `ttl` after it started; uploads must decode within `limits`.
    pub fn new(
        repo: Arc<dyn SessionRepo>,
        blobs: Arc<dyn BlobStore>,
        ttl: Duration,
        limits: DecodeLimits,
    ) -> Self {
        Self {
            repo,
            blobs,
            ttl,
            limits,
            webhooks: false,
        }
    }

    /// Accepts webhook URLs at [`SessionService::start`] (the server turns
    /// this on when it has a signing secret).
    pub fn with_webhooks(mut self, enabled: bool) -> Self {
        self.webhooks = enabled;
        self
    }

    /// The repository (for the processor).
    pub fn repo(&self) -> &Arc<dyn SessionRepo> {
        &self.repo
    }

    /// The blob store (for the processor).
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The time to live of an unconfirmed session.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session, optionally with a webhook URL that is told the
    /// final state.
    ///
    /// # Errors
    /// `invalid_webhook_url` (400) for a URL that is not `http(s)://`,
    /// `webhooks_disabled` (400) when the server has no signing secret;
    /// [`Error::Unavailable`] when the database fails.
    pub async fn start(&self, webhook_url: Option<String>) -> Result<Session> {
        if let Some(url) = &webhook_url {
            if !self.webhooks {
                return Err(Error::InvalidInput {
                    code: WEBHOOKS_DISABLED,
                    message: "this server sends no webhooks (VERIFACE_WEBHOOK_SECRET is not set)"
                        .to_string(),
                });
            }
            check_webhook_url(url)?;
        }
        let now = Timestamp::now();
        let id = SessionId::generate()?;
        self.repo
            .insert_session(NewSession {
                id: id.clone(),
                webhook_url,
                created_at: now,
                expires_at: now.plus(self.ttl),
            })
            .await?;
        metrics::counter!("veriface_sessions_total", "event" => "started").increment(1);
        self.load(&id).await
    }

    /// The session as it is now (an open session past its expiry is
    /// expired on the way, and its images deleted).
    ///
    /// # Errors
    /// [`Error::NotFound`] (`session_not_found`), [`Error::Unavailable`].
    pub async fn status(&self, id: &SessionId) -> Result<Session> {
        self.load(id).await
    }

    /// Stores an image for `side`, replacing an earlier one.
    ///
    /// # Errors
    /// `session_not_found`; 409 (`invalid_session_transition`,
    /// `session_expired`) when the session no longer takes uploads; an
    /// image error when the bytes do not decode within the limits.
    pub async fn add_scan(&self, id: &SessionId, side: Side, bytes: Bytes) -> Result<Session> {
        let session = self.load(id).await?;
        transition(session.state, Action::AddScan)?;
        let limits = self.limits;
        let stripped = tokio::task::spawn_blocking(move || {
            let label = side.as_str();
            let decoded = decode(&bytes, &limits).map_err(|source| Error::Image {
                label: label.to_string(),
                source,
            })?;
            strip_metadata(&bytes, decoded.format)
        })
        .await
        .map_err(|e| Error::Internal(Box::new(e)))??;
        let key = blob_key(id, side);
        self.blobs.put(&key, Bytes::from(stripped)).await?;
        if self.repo.add_scan(id, side, Timestamp::now()).await? {
            return self.load(id).await;
        }
        // The session moved (cancelled, confirmed, expired) while the image
        // was stored: take the image back and report the state it is in.
        self.blobs.delete(&key).await?;
        let session = self.load(id).await?;
        transition(session.state, Action::AddScan)?;
        Err(conflict(session.state, Action::AddScan))
    }

    /// Discards the uploads so the user can start over.
    ///
    /// # Errors
    /// As [`SessionService::add_scan`], minus the image errors.
    pub async fn restart(&self, id: &SessionId) -> Result<Session> {
        let session = self.load(id).await?;
        transition(session.state, Action::Restart)?;
        if !self.repo.clear_scans(id, Timestamp::now()).await? {
            let session = self.load(id).await?;
            transition(session.state, Action::Restart)?;
            return Err(conflict(session.state, Action::Restart));
        }
        self.delete_images(id).await?;
        self.load(id).await
    }

    /// Submits the session for processing. Idempotent: confirming a
    /// session already submitted, processing or decided returns it as it
    /// is.
    ///
    /// # Errors
    /// `scans_incomplete` (409) before all three images are in; otherwise
    /// as [`SessionService::restart`].
    pub async fn confirm(&self, id: &SessionId) -> Result<Session> {
        self.apply(id, Action::Confirm, |s| {
            let missing = s.missing();
            if missing.is_empty() {
                Ok(())
            } else {
                let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
                Err(Error::Conflict {
                    code: SCANS_INCOMPLETE,
                    message: format!("missing images: {}", names.join(", ")),
                })
            }
        })
        .await
    }

    /// Cancels the session and deletes its images.
    ///
    /// # Errors
    /// As [`SessionService::restart`].
    pub async fn cancel(&self, id: &SessionId) -> Result<Session> {
        let session = self.apply(id, Action::Cancel, |_| Ok(())).await?;
        self.delete_images(id).await?;
        metrics::counter!("veriface_sessions_total", "event" => "cancelled").increment(1);
        Ok(session)
    }

    /// Deletes every image of the session (missing ones are fine).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the blob store fails.
    pub async fn delete_images(&self, id: &SessionId) -> Result<()> {
        for side in Side::ALL {
            self.blobs.delete(&blob_key(id, side)).await?;
        }
        Ok(())
    }

    /// Expires every open session past its expiry and deletes its images;
    /// returns how many.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database or the blob store fails.
    pub async fn expire_due(&self) -> Result<usize> {
        let ids = self.repo.expire_sessions(Timestamp::now()).await?;
        for id in &ids {
            self.delete_images(id).await?;
        }
        if !ids.is_empty() {
            metrics::counter!("veriface_sessions_total", "event" => "expired")
                .increment(ids.len() as u64);
        }
        Ok(ids.len())
    }

    /// Reads a session, expiring it first when it is open and due.
    async fn load(&self, id: &SessionId) -> Result<Session> {
        let session = self.repo.find_session(id).await?.ok_or_else(not_found)?;
        let now = Timestamp::now();
        if session.state.is_open() && session.expires_at <= now {
            if self
                .repo
                .set_state(id, session.state, SessionState::Expired, now)
                .await?
            {
                self.delete_images(id).await?;
            }
            return self.repo.find_session(id).await?.ok_or_else(not_found);
        }
        Ok(session)
    }

    /// Applies `action` with a compare-and-set, after `check` accepts the
    /// session; retries when another writer moved the session first.
    async fn apply(
        &self,
        id: &SessionId,
        action: Action,
        check: impl Fn(&Session) -> Result<()>,
    ) -> Result<Session> {
        for _ in 0..3 {
            let session = self.load(id).await?;
            match transition(session.state, action)? {
                Transition::Stay => return Ok(session),
                Transition::To(next) => {
                    check(&session)?;
                    if self
                        .repo
                        .set_state(id, session.state, next, Timestamp::now())
                        .await?
                    {
                        return self.load(id).await;
                    }
                }
            }
        }
        let session = self.load(id).await?;
        Err(conflict(session.state, action))
    }
}

/// Checks a webhook URL: `http://` or `https://` with a host, at most
/// 2048 bytes, no whitespace or control characters.
///
/// # Errors
/// [`Error::InvalidInput`] with code [`INVALID_WEBHOOK_URL`].
pub fn check_webhook_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.and_then(|r| r.split(['/', '?', '#']).next());
    let ok = url.len() <= 2048
        && host.is_some_and(|h| !h.is_empty() && !h.starts_with(':') && !h.contains('@'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            code: INVALID_WEBHOOK_URL,
            message:
                "`webhook_url` must be an http:// or https:// URL with a host (no credentials)"
                    .to_string(),
        })
    }
}

fn conflict(state: SessionState, action: Action) -> Error {
    Error::Conflict {
        code: INVALID_TRANSITION,
        message: format!("cannot {} a session that is {state}", action.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_must_be_http_with_a_host_and_no_credentials() {
        for ok in ["http://127.0.0.1:8080/hook", "https://example.com/a?b=c"] {
            assert!(check_webhook_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.com/",
            "http://",
            "https:///path",
            "http://user:pw@example.com/",
            "http://exa mple.com/",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                check_webhook_url(bad).unwrap_err().code(),
                INVALID_WEBHOOK_URL,
                "{bad}"
            );
        }
    }
}
