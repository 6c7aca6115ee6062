//! [`JobQueue`] in SQL: the `enrollment_jobs` table.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use veriface_core::identity::{
    Job, JobId, JobQueue, JobState, JobStatus, NewJob, Timestamp, Username,
};
use veriface_core::{Error, Result};

use super::{col, db_error, postgres, sqlite, Backend, Database};

fn parse_username(s: &str) -> Result<Username> {
    Username::parse(s).map_err(|e| Error::Internal(Box::new(e)))
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[async_trait]
impl JobQueue for Database {
    async fn enqueue(&self, job: NewJob) -> Result<JobId> {
        let now = Timestamp::now().as_millis();
        let row = sqlx::query(
            "INSERT INTO enrollment_jobs \
             (username, image, state, attempts, available_at, created_at, updated_at) \
             VALUES ($1, $2, 'queued', 0, $3, $3, $3) RETURNING id",
        )
        .bind(job.username.as_str())
        .bind(job.image.to_vec())
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(JobId(col(&row, "id")?))
    }

    async fn claim(&self, lease: Duration) -> Result<Option<Job>> {
        let now = Timestamp::now();
        let sql = match self.backend {
            Backend::Sqlite => sqlite::CLAIM_JOB,
            Backend::Postgres => postgres::CLAIM_JOB,
        };
        let row = sqlx::query(sql)
            .bind(now.plus(lease).as_millis())
            .bind(now.as_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let username: String = col(&row, "username")?;
        let image: Option<Vec<u8>> = col(&row, "image")?;
        Ok(Some(Job {
            id: JobId(col(&row, "id")?),
            username: parse_username(&username)?,
            image: Bytes::from(image.unwrap_or_default()),
            attempts: attempts(col(&row, "attempts")?),
        }))
    }

    async fn complete(&self, id: JobId, outcome: &str) -> Result<()> {
        sqlx::query(
            "UPDATE enrollment_jobs SET state = 'done', image = NULL, reason = $2, \
             lease_until = NULL, updated_at = $3 WHERE id = $1",
        )
        .bind(id.0)
        .bind(outcome)
        .bind(Timestamp::now().as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn fail(&self, id: JobId, reason: &str, retry_after: Option<Duration>) -> Result<()> {
        let now = Timestamp::now();
        let q = match retry_after {
            Some(after) => sqlx::query(
                "UPDATE enrollment_jobs SET state = 'queued', reason = $2, available_at = $4, \
                 lease_until = NULL, updated_at = $3 WHERE id = $1",
            )
            .bind(id.0)
            .bind(reason)
            .bind(now.as_millis())
            .bind(now.plus(after).as_millis()),
            None => sqlx::query(
                "UPDATE enrollment_jobs SET state = 'failed', image = NULL, reason = $2, \
                 lease_until = NULL, updated_at = $3 WHERE id = $1",
            )
            .bind(id.0)
            .bind(reason)
            .bind(now.as_millis()),
        };
        q.execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn requeue_expired(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE enrollment_jobs SET state = 'queued', lease_until = NULL, updated_at = $1 \
             WHERE state = 'running' AND lease_until < $1",
        )
        .bind(Timestamp::now().as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn find_job(&self, id: JobId) -> Result<Option<JobStatus>> {
        let row = sqlx::query(
            "SELECT username, state, attempts, reason, created_at, updated_at \
             FROM enrollment_jobs WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let username: String = col(&row, "username")?;
        let state: String = col(&row, "state")?;
        Ok(Some(JobStatus {
            id,
            username: parse_username(&username)?,
            state: JobState::parse(&state)?,
            attempts: attempts(col(&row, "attempts")?),
            reason: col(&row, "reason")?,
            created_at: Timestamp::from_millis(col(&row, "created_at")?),
            updated_at: Timestamp::from_millis(col(&row, "updated_at")?),
        }))
    }
}
