//! Seed 004 (`GET /`, JSON `POST /compare`) and seed 003 (multipart
//! `POST /compare`): one path, told apart by `Content-Type`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{secs, ComparisonDto};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{body_kind, unsupported, BodyKind};
use crate::routes::input::read_images;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(compare))
}

/// Seed 004's status answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// Always true.
    pub success: bool,
    /// `"Server is working"`.
    #[schema(example = "Server is working")]
    pub message: String,
}

/// Server status (seed 004).
#[utoipa::path(
    get,
    path = "/",
    tag = "compatibility",
    responses((status = 200, description = "The server is up", body = StatusResponse))
)]
pub async fn index() -> Json<StatusResponse> {
    Json(StatusResponse {
        success: true,
        message: "Server is working".to_string(),
    })
}

/// Seed 004's request: two base64 images (plain or `data:` URIs).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Seed004CompareRequest {
    /// The ID document photo, base64 or a data URI.
    #[schema(example = "data:image/jpeg;base64,/9j/4AAQSkZ...")]
    passport: String,
    /// The selfie, base64 or a data URI.
    #[schema(example = "data:image/jpeg;base64,/9j/4AAQSkZ...")]
    face: String,
    /// Match threshold on the descriptor distance (default 0.6).
    threshold: Option<f32>,
}

/// Seed 003's request: two files.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Seed003CompareRequest {
    /// The reference image file.
    #[schema(value_type = String, format = Binary)]
    reference_image: Vec<u8>,
    /// The live image file.
    #[schema(value_type = String, format = Binary)]
    live_image: Vec<u8>,
    /// Match threshold (default 0.6).
    threshold: Option<f32>,
}

/// Seed 004's answer plus the shared comparison fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct Seed004CompareResponse {
    /// Always true on success.
    pub success: bool,
    /// `"It's the same person"` or `"It's not the same person"`.
    pub message: String,
    /// Seconds spent turning the request into pixels: base64 plus image
    /// decoding (summed over both images).
    pub image_save_time: f64,
    /// Seconds of face work: detection, landmarks and descriptors of both
    /// images (summed) plus the distance.
    pub comparison_time: f64,
    /// Shared comparison fields (`match`, `distance`, ...).
    #[serde(flatten)]
    pub comparison: ComparisonDto,
}

/// Seed 003's answer plus the shared comparison fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct Seed003CompareResponse {
    /// Whether the two faces are the same person.
    pub identical: bool,
    /// Shared comparison fields (`match`, `distance`, ...).
    #[serde(flatten)]
    pub comparison: ComparisonDto,
}

/// Either form's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CompareResponse {
    /// For a JSON request.
    Seed004(Seed004CompareResponse),
    /// For a multipart request.
    Seed003(Seed003CompareResponse),
}

/// Compare two faces (seed 004 JSON or seed 003 multipart).
///
/// With `Content-Type: application/json` (seed 004) the body holds
/// `passport` and `face` as base64 or data URIs; invalid data and
/// unsupported image formats answer 400, as that seed documents, and
/// errors carry `"success": false` and `"message"`. With
/// `multipart/form-data` (seed 003) the files are `reference_image` and
/// `live_image` and the answer has `identical`. The largest face of each
/// image is compared; other faces are listed in `images.*.other_faces`.
#[utoipa::path(
    post,
    path = "/compare",
    tag = "compatibility",
    request_body(content(
        (Seed004CompareRequest = "application/json"),
        (Seed003CompareRequest = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "The comparison", body = CompareResponse),
        (status = 400, description = "Malformed body, base64 or image; on the JSON form also an unsupported format", body = ErrorEnvelope),
        (status = 413, description = "Body or image over the limits", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type, or (multipart) image format", body = ErrorEnvelope),
        (status = 422, description = "No face in one image (the message names it)", body = ErrorEnvelope),
        (status = 503, description = "Overloaded or timed out; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn compare(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<CompareResponse>, ApiError> {
    match body_kind(&req) {
        BodyKind::Json => compare_seed004(state, req).await.map_err(seed004_status),
        BodyKind::Multipart => compare_seed003(state, req).await,
        other => Err(unsupported(
            &other,
            "application/json (seed 004) or multipart/form-data (seed 003)",
        )),
    }
}

/// Seed 004 documents 400 for "the image format is incorrect".
fn seed004_status(e: ApiError) -> ApiError {
    if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        e.with_status(StatusCode::BAD_REQUEST)
    } else {
        e
    }
}

async fn compare_seed004(state: AppState, req: Request) -> Result<Json<CompareResponse>, ApiError> {
    let started = Instant::now();
    let mut inputs = read_images(
        req,
        state.config.body_limit,
        &[&["passport"], &["face"]],
        false,
    )
    .await?;
    let threshold = inputs.threshold_or(state.config.default_threshold)?;
    let (a, b) = (inputs.take(0)?, inputs.take(1)?);
    let queued = state
        .faces
        .compare((a.field, a.bytes), (b.field, b.bytes), threshold)
        .await?;
    let c = &queued.value;
    let comparison = ComparisonDto::new(
        c,
        ("passport", "face"),
        queued.waited,
        inputs.base64,
        started.elapsed(),
    );
    let face_work = c.a.timings.detect
        + c.a.timings.landmarks
        + c.a.timings.embed
        + c.b.timings.detect
        + c.b.timings.landmarks
        + c.b.timings.embed
        + c.compare;
    Ok(Json(CompareResponse::Seed004(Seed004CompareResponse {
        success: true,
        message: if c.outcome.is_match {
            "It's the same person"
        } else {
            "It's not the same person"
        }
        .to_string(),
        image_save_time: secs(inputs.base64 + c.a.timings.decode + c.b.timings.decode),
        comparison_time: secs(face_work),
        comparison,
    })))
}

async fn compare_seed003(state: AppState, req: Request) -> Result<Json<CompareResponse>, ApiError> {
    let started = Instant::now();
    let mut inputs = read_images(
        req,
        state.config.body_limit,
        &[&["reference_image"], &["live_image"]],
        false,
    )
    .await?;
    let threshold = inputs.threshold_or(state.config.default_threshold)?;
    let (a, b) = (inputs.take(0)?, inputs.take(1)?);
    let queued = state
        .faces
        .compare((a.field, a.bytes), (b.field, b.bytes), threshold)
        .await?;
    let comparison = ComparisonDto::new(
        &queued.value,
        ("reference_image", "live_image"),
        queued.waited,
        inputs.base64,
        started.elapsed(),
    );
    Ok(Json(CompareResponse::Seed003(Seed003CompareResponse {
        identical: queued.value.outcome.is_match,
        comparison,
    })))
}
