//! Operations: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
}

/// Readiness: the blob store answers. 503 when it does not. Never needs
/// an API key.
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
    let ready = ping.is_ok();
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        blob_store,
        inference: PoolStatus {
            workers: pool.workers(),
            running: pool.running(),
            queued: pool.queued(),
            queue_capacity: pool.queue_capacity(),
        },
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
