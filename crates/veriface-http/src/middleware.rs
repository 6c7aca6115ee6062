//! Layers every route runs through: request id, tracing span, latency
//! metrics, error rendering, timeout, body-size precheck, API keys and rate
//! limiting.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tracing::Instrument;

use crate::error::{ApiError, ErrorCode, ErrorEnvelope, PendingError};
use crate::extract::too_large;
use crate::state::AppState;

/// The request-id header, read from clients (when well-formed) and always
/// echoed.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request's id, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Paths that keep answering without an API key (orchestrator probes and
/// seed 004's liveness check).
pub const PUBLIC_PATHS: [&str; 4] = ["/", "/healthz", "/readyz", "/test_page"];

/// Path prefixes of the verification-session calls a user's phone makes:
/// it has no API key, and the unguessable session id in the path is its
/// credential (`start` and `cancel` stay behind the key).
pub const SESSION_PATH_PREFIXES: [&str; 3] =
    ["/api/scan/", "/api/verification/check_status/", "/verify/"];

/// True for the paths [`SESSION_PATH_PREFIXES`] covers.
pub fn is_session_path(path: &str) -> bool {
    SESSION_PATH_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Paths whose errors carry seed 004's `success: false` and `message`.
const SEED004_PATHS: [&str; 2] = ["/", "/compare"];

fn valid_client_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_string())
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Uniqueness, not secrecy, is what a request id needs.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos as u64).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The outermost layer: gives the request an id and a span, enforces the
/// timeout, records metrics and the access log, and renders every error
/// as the JSON envelope.
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(valid_client_id)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );

    let started = Instant::now();
    let timeout = state.config.request_timeout;
    let response = async {
        // A panic in a handler would otherwise drop the connection without
        // an answer; it becomes a logged 500 in the usual envelope.
        let handled = AssertUnwindSafe(next.run(req)).catch_unwind();
        match tokio::time::timeout(timeout, handled).await {
            Ok(Ok(res)) => res,
            Ok(Err(_)) => {
                ApiError::internal(std::io::Error::other("a handler panicked")).into_response()
            }
            Err(_) => {
                tracing::warn!(timeout_s = timeout.as_secs_f64(), "request timed out");
                ApiError::from(ErrorCode::Timeout)
                    .with_retry_after(state.faces.pool().retry_after_secs())
                    .into_response()
            }
        }
    }
    .instrument(span.clone())
    .await;
    let mut response = render_error(response, &request_id, &path);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }

    let elapsed = started.elapsed();
    let status = response.status();
    let labels = [
        ("method", method.to_string()),
        ("path", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::histogram!("veriface_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    metrics::counter!("veriface_http_requests_total", &labels).increment(1);
    let _enter = span.enter();
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    match response.extensions().get::<PendingError>() {
        Some(PendingError(e)) if status.is_server_error() => {
            let cause = e.source().map(error_chain).unwrap_or_default();
            tracing::error!(
                status = status.as_u16(),
                code = e.code(),
                latency_ms,
                cause,
                "request failed"
            );
        }
        Some(PendingError(e)) => {
            tracing::info!(
                status = status.as_u16(),
                code = e.code(),
                latency_ms,
                "request refused"
            );
        }
        None => tracing::info!(status = status.as_u16(), latency_ms, "request completed"),
    }
    response
}

/// The error and its causes on one line, for logs.
fn error_chain(e: &(dyn std::error::Error + Send + Sync)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Renders a pending [`ApiError`] (or a bare error status from axum
/// itself, such as 405) as the JSON envelope with the request id.
fn render_error(response: Response, request_id: &str, path: &str) -> Response {
    let status = response.status();
    let pending = response.extensions().get::<PendingError>().cloned();
    let error = match pending {
        Some(PendingError(e)) => e,
        None if status.is_client_error() || status.is_server_error() => {
            // Produced by axum or a layer, not by our handlers.
            if response.headers().get(CONTENT_TYPE).is_some_and(|v| {
                v.to_str()
                    .unwrap_or_default()
                    .starts_with("application/json")
            }) {
                return response;
            }
            ApiError::from(match status {
                StatusCode::NOT_FOUND => ErrorCode::RouteNotFound,
                StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
                StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedContentType,
                StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
                s if s.is_client_error() => ErrorCode::InvalidField,
                _ => ErrorCode::Internal,
            })
            .with_status(status)
        }
        None => return response,
    };
    let mut envelope = ErrorEnvelope::new(&error, Some(request_id));
    if SEED004_PATHS.contains(&path) {
        envelope = envelope.with_seed004_fields();
    }
    let (mut parts, _) = response.into_parts();
    let body = serde_json::to_vec(&envelope).unwrap_or_default();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.extensions.insert(PendingError(error));
    Response::from_parts(parts, Body::from(body))
}

/// Refuses a body whose declared length is over the limit before reading
/// any of it (chunked bodies are cut off by the body limit while read).
pub async fn check_length(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.body_limit;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit).into_response();
    }
    // Shed before the body is parsed: under overload, clients that retry at
    // once would otherwise spend the cores parsing JSON and decoding
    // base64 megabytes only to be refused (docs/benchmarks.md). The body
    // is still drained unparsed, because answering before it is read makes
    // the server close the connection and the client sees a broken pipe
    // instead of the 503.
    if req.method() == axum::http::Method::POST && runs_inference(req.uri().path()) {
        if let Err(e) = state.faces.pool().admit_early() {
            drain(req.into_body(), limit).await;
            return ApiError::from(e).into_response();
        }
    }
    next.run(req).await
}

/// Reads and drops up to `limit` bytes of a body.
async fn drain(body: Body, limit: usize) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > limit {
            break;
        }
    }
}

/// Whether a POST to `path` analyses images on the inference pool while
/// the client waits.
fn runs_inference(path: &str) -> bool {
    const PATHS: [&str; 8] = [
        "/compare",
        "/compare_images",
        "/upload_image1",
        "/upload_image2",
        "/v1/detect",
        "/v1/compare",
        "/v1/embed",
        "/v1/search",
    ];
    PATHS.contains(&path) || (path.starts_with("/v1/users/") && path.ends_with("/verify"))
}

/// Requires an API key when keys are configured (except on
/// [`PUBLIC_PATHS`]) and spends one token of the key's rate limit.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.keys.enabled()
        || PUBLIC_PATHS.contains(&req.uri().path())
        || is_session_path(req.uri().path())
    {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .or_else(|| req.headers().get("x-api-key").and_then(|v| v.to_str().ok()));
    let Some(digest) = presented.and_then(|k| state.keys.verify(k)) else {
        return ApiError::from(ErrorCode::Unauthorized).into_response();
    };
    if let Err(wait) = state.limiter.check(&digest) {
        metrics::counter!("veriface_http_rate_limited_total").increment(1);
        return ApiError::new(
            ErrorCode::RateLimited,
            "too many requests for this API key; retry later",
        )
        .with_retry_after(ceil_secs(wait))
        .into_response();
    }
    next.run(req).await
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::from(ErrorCode::RouteNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_kept_only_when_well_formed() {
        let ok = HeaderValue::from_static("abc-123_X.y:z");
        assert_eq!(valid_client_id(&ok).as_deref(), Some("abc-123_X.y:z"));
        for bad in ["", "has space", "<script>", &"x".repeat(129)] {
            assert!(valid_client_id(&HeaderValue::from_str(bad).unwrap()).is_none());
        }
        let generated = new_request_id();
        assert_eq!(generated.len(), 16);
        assert_ne!(generated, new_request_id());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
    }
}
