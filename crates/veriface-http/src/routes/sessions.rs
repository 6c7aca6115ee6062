//! Seed 002's verification-session API: start, upload the ID front, ID
//! back and selfie, restart, confirm, cancel, check the status.
//!
//! `start` and `cancel` are the client system's calls and need an API key
//! when keys are configured; the scan calls and `check_status` are made by
//! the user's phone, which has no key: the unguessable session id in the
//! path is their credential (see [`crate::middleware::is_session_path`]).

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veriface_core::identity::Timestamp;
use veriface_core::session::types::{Decision, DocumentScore, FaceScore};
use veriface_core::session::{Session, SessionId, Side};

use crate::dto::f32_json;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{
    body_kind, decode_base64_image, json_string, parse_form, parse_json_object, read_body,
    read_multipart, unsupported, BodyKind,
};
use crate::state::{AppState, Sessions};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_verification))
        .routes(routes!(cancel_verification))
        .routes(routes!(add_scan))
        .routes(routes!(restart_scan))
        .routes(routes!(confirm_scan))
        .routes(routes!(check_status))
}

pub(crate) fn sessions(state: &AppState) -> Result<&Sessions, ApiError> {
    state.sessions.as_ref().ok_or_else(|| {
        ApiError::from(veriface_core::Error::Unavailable {
            what: "the session store",
            source: "sessions are not configured".into(),
        })
    })
}

/// The base URL the phone reaches this server at.
pub(crate) fn base_url(s: &Sessions, headers: &HeaderMap) -> String {
    if let Some(url) = &s.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(axum::http::header::HOST))
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// The session page's URL.
pub(crate) fn page_url(base: &str, id: &SessionId) -> String {
    format!("{base}/verify/{id}")
}

fn parse_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(ApiError::from)
}

/// Optional settings of a new session.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct StartRequest {
    /// Where to POST the result when the session reaches a final state
    /// (signed, see docs/sessions.md). Needs `VERIFACE_WEBHOOK_SECRET`.
    #[schema(example = "https://example.com/kyc/webhook")]
    webhook_url: Option<String>,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartResponse {
    /// The session id (32 hex digits; the only credential of the phone page).
    #[schema(example = "3f1c0e7a9b2d4c65a1b2c3d4e5f60718")]
    pub session_id: String,
    /// The session page: open it on a phone, or on a desktop to show a QR
    /// code of it.
    #[schema(example = "http://localhost:5000/verify/3f1c0e7a9b2d4c65a1b2c3d4e5f60718")]
    pub url: String,
    /// `created`.
    pub status: String,
    /// When the session expires unless confirmed (RFC 3339).
    pub expires_at: String,
    /// Whether a webhook will be sent.
    pub webhook: bool,
}

/// Start a verification session.
#[utoipa::path(
    post,
    path = "/api/verification/start",
    operation_id = "start_verification",
    tag = "sessions",
    request_body(content(
        (StartRequest = "application/json"),
        (StartRequest = "application/x-www-form-urlencoded"),
        (StartRequest = "multipart/form-data"),
    ), description = "Optional; an empty body starts a session without a webhook"),
    responses(
        (status = 200, description = "The session and its page", body = StartResponse),
        (status = 400, description = "Malformed body or webhook URL, or webhooks disabled", body = ErrorEnvelope),
        (status = 503, description = "The database is unavailable", body = ErrorEnvelope),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn start_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Result<Json<StartResponse>, ApiError> {
    let s = sessions(&state)?;
    let webhook_url = match body_kind(&req) {
        BodyKind::Json => {
            let bytes = read_body(req.into_body(), state.config.body_limit).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                let map = parse_json_object(&bytes)?;
                match map.get("webhook_url") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(_) => Some(json_string(&map, "webhook_url")?.to_string()),
                }
            }
        }
        BodyKind::Form => {
            let bytes = read_body(req.into_body(), state.config.body_limit).await?;
            parse_form(&bytes)?
                .remove("webhook_url")
                .filter(|u| !u.trim().is_empty())
        }
        BodyKind::Multipart => {
            let parts = read_multipart(req, state.config.body_limit).await?;
            parts
                .text("webhook_url")?
                .filter(|u| !u.trim().is_empty())
                .map(str::to_string)
        }
        BodyKind::Missing => None,
        other => {
            return Err(unsupported(
                &other,
                "application/json, a form, or an empty body",
            ))
        }
    };
    let session = s.service.start(webhook_url).await?;
    tracing::info!(webhook = session.webhook_url.is_some(), "session started");
    Ok(Json(StartResponse {
        url: page_url(&base_url(s, &headers), &session.id),
        session_id: session.id.to_string(),
        status: session.state.as_str().to_string(),
        expires_at: session.expires_at.to_rfc3339(),
        webhook: session.webhook_url.is_some(),
    }))
}

/// Which images are in.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScansDto {
    /// The ID front is uploaded.
    pub id_front: bool,
    /// The ID back is uploaded.
    pub id_back: bool,
    /// The selfie is uploaded.
    pub selfie: bool,
}

/// The face comparison of a decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceScoreDto {
    /// Distance between the ID portrait and the selfie (lower is more
    /// alike; `null` when a face was missing).
    pub distance: Option<f64>,
    /// The threshold it was held against.
    pub threshold: f64,
    /// Faces found on the ID front (the portrait is the largest).
    pub faces_on_document: usize,
    /// Faces found on the selfie.
    pub faces_on_selfie: usize,
}

/// What was read from the document (formats and flags, no personal data).
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentScoreDto {
    /// MRZ format (`TD1`, `TD2`, `TD3`, `MRVA`, `MRVB`), if one was read.
    pub mrz_format: Option<String>,
    /// Whether every MRZ check digit verified.
    pub mrz_valid: Option<bool>,
    /// Whether an AAMVA PDF417 barcode was decoded.
    pub barcode: bool,
    /// The document's expiry date (ISO 8601), if read.
    pub expiry_date: Option<String>,
}

/// The decision, as stored for audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionDto {
    /// `verified`, `rejected` or `needs_review`.
    pub outcome: String,
    /// Reason codes, most serious first.
    pub reasons: Vec<String>,
    /// The face comparison.
    pub face: FaceScoreDto,
    /// The document reading.
    pub document: DocumentScoreDto,
    /// The face descriptor model.
    pub model: String,
    /// Its version.
    pub model_version: String,
    /// When it was decided (RFC 3339).
    pub decided_at: String,
}

impl From<&Decision> for DecisionDto {
    fn from(d: &Decision) -> Self {
        let FaceScore {
            distance,
            threshold,
            faces_on_document,
            faces_on_selfie,
        } = &d.face;
        let DocumentScore {
            mrz_format,
            mrz_valid,
            barcode,
            expiry_date,
        } = &d.document;
        Self {
            outcome: d.outcome.state().as_str().to_string(),
            reasons: d.reasons.clone(),
            face: FaceScoreDto {
                distance: distance.map(f32_json),
                threshold: f32_json(*threshold),
                faces_on_document: *faces_on_document,
                faces_on_selfie: *faces_on_selfie,
            },
            document: DocumentScoreDto {
                mrz_format: mrz_format.clone(),
                mrz_valid: *mrz_valid,
                barcode: *barcode,
                expiry_date: expiry_date.clone(),
            },
            model: d.model.clone(),
            model_version: d.model_version.clone(),
            decided_at: d.decided_at.to_rfc3339(),
        }
    }
}

/// A session's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionStatus {
    /// The session id.
    pub session_id: String,
    /// `created`, `collecting`, `submitted`, `processing`, `verified`,
    /// `rejected`, `needs_review`, `cancelled` or `expired`.
    #[schema(example = "verified")]
    pub status: String,
    /// Whether the status is final.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Reason codes of the decision (empty until decided, and when
    /// verified); see docs/sessions.md.
    pub reasons: Vec<String>,
    /// Which images are uploaded.
    pub scans: ScansDto,
    /// The images still missing, in capture order.
    pub missing: Vec<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
    /// When an unconfirmed session expires (RFC 3339).
    pub expires_at: String,
    /// The decision with its scores, model and threshold, once decided.
    pub decision: Option<DecisionDto>,
}

impl From<&Session> for SessionStatus {
    fn from(s: &Session) -> Self {
        let ts = |t: Timestamp| t.to_rfc3339();
        Self {
            session_id: s.id.to_string(),
            status: s.state.as_str().to_string(),
            is_final: s.state.is_final(),
            reasons: s
                .decision
                .as_ref()
                .map(|d| d.reasons.clone())
                .unwrap_or_default(),
            scans: ScansDto {
                id_front: s.scans.contains(&Side::IdFront),
                id_back: s.scans.contains(&Side::IdBack),
                selfie: s.scans.contains(&Side::Selfie),
            },
            missing: s.missing().iter().map(|m| m.as_str().to_string()).collect(),
            created_at: ts(s.created_at),
            updated_at: ts(s.updated_at),
            expires_at: ts(s.expires_at),
            decision: s.decision.as_ref().map(DecisionDto::from),
        }
    }
}

/// Cancel a session; its images are deleted.
#[utoipa::path(
    delete,
    path = "/api/verification/cancel/{session_id}",
    operation_id = "cancel_verification",
    tag = "sessions",
    params(("session_id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The cancelled session", body = SessionStatus),
        (status = 404, description = "No such session (`session_not_found`)", body = ErrorEnvelope),
        (status = 409, description = "Already submitted or final (`invalid_session_transition`, `session_expired`)", body = ErrorEnvelope),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn cancel_verification(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionStatus>, ApiError> {
    let id = parse_id(&session_id)?;
    let session = sessions(&state)?.service.cancel(&id).await?;
    Ok(Json(SessionStatus::from(&session)))
}

/// An image for one side, as JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ScanJsonRequest {
    /// `id_front`, `id_back` or `selfie`.
    #[schema(example = "id_front")]
    side: String,
    /// The image, base64 or a data URI.
    image: String,
}

/// An image for one side, as multipart.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ScanMultipartRequest {
    /// `id_front`, `id_back` or `selfie`.
    side: String,
    /// The image file (JPEG, PNG, WebP, GIF or BMP).
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// Upload the ID front, ID back or selfie (replacing an earlier one).
#[utoipa::path(
    post,
    path = "/api/scan/add/{session_id}",
    operation_id = "add_scan",
    tag = "sessions",
    params(("session_id" = String, Path, description = "The session id")),
    request_body(content(
        (ScanMultipartRequest = "multipart/form-data"),
        (ScanJsonRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The session with the image recorded", body = SessionStatus),
        (status = 400, description = "Malformed body, unknown `side` (`invalid_side`) or image", body = ErrorEnvelope),
        (status = 404, description = "No such session", body = ErrorEnvelope),
        (status = 409, description = "The session no longer takes images", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type or image format", body = ErrorEnvelope),
    )
)]
#[tracing::instrument(skip_all, fields(side))]
pub async fn add_scan(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    req: Request,
) -> Result<Json<SessionStatus>, ApiError> {
    let id = parse_id(&session_id)?;
    let s = sessions(&state)?;
    let limit = state.config.body_limit;
    let (side, bytes) = match body_kind(&req) {
        BodyKind::Multipart => {
            let parts = read_multipart(req, limit).await?;
            let side = parts.text("side")?.ok_or_else(|| ApiError::missing("side"))?;
            let side = Side::parse(side)?;
            let image = parts
                .any_of(&["image", "file"])
                .map(|(_, p)| p.bytes.clone())
                .ok_or_else(|| ApiError::missing("image"))?;
            (side, image)
        }
        BodyKind::Json => {
            let bytes = read_body(req.into_body(), limit).await?;
            let map = parse_json_object(&bytes)?;
            let side = Side::parse(json_string(&map, "side")?)?;
            let image = decode_base64_image("image", json_string(&map, "image")?)?;
            (side, image)
        }
        other => {
            return Err(unsupported(
                &other,
                "multipart/form-data (`side` and an `image` file) or application/json (`side` and a base64 `image`)",
            ))
        }
    };
    tracing::Span::current().record("side", side.as_str());
    let session = s.service.add_scan(&id, side, bytes).await?;
    Ok(Json(SessionStatus::from(&session)))
}

/// Discard the uploaded images to start the capture over.
#[utoipa::path(
    post,
    path = "/api/scan/restart/{session_id}",
    operation_id = "restart_scan",
    tag = "sessions",
    params(("session_id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The session, back to `created`", body = SessionStatus),
        (status = 404, description = "No such session", body = ErrorEnvelope),
        (status = 409, description = "Already submitted or final", body = ErrorEnvelope),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn restart_scan(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionStatus>, ApiError> {
    let id = parse_id(&session_id)?;
    let session = sessions(&state)?.service.restart(&id).await?;
    Ok(Json(SessionStatus::from(&session)))
}

/// Confirm the images: the session is submitted for processing.
/// Idempotent: a session already submitted or decided is returned as is.
#[utoipa::path(
    post,
    path = "/api/scan/confirm/{session_id}",
    operation_id = "confirm_scan",
    tag = "sessions",
    params(("session_id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The submitted (or already processed) session", body = SessionStatus),
        (status = 404, description = "No such session", body = ErrorEnvelope),
        (status = 409, description = "Images missing (`scans_incomplete`), cancelled or expired", body = ErrorEnvelope),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn confirm_scan(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionStatus>, ApiError> {
    let id = parse_id(&session_id)?;
    let session = sessions(&state)?.service.confirm(&id).await?;
    Ok(Json(SessionStatus::from(&session)))
}

/// The session's status, reasons and, once decided, its scores.
#[utoipa::path(
    get,
    path = "/api/verification/check_status/{session_id}",
    operation_id = "check_status",
    tag = "sessions",
    params(("session_id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The session", body = SessionStatus),
        (status = 404, description = "No such session", body = ErrorEnvelope),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn check_status(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionStatus>, ApiError> {
    let id = parse_id(&session_id)?;
    let session = sessions(&state)?.service.status(&id).await?;
    Ok(Json(SessionStatus::from(&session)))
}
