//! [`IdentityRepo`] in SQL.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use veriface_core::identity::{
    embedding_from_bytes, embedding_to_bytes, AuditAction, AuditEntry, EnrolDecision,
    EnrolmentRecord, ErasureReport, IdentityRepo, ModelId, NewAuditEntry, RecordOutcome,
    SourceHash, SubjectStatus, Template, TemplateWatermark, Timestamp, Username,
};
use veriface_core::{Error, Result};

use super::{col, db_error, postgres, sqlite, Backend, Database};

const TEMPLATE_COLUMNS: &str =
    "id, username, embedding, model, model_version, source_sha256, created_at";

const INSERT_AUDIT: &str = "INSERT INTO audit_log \
     (subject_key, action, outcome, reason, distance, idempotency_key, created_at) \
     VALUES ($1, $2, $3, $4, CAST($5 AS DOUBLE PRECISION), $6, $7)";

fn template_from_row(row: &AnyRow) -> Result<Template> {
    let username: String = col(row, "username")?;
    let bytes: Vec<u8> = col(row, "embedding")?;
    let hash: String = col(row, "source_sha256")?;
    Ok(Template {
        id: col(row, "id")?,
        username: Username::parse(&username).map_err(|e| Error::Internal(Box::new(e)))?,
        embedding: embedding_from_bytes(&bytes)?,
        model: ModelId {
            name: col(row, "model")?,
            version: col(row, "model_version")?,
        },
        source_sha256: SourceHash::parse(&hash)?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
    })
}

/// Binds an audit entry to [`INSERT_AUDIT`] and runs it on `conn`.
async fn insert_audit(conn: &mut sqlx::AnyConnection, e: &NewAuditEntry, now: i64) -> Result<()> {
    sqlx::query(INSERT_AUDIT)
        .bind(e.username.audit_key())
        .bind(e.action.as_str())
        .bind(e.outcome.as_str())
        .bind(e.reason.as_deref())
        // As text, cast in SQL: sqlx 0.8's Any driver binds a NULL f64 as
        // PostgreSQL float4, and the connection's cached statement then
        // refuses the next non-NULL float8 ("incorrect binary data format
        // in bind parameter 5"). A text parameter has one type either way;
        // Rust's f64 Display round-trips exactly.
        .bind(e.distance.map(|d| d.to_string()))
        .bind(e.idempotency_key.as_deref())
        .bind(now)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl IdentityRepo for Database {
    async fn record_enrolment(&self, r: &EnrolmentRecord) -> Result<RecordOutcome> {
        let now = Timestamp::now().as_millis();
        let user = r.username.as_str();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // The key first: it is a write, so SQLite takes its write lock here
        // (a read first would make a later upgrade fail under contention),
        // and a concurrent duplicate in PostgreSQL waits on the key's index
        // entry and then finds it taken.
        let claimed = sqlx::query(
            "INSERT INTO processed_deliveries (idempotency_key, username, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(r.idempotency_key.as_str())
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await.map_err(db_error)?;
            return Ok(RecordOutcome::Duplicate);
        }
        if let Some(job) = r.job {
            let lock = match self.backend {
                Backend::Sqlite => sqlite::LOCK_JOB,
                Backend::Postgres => postgres::LOCK_JOB,
            };
            let found = sqlx::query(lock)
                .bind(job.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
            if found.is_none() {
                tx.rollback().await.map_err(db_error)?;
                return Ok(RecordOutcome::JobGone);
            }
        }
        sqlx::query(
            "INSERT INTO subjects (username, verified, reason, created_at, updated_at) \
             VALUES ($1, FALSE, NULL, $2, $2) \
             ON CONFLICT (username) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;

        let (template_id, outcome, reason) = match &r.decision {
            EnrolDecision::Accepted(t) => {
                sqlx::query(
                    "INSERT INTO face_templates \
                     (username, embedding, model, model_version, source_sha256, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (username, source_sha256, model, model_version) DO NOTHING",
                )
                .bind(user)
                .bind(embedding_to_bytes(&t.embedding))
                .bind(t.model.name.as_str())
                .bind(t.model.version.as_str())
                .bind(t.source_sha256.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let row = sqlx::query(
                    "SELECT id FROM face_templates WHERE username = $1 AND source_sha256 = $2 \
                     AND model = $3 AND model_version = $4",
                )
                .bind(user)
                .bind(t.source_sha256.as_str())
                .bind(t.model.name.as_str())
                .bind(t.model.version.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                let id: i64 = col(&row, "id")?;
                sqlx::query(
                    "UPDATE subjects SET verified = TRUE, reason = NULL, \
                     enrolled_at = COALESCE(enrolled_at, $2) WHERE username = $1",
                )
                .bind(user)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                (Some(id), "verified", None)
            }
            EnrolDecision::Rejected { reason } => {
                // A subject with a template stays verified; the rejection
                // is in the audit log.
                sqlx::query(
                    "UPDATE subjects SET reason = $2 WHERE username = $1 AND verified = FALSE",
                )
                .bind(user)
                .bind(reason.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                (None, "rejected", Some(reason.clone()))
            }
        };
        let audit = NewAuditEntry {
            username: r.username.clone(),
            action: AuditAction::Enrol,
            outcome: outcome.to_string(),
            reason,
            distance: None,
            idempotency_key: Some(r.idempotency_key.clone()),
        };
        insert_audit(&mut tx, &audit, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(RecordOutcome::Recorded { template_id })
    }

    async fn is_recorded(&self, idempotency_key: &str) -> Result<bool> {
        let row =
            sqlx::query("SELECT 1 AS one FROM processed_deliveries WHERE idempotency_key = $1")
                .bind(idempotency_key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(row.is_some())
    }

    async fn find_subject(&self, username: &Username) -> Result<Option<SubjectStatus>> {
        // CASE turns PostgreSQL's BOOLEAN and SQLite's 0/1 into one integer
        // type the Any driver decodes on both.
        let row = sqlx::query(
            "SELECT CASE WHEN s.verified THEN 1 ELSE 0 END AS verified, s.reason, \
             s.created_at, s.updated_at, s.enrolled_at, \
             (SELECT COUNT(*) FROM face_templates t WHERE t.username = s.username) AS templates \
             FROM subjects s WHERE s.username = $1",
        )
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let verified: i64 = col(&row, "verified")?;
        let templates: i64 = col(&row, "templates")?;
        let enrolled_at: Option<i64> = col(&row, "enrolled_at")?;
        Ok(Some(SubjectStatus {
            username: username.clone(),
            verified: verified != 0,
            reason: col(&row, "reason")?,
            template_count: u32::try_from(templates).unwrap_or(u32::MAX),
            created_at: Timestamp::from_millis(col(&row, "created_at")?),
            updated_at: Timestamp::from_millis(col(&row, "updated_at")?),
            enrolled_at: enrolled_at.map(Timestamp::from_millis),
        }))
    }

    async fn list_templates(&self, username: &Username, model: &ModelId) -> Result<Vec<Template>> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM face_templates \
             WHERE username = $1 AND model = $2 AND model_version = $3 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(username.as_str())
            .bind(model.name.as_str())
            .bind(model.version.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(template_from_row).collect()
    }

    async fn list_templates_after(
        &self,
        model: &ModelId,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Template>> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM face_templates \
             WHERE model = $1 AND model_version = $2 AND id > $3 ORDER BY id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(model.name.as_str())
            .bind(model.version.as_str())
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(template_from_row).collect()
    }

    async fn template_watermark(&self, model: &ModelId) -> Result<TemplateWatermark> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(id), 0) AS max_id, COUNT(*) AS n FROM face_templates \
             WHERE model = $1 AND model_version = $2",
        )
        .bind(model.name.as_str())
        .bind(model.version.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        let n: i64 = col(&row, "n")?;
        Ok(TemplateWatermark {
            max_id: col(&row, "max_id")?,
            count: u64::try_from(n).unwrap_or(0),
        })
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        insert_audit(&mut conn, entry, Timestamp::now().as_millis()).await
    }

    async fn list_audit(&self, username: &Username) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, subject_key, action, outcome, reason, distance, idempotency_key, \
             created_at FROM audit_log WHERE subject_key = $1 ORDER BY id",
        )
        .bind(username.audit_key())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let action: String = col(row, "action")?;
                Ok(AuditEntry {
                    id: col(row, "id")?,
                    subject_key: col(row, "subject_key")?,
                    action: AuditAction::parse(&action)?,
                    outcome: col(row, "outcome")?,
                    reason: col(row, "reason")?,
                    distance: col(row, "distance")?,
                    idempotency_key: col(row, "idempotency_key")?,
                    created_at: Timestamp::from_millis(col(row, "created_at")?),
                })
            })
            .collect()
    }

    async fn delete_subject(&self, username: &Username) -> Result<ErasureReport> {
        let user = username.as_str();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let mut delete = async |sql: &str| -> Result<u64> {
            Ok(sqlx::query(sql)
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected())
        };
        let jobs = delete("DELETE FROM enrollment_jobs WHERE username = $1").await?;
        let templates = delete("DELETE FROM face_templates WHERE username = $1").await?;
        delete("DELETE FROM processed_deliveries WHERE username = $1").await?;
        let subject = delete("DELETE FROM subjects WHERE username = $1").await? > 0;
        let report = ErasureReport {
            subject,
            templates,
            jobs,
        };
        if subject || jobs > 0 {
            let audit = NewAuditEntry {
                username: username.clone(),
                action: AuditAction::Erase,
                outcome: "erased".to_string(),
                reason: None,
                distance: None,
                idempotency_key: None,
            };
            insert_audit(&mut tx, &audit, Timestamp::now().as_millis()).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(report)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1 AS one")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        self.backend.name()
    }
}
