//! Cache-aside in front of an [`IdentityRepo`]: reads try the cache, then
//! the database (filling the cache); every write goes to the database and
//! then invalidates the subject's cache entries.

use std::sync::Arc;

use async_trait::async_trait;

use super::ports::{Cache, CacheHealth, IdentityRepo};
use super::types::{
    AuditEntry, EnrolmentRecord, ErasureReport, ModelId, NewAuditEntry, RecordOutcome,
    SubjectStatus, Template, TemplateWatermark, Username,
};
use crate::Result;

/// An [`IdentityRepo`] that consults a [`Cache`] for subject statuses and
/// per-subject templates.
///
/// Invalidation happens after the database write commits. A reader that
/// loaded the old row just before the write may put it back in the cache
/// after the invalidation; the entry's TTL bounds how long such a stale
/// entry can live. Index loads and the audit log bypass the cache.
#[derive(Debug, Clone)]
pub struct CachedRepo {
    repo: Arc<dyn IdentityRepo>,
    cache: Arc<dyn Cache>,
}

impl CachedRepo {
    /// Wraps `repo` with `cache`.
    pub fn new(repo: Arc<dyn IdentityRepo>, cache: Arc<dyn Cache>) -> Self {
        Self { repo, cache }
    }

    /// The cache's health, for `/readyz` and metrics.
    pub fn cache_health(&self) -> CacheHealth {
        self.cache.health()
    }
}

#[async_trait]
impl IdentityRepo for CachedRepo {
    async fn record_enrolment(&self, record: &EnrolmentRecord) -> Result<RecordOutcome> {
        let out = self.repo.record_enrolment(record).await;
        // Invalidate even when the write failed: it may have committed
        // before the error reached us.
        self.cache.invalidate(&record.username).await;
        out
    }

    async fn is_recorded(&self, idempotency_key: &str) -> Result<bool> {
        self.repo.is_recorded(idempotency_key).await
    }

    async fn find_subject(&self, username: &Username) -> Result<Option<SubjectStatus>> {
        if let Some(hit) = self.cache.get_subject(username).await {
            return Ok(Some(hit));
        }
        let found = self.repo.find_subject(username).await?;
        if let Some(status) = &found {
            self.cache.put_subject(status).await;
        }
        Ok(found)
    }

    async fn list_templates(&self, username: &Username, model: &ModelId) -> Result<Vec<Template>> {
        if let Some(hit) = self.cache.get_templates(username, model).await {
            return Ok(hit);
        }
        let found = self.repo.list_templates(username, model).await?;
        if !found.is_empty() {
            self.cache.put_templates(username, model, &found).await;
        }
        Ok(found)
    }

    async fn list_templates_after(
        &self,
        model: &ModelId,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Template>> {
        self.repo.list_templates_after(model, after_id, limit).await
    }

    async fn template_watermark(&self, model: &ModelId) -> Result<TemplateWatermark> {
        self.repo.template_watermark(model).await
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()> {
        self.repo.append_audit(entry).await
    }

    async fn list_audit(&self, username: &Username) -> Result<Vec<AuditEntry>> {
        self.repo.list_audit(username).await
    }

    async fn delete_subject(&self, username: &Username) -> Result<ErasureReport> {
        let out = self.repo.delete_subject(username).await;
        self.cache.invalidate(username).await;
        out
    }

    async fn ping(&self) -> Result<()> {
        self.repo.ping().await
    }

    fn backend(&self) -> &'static str {
        self.repo.backend()
    }
}
