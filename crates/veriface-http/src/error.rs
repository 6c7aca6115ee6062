//! The API's one error type and its one code table.
//!
//! Every failure a client sees is `{"error": {"code", "message",
//! "request_id"}}` with a stable snake_case `code` (listed in
//! `docs/api-errors.md`; never renamed). Domain errors keep the code their
//! crate gives them ([`veriface_core::Error::code`]) and get their status
//! from their [`ErrorKind`]; failures that only exist in HTTP (a malformed
//! body, a missing key, a timeout) are [`ErrorCode`]s. Both go through one
//! exhaustive match each, so a new kind or code must choose its status.
//!
//! Handlers return `Err(ApiError)`; its response carries the error in an
//! extension and [`crate::middleware::observe`] renders the body, because
//! only the middleware knows the request id (and the path, which decides
//! whether the seed-004 compatibility fields are added).

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use veriface_core::{Error, ErrorKind};

/// Failures that exist only at the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body is not valid JSON, or not the expected shape.
    MalformedJson,
    /// The multipart body cannot be parsed.
    MalformedMultipart,
    /// A form-urlencoded body cannot be parsed.
    MalformedForm,
    /// A base64 (or data URI) image does not decode.
    InvalidBase64,
    /// A required field or parameter is missing.
    MissingField,
    /// A field or parameter has the wrong type or an invalid value.
    InvalidField,
    /// The request's `Content-Type` is not one this endpoint reads.
    UnsupportedContentType,
    /// The body is over the request size limit.
    PayloadTooLarge,
    /// An API key is required and was missing or wrong.
    Unauthorized,
    /// The key's request budget is spent for now.
    RateLimited,
    /// The request took longer than the server's request timeout.
    Timeout,
    /// No route has this path.
    RouteNotFound,
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// A bug.
    Internal,
}

impl ErrorCode {
    /// Every code, for the documentation test.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::MalformedJson,
        ErrorCode::MalformedMultipart,
        ErrorCode::MalformedForm,
        ErrorCode::InvalidBase64,
        ErrorCode::MissingField,
        ErrorCode::InvalidField,
        ErrorCode::UnsupportedContentType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::Timeout,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Internal,
    ];

    /// The stable wire code.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::MalformedMultipart => "malformed_multipart",
            ErrorCode::MalformedForm => "malformed_form",
            ErrorCode::InvalidBase64 => "invalid_base64",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnsupportedContentType => "unsupported_content_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Timeout => "timeout",
            ErrorCode::RouteNotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::MalformedJson
            | ErrorCode::MalformedMultipart
            | ErrorCode::MalformedForm
            | ErrorCode::InvalidBase64
            | ErrorCode::MissingField
            | ErrorCode::InvalidField => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // 503, not 504: the client should retry later exactly as after
            // `overloaded` (a load test counts both as shed load).
            ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The status for a domain error's kind.
pub const fn kind_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// The cause, for the log line only (never sent).
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    /// An HTTP-layer error with a message for the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code: code.as_str(),
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// A 500 whose cause is logged and not shown.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            source: Some(Arc::new(source)),
            ..Self::new(ErrorCode::Internal, "internal error")
        }
    }

    /// `missing_field` naming the field.
    pub fn missing(field: &str) -> Self {
        Self::new(ErrorCode::MissingField, format!("`{field}` is required"))
    }

    /// Adds a `Retry-After` (seconds).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Replaces the status (for compatibility endpoints whose seed
    /// documents another status for the same failure).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cause, if any (for logs).
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync)> {
        self.source.as_deref()
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        let message = match code {
            ErrorCode::Timeout => "the request took too long; retry later",
            ErrorCode::RouteNotFound => "no such endpoint; see /openapi.json",
            ErrorCode::MethodNotAllowed => "this endpoint does not accept this method",
            ErrorCode::Unauthorized => {
                "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)"
            }
            _ => "the request was refused",
        };
        Self::new(code, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let retry_after = match &e {
            Error::Overloaded { retry_after_secs } => Some(*retry_after_secs),
            Error::Unavailable { .. } => Some(1),
            _ => None,
        };
        // Domain messages never hold personal data or internals (5xx
        // variants print only what failed, causes go to `source`).
        let message = e.to_string();
        Self {
            status: kind_status(kind),
            code: e.code(),
            message,
            retry_after,
            source: Some(Arc::new(e)),
        }
    }
}

/// What an error response carries until the middleware renders it.
#[derive(Debug, Clone)]
pub(crate) struct PendingError(pub(crate) ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A plain body in case nothing renders it (it always is rendered
        // inside `router`; this keeps a bare handler test readable).
        let body = ErrorEnvelope::new(&self, None);
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == ErrorCode::Unauthorized.as_str() {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res.extensions_mut().insert(PendingError(self));
        res
    }
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
    /// Seed 004 compatibility (`/` and `/compare` only): always `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Seed 004 compatibility: the same message as `error.message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The inner error object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code (see docs/api-errors.md).
    #[schema(example = "no_face_detected")]
    pub code: String,
    /// What went wrong, for people.
    #[schema(example = "no face detected in passport")]
    pub message: String,
    /// The request id (also in the `x-request-id` response header).
    #[schema(example = "3f1c0e7a9b2d4c65")]
    pub request_id: Option<String>,
}

impl ErrorEnvelope {
    pub(crate) fn new(e: &ApiError, request_id: Option<&str>) -> Self {
        Self {
            error: ErrorBody {
                code: e.code.to_string(),
                message: e.message.clone(),
                request_id: request_id.map(str::to_string),
            },
            success: None,
            message: None,
        }
    }

    pub(crate) fn with_seed004_fields(mut self) -> Self {
        self.success = Some(false);
        self.message = Some(self.error.message.clone());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veriface_vision::decode::ImageError;

    #[test]
    fn every_http_code_is_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "duplicate {s}");
        }
    }

    /// Codes that domain errors reach the API with (see
    /// `veriface_core::Error::code` and `ImageError::code`).
    const DOMAIN_CODES: [&str; 20] = [
        "empty_image",
        "image_too_large",
        "unsupported_image_format",
        "image_dimensions_too_large",
        "invalid_image",
        "no_face_detected",
        "invalid_threshold",
        "invalid_image_name",
        "image_not_found",
        "overloaded",
        "unavailable",
        "internal",
        "invalid_key",
        // Verification sessions (issue 5).
        veriface_core::session::types::SESSION_NOT_FOUND,
        veriface_core::session::types::INVALID_SIDE,
        veriface_core::session::state::INVALID_TRANSITION,
        veriface_core::session::state::SESSION_EXPIRED,
        veriface_core::session::service::SCANS_INCOMPLETE,
        veriface_core::session::service::INVALID_WEBHOOK_URL,
        veriface_core::session::service::WEBHOOKS_DISABLED,
    ];

    #[test]
    fn every_code_is_documented_in_api_errors_md() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api-errors.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let codes = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .chain(DOMAIN_CODES);
        for code in codes {
            assert!(
                doc.contains(&format!("`{code}`")),
                "{code} is not in docs/api-errors.md"
            );
        }
    }

    #[test]
    fn domain_errors_keep_their_code_and_get_their_kinds_status() {
        let e = ApiError::from(Error::NoFace {
            label: "passport".into(),
        });
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.code(), "no_face_detected");
        assert!(e.message().contains("passport"));

        let e = ApiError::from(Error::Image {
            label: "face".into(),
            source: ImageError::UnsupportedFormat {
                detected: Some("pdf"),
            },
        });
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(e.code(), "unsupported_image_format");

        let e = ApiError::from(Error::Overloaded {
            retry_after_secs: 4,
        });
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let res = e.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "4");
    }

    #[test]
    fn internal_errors_show_a_generic_message() {
        let e = ApiError::from(Error::Internal("secret detail".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("secret"));
    }
}
