//! What every handler can reach: the use-cases and the ports, behind
//! `Arc`s so the state clones cheaply per request.
//!
//! Later features add their ports here (an identity repository, a job
//! queue) as further `Arc<dyn Trait>` fields; only the server knows which
//! concrete backends they are.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use veriface_core::enrol::IdentityService;
use veriface_core::face::Threshold;
use veriface_core::face_service::FaceService;
use veriface_core::identity::{Cache, JobQueue};
use veriface_core::ports::BlobStore;
use veriface_core::session::SessionService;

use crate::auth::{ApiKeys, RateLimit, RateLimiter};

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes (413 above).
    pub body_limit: usize,
    /// Longest a request may take before a 503 `timeout`.
    pub request_timeout: Duration,
    /// Threshold used when a request gives none.
    pub default_threshold: Threshold,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            default_threshold: Threshold::default(),
        }
    }
}

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    /// Face analysis and comparison on the bounded inference pool.
    pub faces: FaceService,
    /// Where uploads are kept.
    pub blobs: Arc<dyn BlobStore>,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
    /// API keys (empty: no authentication).
    pub keys: Arc<ApiKeys>,
    /// Per-key request budget.
    pub limiter: Arc<RateLimiter>,
    /// Renders `/metrics`; `None` when no recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The identity store (enrolments, 1:1, 1:N, erasure); `None` when the
    /// server runs without a database (its routes then answer 503
    /// `unavailable`).
    pub identity: Option<IdentityState>,
    /// Verification sessions; `None` answers their routes with 503.
    pub sessions: Option<Sessions>,
}

/// The identity use-cases and the embedded enrolment queue.
#[derive(Clone)]
pub struct IdentityState {
    /// Enrol, verify, search, erase.
    pub service: Arc<IdentityService>,
    /// Where `POST /v1/enrollments` puts its jobs.
    pub jobs: Arc<dyn JobQueue>,
    /// The cache in front of the store, for `/readyz`.
    pub cache: Arc<dyn Cache>,
    /// Notified after each enqueue, so an in-process worker starts at once
    /// instead of at its next poll.
    pub enqueued: Arc<tokio::sync::Notify>,
}

/// What the session routes and pages need.
#[derive(Debug, Clone)]
pub struct Sessions {
    /// The use-cases.
    pub service: SessionService,
    /// The base URL the session pages are reached at from a phone
    /// (`VERIFACE_PUBLIC_URL`, e.g. `https://kyc.example.com`); `None`
    /// derives it from each request's `Host` header.
    pub public_url: Option<String>,
}

impl AppState {
    /// State with no API keys, the default rate limit and no metrics.
    pub fn new(faces: FaceService, blobs: Arc<dyn BlobStore>, config: HttpConfig) -> Self {
        Self {
            faces,
            blobs,
            config: Arc::new(config),
            keys: Arc::new(ApiKeys::default()),
            limiter: Arc::new(RateLimiter::new(RateLimit::default())),
            metrics: None,
            identity: None,
            sessions: None,
        }
    }

    /// Serves the identity routes from these use-cases.
    pub fn with_identity(mut self, identity: IdentityState) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Serves the verification sessions.
    pub fn with_sessions(mut self, sessions: Sessions) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Requires these keys, limited per key.
    pub fn with_api_keys(mut self, keys: ApiKeys, limit: RateLimit) -> Self {
        self.keys = Arc::new(keys);
        self.limiter = Arc::new(RateLimiter::new(limit));
        self
    }

    /// Serves `/metrics` from this Prometheus recorder.
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }
}
