//! The identity store's ports: the repository of subjects and templates,
//! the durable job queue of the embedded worker, and the cache.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use super::types::{
    AuditEntry, EnrolmentRecord, ErasureReport, ModelId, NewAuditEntry, RecordOutcome,
    SubjectStatus, Template, TemplateWatermark, Timestamp, Username,
};
use crate::Result;

/// Subjects, their face templates and the audit log.
///
/// Implementations must make [`IdentityRepo::record_enrolment`] atomic and
/// idempotent per key, and keep the audit log append-only. All errors are
/// [`crate::Error::Unavailable`] (the database is down: retry) or
/// [`crate::Error::Internal`] (a corrupt row) unless stated otherwise.
#[async_trait]
pub trait IdentityRepo: Send + Sync + std::fmt::Debug {
    /// Records one enrolment decision in one transaction: creates or
    /// updates the subject, stores the accepted template (at most one per
    /// subject and source photo), remembers the idempotency key and appends
    /// the audit entry. A key seen before changes nothing and answers
    /// [`RecordOutcome::Duplicate`].
    ///
    /// # Errors
    /// As the trait says.
    async fn record_enrolment(&self, record: &EnrolmentRecord) -> Result<RecordOutcome>;

    /// Whether a delivery with this idempotency key was already recorded
    /// (lets a worker skip a redelivered message whose file is gone).
    ///
    /// # Errors
    /// As the trait says.
    async fn is_recorded(&self, idempotency_key: &str) -> Result<bool>;

    /// The subject's status, if it exists.
    ///
    /// # Errors
    /// As the trait says.
    async fn find_subject(&self, username: &Username) -> Result<Option<SubjectStatus>>;

    /// The subject's templates of `model`, oldest first.
    ///
    /// # Errors
    /// As the trait says.
    async fn list_templates(&self, username: &Username, model: &ModelId) -> Result<Vec<Template>>;

    /// Up to `limit` templates of `model` with ids above `after_id`, by id:
    /// pages for loading the 1:N search index.
    ///
    /// # Errors
    /// As the trait says.
    async fn list_templates_after(
        &self,
        model: &ModelId,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Template>>;

    /// The highest template id and the template count of `model`.
    ///
    /// # Errors
    /// As the trait says.
    async fn template_watermark(&self, model: &ModelId) -> Result<TemplateWatermark>;

    /// Appends an audit entry.
    ///
    /// # Errors
    /// As the trait says.
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()>;

    /// The audit entries about a subject (by its audit key), oldest first;
    /// they outlive the subject's erasure.
    ///
    /// # Errors
    /// As the trait says.
    async fn list_audit(&self, username: &Username) -> Result<Vec<AuditEntry>>;

    /// Erases the subject: its row, templates, idempotency keys and queued
    /// jobs with their images, and appends an `erase` audit entry, in one
    /// transaction.
    ///
    /// # Errors
    /// As the trait says.
    async fn delete_subject(&self, username: &Username) -> Result<ErasureReport>;

    /// Checks that the database answers (for `/readyz`).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`].
    async fn ping(&self) -> Result<()>;

    /// A short name for logs and `/readyz` (`"sqlite"`, `"postgres"`).
    fn backend(&self) -> &'static str;
}

/// Identifies a queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct JobId(pub i64);

/// An enrolment to run later.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Whom to enrol.
    pub username: Username,
    /// The photo, kept in the queue row until the job finishes.
    pub image: Bytes,
}

/// A job claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Whom to enrol.
    pub username: Username,
    /// The photo.
    pub image: Bytes,
    /// Claims so far, this one included.
    pub attempts: u32,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Claimed; the lease says until when.
    Running,
    /// Finished (the enrolment decision, accepted or rejected, is recorded).
    Done,
    /// Gave up after an error that retrying did not cure.
    Failed,
}

impl JobState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    ///
    /// # Errors
    /// [`crate::Error::Internal`] for an unknown name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "done" => Ok(JobState::Done),
            "failed" => Ok(JobState::Failed),
            _ => Err(crate::Error::Internal(
                format!("unknown job state {s:?} in store").into(),
            )),
        }
    }
}

/// A job as seen from outside (never the image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    /// Its id.
    pub id: JobId,
    /// Whom it enrols.
    pub username: Username,
    /// Where it is.
    pub state: JobState,
    /// Claims so far.
    pub attempts: u32,
    /// Reason code of the outcome or the last failure.
    pub reason: Option<String>,
    /// Enqueued.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// The embedded durable queue: enrolment jobs in a database table, so that
/// `veriface serve` needs no broker and loses nothing across a restart.
///
/// A job is claimed with a lease; a worker that dies leaves it `running`
/// until [`JobQueue::requeue_expired`] puts it back. Processing must
/// therefore be idempotent (the enrolment use-case keys on `job:<id>`).
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Stores a job.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`].
    async fn enqueue(&self, job: NewJob) -> Result<JobId>;

    /// Takes the oldest ready job, marking it running until now + `lease`.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`].
    async fn claim(&self, lease: Duration) -> Result<Option<Job>>;

    /// Marks a job done with its outcome code and drops its image.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`].
    async fn complete(&self, id: JobId, outcome: &str) -> Result<()>;

    /// Records a failed attempt: back to the queue after `retry_after`, or,
    /// with `None`, failed for good (its image dropped).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`].
    async fn fail(&self, id: JobId, reason: &str, retry_after: Option<Duration>) -> Result<()>;

    /// Puts running jobs whose lease has expired back in the queue; returns
    /// how many.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`].
    async fn requeue_expired(&self) -> Result<u64>;

    /// A job's status.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`].
    async fn find_job(&self, id: JobId) -> Result<Option<JobStatus>>;
}

/// Whether the cache works; for `/readyz` details and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheState {
    /// No cache configured.
    Disabled,
    /// Answering.
    Up,
    /// Unreachable: reads and writes go to the database only.
    Down,
}

/// A cache's health and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheHealth {
    /// `"redis"` or `"none"`.
    pub backend: &'static str,
    /// Up, down or disabled.
    pub state: CacheState,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that fell through to the database.
    pub misses: u64,
    /// Operations that failed (each counted once; the caller fell back).
    pub errors: u64,
}

/// A read-through cache of subject statuses and templates.
///
/// It is an optimisation only: every method swallows its own failures
/// (answering "miss" and recording them in [`Cache::health`]), so the
/// service keeps working from the database when the cache is down.
#[async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug {
    /// A cached status.
    async fn get_subject(&self, username: &Username) -> Option<SubjectStatus>;
    /// Caches a status.
    async fn put_subject(&self, status: &SubjectStatus);
    /// Cached templates of `model`.
    async fn get_templates(&self, username: &Username, model: &ModelId) -> Option<Vec<Template>>;
    /// Caches templates of `model`.
    async fn put_templates(&self, username: &Username, model: &ModelId, templates: &[Template]);
    /// Forgets everything cached about the subject; called after every
    /// write that concerns it.
    async fn invalidate(&self, username: &Username);
    /// Health and counters.
    fn health(&self) -> CacheHealth;
}

/// The cache to use when none is configured: always a miss.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCache;

#[async_trait]
impl Cache for NoCache {
    async fn get_subject(&self, _: &Username) -> Option<SubjectStatus> {
        None
    }
    async fn put_subject(&self, _: &SubjectStatus) {}
    async fn get_templates(&self, _: &Username, _: &ModelId) -> Option<Vec<Template>> {
        None
    }
    async fn put_templates(&self, _: &Username, _: &ModelId, _: &[Template]) {}
    async fn invalidate(&self, _: &Username) {}
    fn health(&self) -> CacheHealth {
        CacheHealth {
            backend: "none",
            state: CacheState::Disabled,
            hits: 0,
            misses: 0,
            errors: 0,
        }
    }
}
