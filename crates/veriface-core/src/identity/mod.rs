//! The identity store's domain: subjects keyed by username, their face
//! templates, the `verified` flag with the reason when not verified, an
//! append-only audit log of decisions, the durable job queue of the embedded
//! worker and the cache; plus the cache-aside decorator.
//!
//! The SQL backends (SQLite, PostgreSQL) and the Redis cache live in
//! `veriface-store`; the use-cases that drive them in [`crate::enrol`] and
//! [`crate::search`].

pub mod cached;
pub mod ports;
pub mod types;

pub use cached::CachedRepo;
pub use ports::{
    Cache, CacheHealth, CacheState, IdentityRepo, Job, JobId, JobQueue, JobState, JobStatus,
    NewJob, NoCache,
};
pub use types::{
    embedding_from_bytes, embedding_to_bytes, AuditAction, AuditEntry, EnrolDecision,
    EnrolmentRecord, ErasureReport, ModelId, NewAuditEntry, NewTemplate, RecordOutcome, SourceHash,
    SubjectStatus, Template, TemplateWatermark, Timestamp, Username,
};
