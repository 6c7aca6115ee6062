//! The session store's port. Every state change is a compare-and-set on
//! the stored state, so two requests (or a request and the processor)
//! racing on one session cannot both win.

use std::time::Duration;

use async_trait::async_trait;

use super::state::SessionState;
use super::types::{Decision, NewSession, PendingWebhook, Session, SessionId, Side};
use crate::identity::Timestamp;
use crate::Result;

/// Where sessions live (SQLite or PostgreSQL in `veriface-store`).
#[async_trait]
pub trait SessionRepo: Send + Sync + std::fmt::Debug {
    /// Stores a new session in [`SessionState::Created`].
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn insert_session(&self, new: NewSession) -> Result<()>;

    /// The session, if it exists.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>>;

    /// Moves the session from `from` to `to`; false when it was not in
    /// `from` (someone else moved it first).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn set_state(
        &self,
        id: &SessionId,
        from: SessionState,
        to: SessionState,
        now: Timestamp,
    ) -> Result<bool>;

    /// Records `side` as uploaded and moves the session to
    /// [`SessionState::Collecting`], if it is still open (created or
    /// collecting) and unexpired at `now`; false otherwise.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn add_scan(&self, id: &SessionId, side: Side, now: Timestamp) -> Result<bool>;

    /// Forgets every upload and moves the session back to
    /// [`SessionState::Created`], if it is open and unexpired; false
    /// otherwise.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn clear_scans(&self, id: &SessionId, now: Timestamp) -> Result<bool>;

    /// Takes the oldest submitted session (or a processing one whose lease
    /// ran out: its processor died) and marks it processing until
    /// `now + lease`, counting the attempt.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn claim_session(&self, now: Timestamp, lease: Duration) -> Result<Option<Session>>;

    /// Stores the decision and moves a processing session to the
    /// decision's final state; when the session has a webhook, its
    /// delivery becomes due at `now`. False when the session was not
    /// processing.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn finish_session(
        &self,
        id: &SessionId,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<bool>;

    /// Moves every open session whose expiry is at or before `now` to
    /// [`SessionState::Expired`] and returns their ids (to delete their
    /// images).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn expire_sessions(&self, now: Timestamp) -> Result<Vec<SessionId>>;

    /// Takes the oldest due webhook delivery, leasing it until
    /// `now + lease` so that no other sender takes it meanwhile.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn claim_webhook(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<PendingWebhook>>;

    /// Records a delivery attempt: delivered, retried at `retry_at`, or
    /// given up (`retry_at` `None` and not delivered).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the database fails.
    async fn record_webhook(
        &self,
        id: &SessionId,
        delivered: bool,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()>;
}
