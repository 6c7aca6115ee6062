//! The identity use-cases: enrol a subject from a photo, verify a selfie
//! against a subject (1:1), search all subjects for a face (1:N), read a
//! subject's status, erase a subject.
//!
//! Face work is [`veriface_vision`] directly: decode with limits, detect,
//! landmarks, descriptor, all synchronous and CPU-bound, so it runs on
//! tokio's blocking pool (optionally behind a semaphore shared with the
//! HTTP layer's inference pool).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Semaphore;
use veriface_vision::compare::{similarity, Comparison, DEFAULT_THRESHOLD};
use veriface_vision::decode::{decode, DecodeLimits};
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::engine::{DetectOptions, Embedding, Face, FaceEngine};

use crate::identity::{
    AuditAction, EnrolDecision, EnrolmentRecord, ErasureReport, IdentityRepo, JobId, ModelId,
    NewAuditEntry, NewTemplate, RecordOutcome, SourceHash, SubjectStatus, Username,
};
use crate::search::SearchIndex;
use crate::{Error, Result};

/// Settings of the identity use-cases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdentityConfig {
    /// Limits checked before decoding a photo.
    pub limits: DecodeLimits,
    /// Detector settings.
    pub detect: DetectOptions,
    /// Default match threshold (Euclidean distance) for 1:1 and 1:N.
    pub threshold: f32,
    /// At enrolment, another face whose box side is at least this fraction
    /// of the largest face's side makes the photo ambiguous
    /// (`multiple_faces`); smaller faces are background and ignored.
    pub competing_face_ratio: f32,
    /// The 1:N index checks the store for new templates at most this often.
    pub index_refresh: Duration,
    /// Largest `k` a search may ask for.
    pub max_results: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            limits: DecodeLimits::default(),
            detect: DetectOptions::default(),
            threshold: DEFAULT_THRESHOLD,
            competing_face_ratio: 0.5,
            index_refresh: Duration::from_secs(1),
            max_results: 100,
        }
    }
}

/// A photo to enrol.
#[derive(Debug, Clone)]
pub struct EnrolRequest {
    /// Whom.
    pub username: Username,
    /// The encoded photo.
    pub image: Bytes,
    /// Identifies the delivery, so a redelivery changes nothing
    /// (`kafka:<topic>:<partition>:<offset>`, `job:<id>`).
    pub idempotency_key: String,
    /// The queued job this request runs, if any (see
    /// [`EnrolmentRecord::job`]).
    pub job: Option<JobId>,
}

/// What an enrolment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum EnrolOutcome {
    /// One usable face: its template is stored and the subject verified.
    Enrolled {
        /// The stored template.
        template_id: i64,
    },
    /// Recorded as `verified = false` with this reason code.
    Rejected {
        /// `no_face_detected`, `multiple_faces`, `invalid_image`,
        /// `unsupported_image_format`, `image_too_large`, ...
        reason: String,
    },
    /// This delivery was recorded before; nothing changed.
    AlreadyRecorded,
    /// The job was deleted (its subject erased) while it ran; nothing was
    /// recorded.
    Cancelled,
}

/// The answer of a 1:1 verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// `distance <= threshold`.
    #[serde(rename = "match")]
    pub is_match: bool,
    /// Distance to the subject's closest template.
    pub distance: f32,
    /// Rescaled score, see [`veriface_vision::compare::similarity`].
    pub similarity: f32,
    /// The threshold used.
    pub threshold: f32,
    /// Templates compared.
    pub templates: usize,
    /// Faces found in the selfie (the largest was used).
    pub faces: usize,
}

/// One 1:N result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// Who.
    pub username: Username,
    /// Distance to their closest template.
    pub distance: f32,
    /// Rescaled score.
    pub similarity: f32,
}

/// The answer of a 1:N search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    /// Closest first, at most `k`, all within the threshold.
    pub results: Vec<SearchResult>,
    /// The threshold used.
    pub threshold: f32,
    /// Templates searched.
    pub searched: usize,
    /// Faces found in the probe (the largest was used).
    pub faces: usize,
}

/// The identity use-cases over a repository and a face engine.
#[derive(Debug)]
pub struct IdentityService {
    repo: Arc<dyn IdentityRepo>,
    engine: Arc<FaceEngine>,
    config: IdentityConfig,
    model: ModelId,
    index: SearchIndex,
    inference: Option<Arc<Semaphore>>,
}

impl IdentityService {
    /// Builds the service. `repo` is usually a [`crate::identity::CachedRepo`].
    pub fn new(
        repo: Arc<dyn IdentityRepo>,
        engine: Arc<FaceEngine>,
        config: IdentityConfig,
    ) -> Self {
        let model = ModelId::current();
        Self {
            index: SearchIndex::new(model.clone(), config.index_refresh),
            repo,
            engine,
            config,
            model,
            inference: None,
        }
    }

    /// Bounds concurrent face analyses by `permits` (share the HTTP layer's
    /// inference semaphore so both queue for the same cores).
    pub fn with_inference_limit(mut self, permits: Arc<Semaphore>) -> Self {
        self.inference = Some(permits);
        self
    }

    /// The repository.
    pub fn repo(&self) -> &Arc<dyn IdentityRepo> {
        &self.repo
    }

    /// The model whose templates this service stores and compares.
    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// The settings.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Enrols a subject: exactly one usable face stores a template and sets
    /// `verified = true`; otherwise `verified = false` with the reason code.
    /// Either way the decision is audited, atomically with the idempotency
    /// key, so a redelivered request answers [`EnrolOutcome::AlreadyRecorded`].
    ///
    /// # Errors
    /// Only failures that are not the photo's fault:
    /// [`Error::Unavailable`] (database) and [`Error::Internal`]/[`Error::Engine`];
    /// all are worth a retry.
    pub async fn enrol(&self, req: EnrolRequest) -> Result<EnrolOutcome> {
        if self.repo.is_recorded(&req.idempotency_key).await? {
            return Ok(EnrolOutcome::AlreadyRecorded);
        }
        let source = SourceHash::of(&req.image);
        let decision = match self.analyze(req.image, "image").await {
            Ok((faces, _)) if faces.is_empty() => rejected("no_face_detected"),
            Ok((faces, img)) => match self.single_usable_face(&faces) {
                Some(face) => {
                    let embedding = self.embed(img, face.clone()).await?;
                    EnrolDecision::Accepted(NewTemplate {
                        embedding,
                        model: self.model.clone(),
                        source_sha256: source.clone(),
                    })
                }
                None => rejected("multiple_faces"),
            },
            Err(e @ Error::Image { .. }) => rejected(e.code()),
            Err(e) => return Err(e),
        };
        let record = EnrolmentRecord {
            username: req.username,
            idempotency_key: req.idempotency_key,
            source_sha256: Some(source),
            decision,
            job: req.job,
        };
        match self.repo.record_enrolment(&record).await? {
            RecordOutcome::Duplicate => Ok(EnrolOutcome::AlreadyRecorded),
            RecordOutcome::JobGone => Ok(EnrolOutcome::Cancelled),
            RecordOutcome::Recorded { template_id } => Ok(match (&record.decision, template_id) {
                (EnrolDecision::Accepted(_), Some(template_id)) => {
                    self.index.mark_stale().await;
                    EnrolOutcome::Enrolled { template_id }
                }
                (EnrolDecision::Rejected { reason }, _) => EnrolOutcome::Rejected {
                    reason: reason.clone(),
                },
                (EnrolDecision::Accepted(_), None) => {
                    return Err(Error::Internal(
                        "store accepted a template without returning its id".into(),
                    ))
                }
            }),
        }
    }

    /// Records a rejection that happened before any photo was read (the
    /// worker's "file not found" for a well-formed message, for instance).
    ///
    /// # Errors
    /// As [`IdentityService::enrol`].
    pub async fn reject(
        &self,
        username: Username,
        idempotency_key: String,
        reason: &str,
    ) -> Result<EnrolOutcome> {
        let record = EnrolmentRecord {
            username,
            idempotency_key,
            source_sha256: None,
            decision: rejected(reason),
            job: None,
        };
        Ok(match self.repo.record_enrolment(&record).await? {
            RecordOutcome::Duplicate => EnrolOutcome::AlreadyRecorded,
            RecordOutcome::JobGone => EnrolOutcome::Cancelled,
            RecordOutcome::Recorded { .. } => EnrolOutcome::Rejected {
                reason: reason.to_string(),
            },
        })
    }

    /// The subject's status.
    ///
    /// # Errors
    /// [`Error::NotFound`] (`subject_not_found`), or the repository's.
    pub async fn status(&self, username: &Username) -> Result<SubjectStatus> {
        self.repo
            .find_subject(username)
            .await?
            .ok_or(Error::NotFound {
                code: "subject_not_found",
                what: "subject",
            })
    }

    /// 1:1: is the largest face of `selfie` the enrolled subject? Compares
    /// with every stored template of the current model and decides on the
    /// closest; the decision is audited.
    ///
    /// # Errors
    /// [`Error::NotFound`] (`subject_not_found`), [`Error::Conflict`]
    /// (`subject_not_verified`: no template to compare with), the photo's
    /// errors ([`Error::Image`], [`Error::NoFace`]) and the repository's.
    pub async fn verify(
        &self,
        username: &Username,
        selfie: Bytes,
        threshold: Option<f32>,
    ) -> Result<Verification> {
        let threshold = self.threshold(threshold)?;
        self.status(username).await?;
        let templates = self.repo.list_templates(username, &self.model).await?;
        if templates.is_empty() {
            return Err(Error::Conflict {
                code: "subject_not_verified",
                message: "the subject has no enrolled face template".to_string(),
            });
        }
        let (probe, faces) = self.probe(selfie, "image").await?;
        let distance = templates
            .iter()
            .map(|t| probe.distance(&t.embedding))
            .fold(f32::INFINITY, f32::min);
        let c = Comparison::from_distance(distance, threshold);
        self.repo
            .append_audit(&NewAuditEntry {
                username: username.clone(),
                action: AuditAction::Verify,
                outcome: if c.is_match { "match" } else { "no_match" }.to_string(),
                reason: None,
                distance: Some(f64::from(distance)),
                idempotency_key: None,
            })
            .await?;
        Ok(Verification {
            is_match: c.is_match,
            distance: c.distance,
            similarity: c.similarity,
            threshold,
            templates: templates.len(),
            faces,
        })
    }

    /// 1:N: the `k` enrolled subjects closest to the largest face of
    /// `image`, within `threshold`, closest first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`invalid_search`) for `k` of 0 or above
    /// the configured maximum or a bad threshold, the photo's errors and
    /// the repository's.
    pub async fn search(
        &self,
        image: Bytes,
        k: usize,
        threshold: Option<f32>,
    ) -> Result<SearchResults> {
        let threshold = self.threshold(threshold)?;
        if k == 0 || k > self.config.max_results {
            return Err(Error::InvalidInput {
                code: "invalid_search",
                message: format!("k must be 1 to {}", self.config.max_results),
            });
        }
        let (probe, faces) = self.probe(image, "image").await?;
        self.index.refresh(self.repo.as_ref()).await?;
        let hits = self.index.search(probe.0, k, threshold).await?;
        Ok(SearchResults {
            results: hits
                .into_iter()
                .map(|h| SearchResult {
                    similarity: similarity(h.distance, threshold),
                    username: h.username,
                    distance: h.distance,
                })
                .collect(),
            threshold,
            searched: self.index.len(),
            faces,
        })
    }

    /// Erases a subject (templates, keys, queued jobs and their images),
    /// and drops it from this process's search index at once.
    ///
    /// # Errors
    /// The repository's.
    pub async fn erase(&self, username: &Username) -> Result<ErasureReport> {
        let report = self.repo.delete_subject(username).await?;
        self.index.remove_user(username)?;
        Ok(report)
    }

    fn threshold(&self, t: Option<f32>) -> Result<f32> {
        let t = t.unwrap_or(self.config.threshold);
        if t.is_finite() && t > 0.0 && t <= 2.0 {
            Ok(t)
        } else {
            Err(Error::InvalidInput {
                code: "invalid_threshold",
                message: "threshold must be above 0 and at most 2".to_string(),
            })
        }
    }

    /// The one face an enrolment may use: the largest, unless another face
    /// is nearly as large.
    fn single_usable_face<'f>(&self, faces: &'f [Face]) -> Option<&'f Face> {
        let side = |f: &Face| f.face_box.rect.width().min(f.face_box.rect.height()) as f32;
        let largest = faces.iter().max_by(|a, b| side(a).total_cmp(&side(b)))?;
        let floor = side(largest) * self.config.competing_face_ratio;
        let competing = faces.iter().filter(|f| side(f) >= floor).count();
        (competing == 1).then_some(largest)
    }

    /// Decodes and detects (with landmarks, without descriptors) on the
    /// blocking pool; returns the faces and the decoded image.
    async fn analyze(
        &self,
        image: Bytes,
        label: &'static str,
    ) -> Result<(Vec<Face>, Arc<image::RgbImage>)> {
        let engine = Arc::clone(&self.engine);
        let (limits, detect) = (self.config.limits, self.config.detect);
        self.blocking(move || {
            let decoded = decode(&image, &limits).map_err(|source| Error::Image {
                label: label.to_string(),
                source,
            })?;
            let opts = veriface_vision::AnalyzeOptions {
                detect,
                embed: false,
                num_jitters: 1,
            };
            let faces = engine
                .analyze(&decoded.image, &opts)
                .map_err(|e| Error::from_engine(label, e))?;
            Ok((faces, Arc::new(decoded.image)))
        })
        .await
    }

    async fn embed(&self, img: Arc<image::RgbImage>, face: Face) -> Result<Embedding> {
        let engine = Arc::clone(&self.engine);
        self.blocking(move || {
            engine
                .descriptor(&img, &face.landmarks, 1)
                .map_err(|e| Error::from_engine("image", e))
        })
        .await
    }

    /// The descriptor of the largest face, and how many faces there were.
    async fn probe(&self, image: Bytes, label: &'static str) -> Result<(Embedding, usize)> {
        let (faces, img) = self.analyze(image, label).await?;
        let largest = pick_largest(&faces, |f| (f.face_box.rect.area(), f.face_box.score))
            .cloned()
            .ok_or(Error::NoFace {
                label: label.to_string(),
            })?;
        Ok((self.embed(img, largest).await?, faces.len()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = match &self.inference {
            Some(s) => Some(
                Arc::clone(s)
                    .acquire_owned()
                    .await
                    .map_err(|e| Error::Internal(Box::new(e)))?,
            ),
            None => None,
        };
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?
    }
}

fn rejected(reason: &str) -> EnrolDecision {
    EnrolDecision::Rejected {
        reason: reason.to_string(),
    }
}
