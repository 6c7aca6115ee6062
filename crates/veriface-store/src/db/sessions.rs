//! [`SessionRepo`] in SQL: the `verification_sessions` table (migration
//! 0002). Every change is one `UPDATE ... WHERE state ...`, so the state
//! check and the write are atomic on both backends.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use veriface_core::identity::Timestamp;
use veriface_core::session::types::{Decision, NewSession, PendingWebhook};
use veriface_core::session::{Session, SessionId, SessionRepo, SessionState, Side};
use veriface_core::{Error, Result};

use super::{col, db_error, Backend, Database};

/// The columns every query that returns a session reads.
const COLUMNS: &str = "id, state, has_id_front, has_id_back, has_selfie, webhook_url, \
     created_at, updated_at, expires_at, attempts, decision, webhook_attempts";

/// `webhook_state` for a session that has just reached a final state: due
/// now when it has a webhook URL.
const WEBHOOK_DUE: &str =
    "webhook_state = CASE WHEN webhook_url IS NULL THEN NULL ELSE 'pending' END";

/// The open states, as SQL.
const OPEN: &str = "('created', 'collecting')";

fn flag_column(side: Side) -> &'static str {
    match side {
        Side::IdFront => "has_id_front",
        Side::IdBack => "has_id_back",
        Side::Selfie => "has_selfie",
    }
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn session_from_row(row: &AnyRow) -> Result<Session> {
    let id: String = col(row, "id")?;
    let state: String = col(row, "state")?;
    let mut scans = Vec::new();
    for side in Side::ALL {
        let has: i64 = col(row, flag_column(side))?;
        if has != 0 {
            scans.push(side);
        }
    }
    let decision: Option<String> = col(row, "decision")?;
    let decision = decision
        .map(|d| serde_json::from_str::<Decision>(&d))
        .transpose()
        .map_err(|e| Error::Internal(Box::new(e)))?;
    Ok(Session {
        id: SessionId::parse(&id).map_err(|e| Error::Internal(Box::new(e)))?,
        state: SessionState::parse(&state)?,
        scans,
        webhook_url: col(row, "webhook_url")?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        updated_at: Timestamp::from_millis(col(row, "updated_at")?),
        expires_at: Timestamp::from_millis(col(row, "expires_at")?),
        attempts: count(col(row, "attempts")?),
        decision,
    })
}

/// `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent processors (or
/// server replicas) pass over a row another one is taking; SQLite runs one
/// writer at a time, so its `UPDATE ... RETURNING` is already exclusive.
fn skip_locked(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    }
}

#[async_trait]
impl SessionRepo for Database {
    async fn insert_session(&self, new: NewSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO verification_sessions \
             (id, state, webhook_url, created_at, updated_at, expires_at) \
             VALUES ($1, 'created', $2, $3, $3, $4)",
        )
        .bind(new.id.as_str())
        .bind(new.webhook_url)
        .bind(new.created_at.as_millis())
        .bind(new.expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM verification_sessions WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn set_state(
        &self,
        id: &SessionId,
        from: SessionState,
        to: SessionState,
        now: Timestamp,
    ) -> Result<bool> {
        let webhook = if to.is_final() {
            format!(", {WEBHOOK_DUE}, webhook_next_at = $4")
        } else {
            String::new()
        };
        let done = sqlx::query(&format!(
            "UPDATE verification_sessions SET state = $3, lease_until = NULL, updated_at = $4{webhook} \
             WHERE id = $1 AND state = $2"
        ))
        .bind(id.as_str())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_scan(&self, id: &SessionId, side: Side, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE verification_sessions SET state = 'collecting', {} = 1, updated_at = $2 \
             WHERE id = $1 AND state IN {OPEN} AND expires_at > $2",
            flag_column(side)
        ))
        .bind(id.as_str())
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn clear_scans(&self, id: &SessionId, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE verification_sessions SET state = 'created', has_id_front = 0, \
             has_id_back = 0, has_selfie = 0, updated_at = $2 \
             WHERE id = $1 AND state IN {OPEN} AND expires_at > $2"
        ))
        .bind(id.as_str())
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_session(&self, now: Timestamp, lease: Duration) -> Result<Option<Session>> {
        let row = sqlx::query(&format!(
            "UPDATE verification_sessions \
             SET state = 'processing', attempts = attempts + 1, lease_until = $1, updated_at = $2 \
             WHERE id = (SELECT id FROM verification_sessions \
                         WHERE state = 'submitted' OR (state = 'processing' AND lease_until < $2) \
                         ORDER BY updated_at, id LIMIT 1{}) \
             RETURNING {COLUMNS}",
            skip_locked(self.backend)
        ))
        .bind(now.plus(lease).as_millis())
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn finish_session(
        &self,
        id: &SessionId,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<bool> {
        let json = serde_json::to_string(decision).map_err(|e| Error::Internal(Box::new(e)))?;
        let done = sqlx::query(&format!(
            "UPDATE verification_sessions SET state = $2, decision = $3, lease_until = NULL, \
             updated_at = $4, {WEBHOOK_DUE}, webhook_next_at = $4 \
             WHERE id = $1 AND state = 'processing'"
        ))
        .bind(id.as_str())
        .bind(decision.outcome.state().as_str())
        .bind(json)
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire_sessions(&self, now: Timestamp) -> Result<Vec<SessionId>> {
        let rows = sqlx::query(&format!(
            "UPDATE verification_sessions SET state = 'expired', updated_at = $1, \
             {WEBHOOK_DUE}, webhook_next_at = $1 \
             WHERE state IN {OPEN} AND expires_at <= $1 RETURNING id"
        ))
        .bind(now.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                let id: String = col(r, "id")?;
                SessionId::parse(&id).map_err(|e| Error::Internal(Box::new(e)))
            })
            .collect()
    }

    async fn claim_webhook(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<PendingWebhook>> {
        let row = sqlx::query(&format!(
            "UPDATE verification_sessions \
             SET webhook_next_at = $1, webhook_attempts = webhook_attempts + 1 \
             WHERE id = (SELECT id FROM verification_sessions \
                         WHERE webhook_state = 'pending' AND webhook_next_at <= $2 \
                         ORDER BY webhook_next_at, id LIMIT 1{}) \
             RETURNING {COLUMNS}",
            skip_locked(self.backend)
        ))
        .bind(now.plus(lease).as_millis())
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(PendingWebhook {
            session: session_from_row(&row)?,
            attempts: count(col(&row, "webhook_attempts")?),
        }))
    }

    async fn record_webhook(
        &self,
        id: &SessionId,
        delivered: bool,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        let (state, next) = match (delivered, retry_at) {
            (true, _) => ("delivered", None),
            (false, Some(at)) => ("pending", Some(at.as_millis())),
            (false, None) => ("failed", None),
        };
        sqlx::query(
            "UPDATE verification_sessions SET webhook_state = $2, webhook_next_at = $3, \
             updated_at = $4 WHERE id = $1 AND webhook_state = 'pending'",
        )
        .bind(id.as_str())
        .bind(state)
        .bind(next)
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
