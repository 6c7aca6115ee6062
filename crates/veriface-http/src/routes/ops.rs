//! Operations: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veriface_core::identity::CacheState;

use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `"ok"`.
    pub status: &'static str,
}

/// Liveness: the process answers HTTP. Never needs an API key.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// One dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `"ok"` or `"unavailable"`.
    pub status: &'static str,
    /// Which backend (`local`, `s3`).
    pub backend: &'static str,
    /// Why it is unavailable (no secrets, no personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The inference pool's load.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolStatus {
    /// Jobs that may run at once.
    pub workers: usize,
    /// Jobs running.
    pub running: usize,
    /// Jobs waiting for a worker.
    pub queued: usize,
    /// Jobs that may wait before requests are shed with 503.
    pub queue_capacity: usize,
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `"ready"` or `"unavailable"`.
    pub status: &'static str,
    /// The blob store.
    pub blob_store: Check,
    /// The inference pool (informational; a busy pool is still ready).
    pub inference: PoolStatus,
    /// The identity database (absent when the server runs without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<Check>,
    /// The identity cache (informational: when Redis is down the service
    /// answers from the database, so readiness does not depend on it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStatus>,
}

/// The cache's health and counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStatus {
    /// `redis` or `none`.
    pub backend: &'static str,
    /// `up`, `down` or `disabled`.
    pub status: &'static str,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the database.
    pub misses: u64,
    /// Cache operations that failed (the caller fell back to the database).
    pub errors: u64,
}

/// Readiness: the blob store and the identity database answer (503 when
/// one does not). The cache's state is reported but does not decide: the
/// service works without it. Never needs an API key.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is down", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let ping = state.blobs.ping().await;
    let pool = state.faces.pool();
    let blob_store = Check {
        status: if ping.is_ok() { "ok" } else { "unavailable" },
        backend: state.blobs.backend(),
        error: ping.as_ref().err().map(ToString::to_string),
    };
    if let Err(e) = &ping {
        tracing::warn!(error = %e, "readiness check failed");
    }
    let (database, cache) = match &state.identity {
        Some(id) => {
            let repo = id.service.repo();
            let db = repo.ping().await;
            if let Err(e) = &db {
                tracing::warn!(error = %e, "database readiness check failed");
            }
            let h = id.cache.health();
            metrics::gauge!("veriface_cache_up").set(match h.state {
                CacheState::Up => 1.0,
                _ => 0.0,
            });
            (
                Some(Check {
                    status: if db.is_ok() { "ok" } else { "unavailable" },
                    backend: repo.backend(),
                    error: db.as_ref().err().map(ToString::to_string),
                }),
                Some(CacheStatus {
                    backend: h.backend,
                    status: match h.state {
                        CacheState::Up => "up",
                        CacheState::Down => "down",
                        CacheState::Disabled => "disabled",
                    },
                    hits: h.hits,
                    misses: h.misses,
                    errors: h.errors,
                }),
            )
        }
        None => (None, None),
    };
    let ready = ping.is_ok() && database.as_ref().is_none_or(|d| d.status == "ok");
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        blob_store,
        inference: PoolStatus {
            workers: pool.workers(),
            running: pool.running(),
            queued: pool.queued(),
            queue_capacity: pool.queue_capacity(),
        },
        database,
        cache,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics: `veriface_http_request_duration_seconds`
/// (histogram by method, route and status), `veriface_stage_duration_seconds`
/// (histogram by stage: decode, detect, landmarks, embed, compare, store),
/// inference pool gauges and counters.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.as_ref().map_or_else(
        || "# no metrics recorder is installed in this process\n".to_string(),
        |h| h.render(),
    );
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
