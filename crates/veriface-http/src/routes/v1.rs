//! veriface's own API: detect, compare with a per-request threshold,
//! embed.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veriface_core::face::Descriptors;

use crate::dto::{ComparisonDto, DetectionDto, FaceDto};
use crate::error::{ApiError, ErrorEnvelope};
use crate::routes::input::read_images;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(detect))
        .routes(routes!(compare))
        .routes(routes!(embed))
}

/// One image, as JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ImageJsonRequest {
    /// The image, base64 or a data URI.
    image: String,
}

/// One image, as multipart.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ImageMultipartRequest {
    /// The image file.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// Find every face in an image, with its box, score and 5 landmarks.
#[utoipa::path(
    post,
    path = "/v1/detect",
    operation_id = "v1_detect",
    tag = "v1",
    request_body(content(
        (ImageMultipartRequest = "multipart/form-data"),
        (ImageJsonRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "Every face, largest first (an empty list when there is none)", body = DetectionDto),
        (status = 400, description = "Malformed body or image", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type or image format", body = ErrorEnvelope),
        (status = 503, description = "Overloaded or timed out; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn detect(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<DetectionDto>, ApiError> {
    let mut inputs = read_images(req, state.config.body_limit, &[&["image"]], true).await?;
    let image = inputs.take(0)?;
    let analysed = state
        .faces
        .analyze(image.field, image.bytes, Descriptors::None)
        .await?;
    Ok(Json(DetectionDto::new(&analysed.value, analysed.waited)))
}

/// Two images and a threshold, as JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V1CompareJsonRequest {
    /// First image, base64 or a data URI.
    a: String,
    /// Second image, base64 or a data URI.
    b: String,
    /// Match when the distance is at most this (0 < t <= 2; default 0.6).
    threshold: Option<f32>,
}

/// Two images and a threshold, as multipart.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V1CompareMultipartRequest {
    /// First image file.
    #[schema(value_type = String, format = Binary)]
    a: Vec<u8>,
    /// Second image file.
    #[schema(value_type = String, format = Binary)]
    b: Vec<u8>,
    /// Match threshold (default 0.6).
    threshold: Option<f32>,
}

/// Compare the largest face of two images, with an optional threshold.
#[utoipa::path(
    post,
    path = "/v1/compare",
    operation_id = "v1_compare",
    tag = "v1",
    request_body(content(
        (V1CompareMultipartRequest = "multipart/form-data"),
        (V1CompareJsonRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The comparison (`images.a`, `images.b`)", body = ComparisonDto),
        (status = 400, description = "Malformed body, image or threshold", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type or image format", body = ErrorEnvelope),
        (status = 422, description = "No face in one image (the message names it)", body = ErrorEnvelope),
        (status = 503, description = "Overloaded or timed out; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn compare(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<ComparisonDto>, ApiError> {
    let started = Instant::now();
    let mut inputs = read_images(req, state.config.body_limit, &[&["a"], &["b"]], false).await?;
    let threshold = inputs.threshold_or(state.config.default_threshold)?;
    let (a, b) = (inputs.take(0)?, inputs.take(1)?);
    let queued = state
        .faces
        .compare(
            ("a".to_string(), a.bytes),
            ("b".to_string(), b.bytes),
            threshold,
        )
        .await?;
    Ok(Json(ComparisonDto::new(
        &queued.value,
        ("a", "b"),
        queued.waited,
        inputs.base64,
        started.elapsed(),
    )))
}

/// A face with its descriptor.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddedFaceDto {
    /// Box, score, landmarks.
    #[serde(flatten)]
    pub face: FaceDto,
    /// The 128-D descriptor exactly as dlib's network outputs it (not
    /// normalised; compare by Euclidean distance, 0.6 threshold).
    pub embedding: Vec<f32>,
}

/// Every face of an image with its descriptor.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    /// The descriptor model.
    #[schema(example = "dlib_face_recognition_resnet_model_v1")]
    pub model: String,
    /// Every face, largest first.
    pub faces: Vec<EmbeddedFaceDto>,
    /// The analysis (size, format, timings); its `faces` repeat the boxes
    /// without descriptors.
    pub image: DetectionDto,
}

/// Compute the 128-D descriptor of every face in an image.
///
/// Descriptors are biometric data: the server never logs or stores them.
#[utoipa::path(
    post,
    path = "/v1/embed",
    operation_id = "v1_embed",
    tag = "v1",
    request_body(content(
        (ImageMultipartRequest = "multipart/form-data"),
        (ImageJsonRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "Every face with its descriptor", body = EmbedResponse),
        (status = 400, description = "Malformed body or image", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type or image format", body = ErrorEnvelope),
        (status = 503, description = "Overloaded or timed out; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn embed(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<EmbedResponse>, ApiError> {
    let mut inputs = read_images(req, state.config.body_limit, &[&["image"]], true).await?;
    let image = inputs.take(0)?;
    let analysed = state
        .faces
        .analyze(image.field, image.bytes, Descriptors::All)
        .await?;
    let a = &analysed.value;
    let faces = a
        .faces
        .iter()
        .map(|f| EmbeddedFaceDto {
            face: FaceDto::from(f),
            embedding: f.embedding.map(|e| e.0.to_vec()).unwrap_or_default(),
        })
        .collect();
    Ok(Json(EmbedResponse {
        model: "dlib_face_recognition_resnet_model_v1".to_string(),
        faces,
        image: DetectionDto::new(a, analysed.waited),
    }))
}
