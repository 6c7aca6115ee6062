//! Seed 000 (UnCoin KYC): upload an ID photo and a selfie, fetch or delete
//! them by name, compare two stored images (or two uploads).
//!
//! Uploads are stored with their metadata stripped (EXIF, XMP, comments;
//! the pixels are byte-for-byte the upload's, see
//! [`veriface_core::metadata`]) under a random 128-bit name. Names from
//! requests are parsed strictly ([`ImageName::parse`]); nothing a client
//! sends becomes a path.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veriface_core::face::Descriptors;
use veriface_core::image_name::ImageName;
use veriface_core::metadata::strip_metadata;

use crate::dto::{ComparisonDto, DetectionDto, ImageBytes};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{
    body_kind, json_string, parse_form, parse_json_object, read_body, read_multipart, unsupported,
    BodyKind, Parts,
};
use crate::routes::input::{from_parts, read_images};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_image1))
        .routes(routes!(upload_image2))
        .routes(routes!(get_image, get_image_post))
        .routes(routes!(delete_image, delete_image_post))
        .routes(routes!(compare_images))
}

/// Field names accepted for the image of an upload, in order of preference
/// (the seed's README does not name the field; these are the common ones).
const UPLOAD_FIELDS: [&str; 4] = ["image", "file", "photo", "picture"];

/// Parameter names accepted for a stored image's name.
const NAME_KEYS: [&str; 6] = [
    "name",
    "image_name",
    "imageName",
    "filename",
    "key",
    "image",
];

/// An upload, as multipart.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadRequest {
    /// The image file (`image`; `file`, `photo`, `picture` or any single
    /// file part are accepted too).
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// What an upload stored and found.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResponse {
    /// Always true on success.
    pub success: bool,
    /// The stored image's name, for `/get-image`, `/delete-image` and
    /// `/compare_images`.
    #[schema(example = "4f0c7d1e9a2b3c4d5e6f708192a3b4c5.jpg")]
    pub name: String,
    /// Whether at least one human face was detected.
    pub face_detected: bool,
    /// How many faces were detected.
    pub face_count: usize,
    /// Bytes stored (the upload minus its metadata).
    pub stored_bytes: usize,
    /// The analysis: size, format, every face, timings.
    #[serde(flatten)]
    pub detection: DetectionDto,
}

/// Upload the ID-document photo (seed 000 "image 1").
#[utoipa::path(
    post,
    path = "/upload_image1",
    tag = "seed-000",
    request_body(content = UploadRequest, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored; says whether a face was found", body = UploadResponse),
        (status = 400, description = "Malformed body or image", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Not a supported image format", body = ErrorEnvelope),
        (status = 503, description = "Overloaded, timed out or storage down", body = ErrorEnvelope),
    )
)]
pub async fn upload_image1(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<UploadResponse>, ApiError> {
    upload(state, req, "image1").await
}

/// Upload the selfie (seed 000 "image 2").
#[utoipa::path(
    post,
    path = "/upload_image2",
    tag = "seed-000",
    request_body(content = UploadRequest, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored; says whether a face was found", body = UploadResponse),
        (status = 400, description = "Malformed body or image", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Not a supported image format", body = ErrorEnvelope),
        (status = 503, description = "Overloaded, timed out or storage down", body = ErrorEnvelope),
    )
)]
pub async fn upload_image2(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<UploadResponse>, ApiError> {
    upload(state, req, "image2").await
}

async fn upload(
    state: AppState,
    req: Request,
    slot: &'static str,
) -> Result<Json<UploadResponse>, ApiError> {
    let limit = state.config.body_limit;
    let input = match body_kind(&req) {
        BodyKind::Multipart => {
            let parts = read_multipart(req, limit).await?;
            let fields: [&'static str; 5] = [
                UPLOAD_FIELDS[0],
                UPLOAD_FIELDS[1],
                UPLOAD_FIELDS[2],
                UPLOAD_FIELDS[3],
                slot,
            ];
            let mut inputs = from_parts(&parts, &[&fields], true)?;
            inputs.take(0)?
        }
        BodyKind::Json => {
            let mut inputs = read_images(req, limit, &[&["image"]], false).await?;
            inputs.take(0)?
        }
        other => {
            return Err(unsupported(
                &other,
                "multipart/form-data (a file) or application/json (base64 `image`)",
            ))
        }
    };
    let analysed = state
        .faces
        .analyze(input.field.clone(), input.bytes.clone(), Descriptors::None)
        .await?;
    let analysis = &analysed.value;
    // Only images that decoded are stored, and only without metadata.
    let stripped = strip_metadata(&input.bytes, analysis.format)?;
    let name = ImageName::generate(analysis.format)?;
    let stored_bytes = stripped.len();
    let started = Instant::now();
    state.blobs.put(&name.key(), Bytes::from(stripped)).await?;
    metrics::histogram!("veriface_stage_duration_seconds", "stage" => "store")
        .record(started.elapsed().as_secs_f64());
    tracing::info!(
        backend = state.blobs.backend(),
        faces = analysis.faces.len(),
        "image stored"
    );
    Ok(Json(UploadResponse {
        success: true,
        name: name.to_string(),
        face_detected: !analysis.faces.is_empty(),
        face_count: analysis.faces.len(),
        stored_bytes,
        detection: DetectionDto::new(analysis, analysed.waited),
    }))
}

/// The name of a stored image, from the query string or the body (JSON,
/// form or multipart), under any of [`NAME_KEYS`].
async fn name_from(req: Request, limit: usize) -> Result<ImageName, ApiError> {
    if let Some(query) = req.uri().query() {
        let map = parse_form(query.as_bytes())?;
        if let Some(v) = NAME_KEYS.iter().find_map(|k| map.get(*k)) {
            return ImageName::parse(v.trim()).map_err(ApiError::from);
        }
    }
    let value = match body_kind(&req) {
        BodyKind::Missing => None,
        BodyKind::Json => {
            let bytes = read_body(req.into_body(), limit).await?;
            let map = parse_json_object(&bytes)?;
            match NAME_KEYS.iter().find(|k| map.contains_key(**k)) {
                Some(k) => Some(json_string(&map, k)?.to_string()),
                None => None,
            }
        }
        BodyKind::Form => {
            let bytes = read_body(req.into_body(), limit).await?;
            let map = parse_form(&bytes)?;
            NAME_KEYS.iter().find_map(|k| map.get(*k)).cloned()
        }
        BodyKind::Multipart => {
            let parts = read_multipart(req, limit).await?;
            name_part(&parts)?
        }
        other => {
            return Err(unsupported(
                &other,
                "a `name` query parameter, or a JSON, form or multipart body with `name`",
            ))
        }
    };
    let value = value.ok_or_else(|| ApiError::missing("name"))?;
    ImageName::parse(value.trim()).map_err(ApiError::from)
}

fn name_part(parts: &Parts) -> Result<Option<String>, ApiError> {
    for k in NAME_KEYS {
        if let Some(v) = parts.text(k)? {
            return Ok(Some(v.to_string()));
        }
    }
    Ok(None)
}

async fn fetch(state: AppState, req: Request) -> Result<Response, ApiError> {
    let name = name_from(req, state.config.body_limit).await?;
    let bytes = state.blobs.get(&name.key()).await?;
    let mut res = Response::new(Body::from(bytes));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(name.content_type()),
    );
    // Identity photos: never cached by browsers or proxies, never sniffed
    // into something executable.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// Download a stored image by name.
///
/// The name comes from `?name=` (also `image_name`, `imageName`,
/// `filename`, `key`), or from a JSON, form or multipart body with the
/// same keys.
#[utoipa::path(
    get,
    path = "/get-image",
    tag = "seed-000",
    params(("name" = String, Query, description = "The name returned by the upload")),
    responses(
        (status = 200, description = "The stored bytes", content_type = "image/*", body = ImageBytes),
        (status = 400, description = "Missing or malformed name", body = ErrorEnvelope),
        (status = 404, description = "No image with that name", body = ErrorEnvelope),
    )
)]
pub async fn get_image(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    fetch(state, req).await
}

/// A name in a body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NameRequest {
    /// The name returned by the upload.
    name: String,
}

/// Download a stored image by name (name in the body).
#[utoipa::path(
    post,
    path = "/get-image",
    tag = "seed-000",
    request_body(content(
        (NameRequest = "application/json"),
        (NameRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The stored bytes", content_type = "image/*", body = ImageBytes),
        (status = 400, description = "Missing or malformed name", body = ErrorEnvelope),
        (status = 404, description = "No image with that name", body = ErrorEnvelope),
    )
)]
pub async fn get_image_post(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    fetch(state, req).await
}

/// What a delete did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteResponse {
    /// Always true on success.
    pub success: bool,
    /// The name deleted.
    pub name: String,
    /// True: the image existed and is gone.
    pub deleted: bool,
}

async fn remove(state: AppState, req: Request) -> Result<Json<DeleteResponse>, ApiError> {
    let name = name_from(req, state.config.body_limit).await?;
    if state.blobs.delete(&name.key()).await? {
        Ok(Json(DeleteResponse {
            success: true,
            name: name.to_string(),
            deleted: true,
        }))
    } else {
        Err(veriface_core::Error::NotFound {
            code: "image_not_found",
            what: "image",
        }
        .into())
    }
}

/// Delete a stored image by name.
#[utoipa::path(
    delete,
    path = "/delete-image",
    tag = "seed-000",
    params(("name" = String, Query, description = "The name returned by the upload")),
    responses(
        (status = 200, description = "Deleted", body = DeleteResponse),
        (status = 400, description = "Missing or malformed name", body = ErrorEnvelope),
        (status = 404, description = "No image with that name", body = ErrorEnvelope),
    )
)]
pub async fn delete_image(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<DeleteResponse>, ApiError> {
    remove(state, req).await
}

/// Delete a stored image by name (POST, as seed 000 clients may send).
#[utoipa::path(
    post,
    path = "/delete-image",
    tag = "seed-000",
    request_body(content(
        (NameRequest = "application/json"),
        (NameRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Deleted", body = DeleteResponse),
        (status = 400, description = "Missing or malformed name", body = ErrorEnvelope),
        (status = 404, description = "No image with that name", body = ErrorEnvelope),
    )
)]
pub async fn delete_image_post(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<DeleteResponse>, ApiError> {
    remove(state, req).await
}

/// Two stored names.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CompareNamesRequest {
    /// First stored image (also `name1`, `image_name1`).
    image1: String,
    /// Second stored image (also `name2`, `image_name2`).
    image2: String,
    /// Match threshold (default 0.6).
    threshold: Option<f32>,
}

/// Two uploaded files.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CompareFilesRequest {
    /// First image file (or the first file part).
    #[schema(value_type = String, format = Binary)]
    image1: Vec<u8>,
    /// Second image file (or the second file part).
    #[schema(value_type = String, format = Binary)]
    image2: Vec<u8>,
    /// Match threshold (default 0.6).
    threshold: Option<f32>,
}

/// The comparison of two stored or uploaded images.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompareImagesResponse {
    /// Always true on success.
    pub success: bool,
    /// Same as `match`: whether both images show the same person.
    pub same_person: bool,
    /// Shared comparison fields (`match`, `distance`, ...).
    #[serde(flatten)]
    pub comparison: ComparisonDto,
}

const NAME1_KEYS: [&str; 3] = ["image1", "name1", "image_name1"];
const NAME2_KEYS: [&str; 3] = ["image2", "name2", "image_name2"];

/// Compare two images: two stored names or two uploaded files.
///
/// Names come as JSON or form fields `image1`/`image2` (also
/// `name1`/`name2`); files as multipart parts `image1`/`image2` (or the
/// first two file parts).
#[utoipa::path(
    post,
    path = "/compare_images",
    tag = "seed-000",
    request_body(content(
        (CompareNamesRequest = "application/json"),
        (CompareNamesRequest = "application/x-www-form-urlencoded"),
        (CompareFilesRequest = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "The comparison", body = CompareImagesResponse),
        (status = 400, description = "Malformed body, name or image", body = ErrorEnvelope),
        (status = 404, description = "A named image does not exist", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type or image format", body = ErrorEnvelope),
        (status = 422, description = "No face in one image (the message names it)", body = ErrorEnvelope),
        (status = 503, description = "Overloaded, timed out or storage down", body = ErrorEnvelope),
    )
)]
pub async fn compare_images(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<CompareImagesResponse>, ApiError> {
    let started = Instant::now();
    let limit = state.config.body_limit;
    let (names, threshold, files) =
        match body_kind(&req) {
            BodyKind::Multipart => {
                let parts = read_multipart(req, limit).await?;
                if parts.files().next().is_some() {
                    let mut inputs = from_parts(&parts, &[&NAME1_KEYS, &NAME2_KEYS], true)?;
                    let threshold = inputs.threshold_or(state.config.default_threshold)?;
                    let files = (inputs.take(0)?, inputs.take(1)?);
                    (None, threshold, Some(files))
                } else {
                    let pick = |keys: &[&str]| -> Result<Option<String>, ApiError> {
                        for k in keys {
                            if let Some(v) = parts.text(k)? {
                                return Ok(Some(v.to_string()));
                            }
                        }
                        Ok(None)
                    };
                    let threshold = match parts.text("threshold")? {
                        Some(t) => Some(crate::extract::parse_number("threshold", t)?),
                        None => None,
                    };
                    (
                        Some((pick(&NAME1_KEYS)?, pick(&NAME2_KEYS)?)),
                        threshold_of(threshold, &state)?,
                        None,
                    )
                }
            }
            BodyKind::Json => {
                let bytes = read_body(req.into_body(), limit).await?;
                let map = parse_json_object(&bytes)?;
                let pick = |keys: &[&str]| -> Result<Option<String>, ApiError> {
                    match keys.iter().find(|k| map.contains_key(**k)) {
                        Some(k) => Ok(Some(json_string(&map, k)?.to_string())),
                        None => Ok(None),
                    }
                };
                let threshold = crate::extract::json_number(&map, "threshold")?;
                (
                    Some((pick(&NAME1_KEYS)?, pick(&NAME2_KEYS)?)),
                    threshold_of(threshold, &state)?,
                    None,
                )
            }
            BodyKind::Form => {
                let bytes = read_body(req.into_body(), limit).await?;
                let map = parse_form(&bytes)?;
                let pick = |keys: &[&str]| keys.iter().find_map(|k| map.get(*k)).cloned();
                let threshold = match map.get("threshold") {
                    Some(t) => Some(crate::extract::parse_number("threshold", t)?),
                    None => None,
                };
                (
                    Some((pick(&NAME1_KEYS), pick(&NAME2_KEYS))),
                    threshold_of(threshold, &state)?,
                    None,
                )
            }
            other => return Err(unsupported(
                &other,
                "application/json or form fields image1/image2 (stored names), or multipart files",
            )),
        };

    let ((field_a, bytes_a), (field_b, bytes_b)) = match (names, files) {
        (_, Some((a, b))) => ((a.field, a.bytes), (b.field, b.bytes)),
        (Some((n1, n2)), None) => {
            let n1 = ImageName::parse(n1.ok_or_else(|| ApiError::missing("image1"))?.trim())?;
            let n2 = ImageName::parse(n2.ok_or_else(|| ApiError::missing("image2"))?.trim())?;
            let (k1, k2) = (n1.key(), n2.key());
            let (a, b) = tokio::try_join!(state.blobs.get(&k1), state.blobs.get(&k2))?;
            (("image1".to_string(), a), ("image2".to_string(), b))
        }
        (None, None) => return Err(ApiError::missing("image1")),
    };
    let labels = (field_a.clone(), field_b.clone());
    let queued = state
        .faces
        .compare((field_a, bytes_a), (field_b, bytes_b), threshold)
        .await?;
    let comparison = ComparisonDto::new(
        &queued.value,
        (&labels.0, &labels.1),
        queued.waited,
        std::time::Duration::ZERO,
        started.elapsed(),
    );
    Ok(Json(CompareImagesResponse {
        success: true,
        same_person: queued.value.outcome.is_match,
        comparison,
    }))
}

fn threshold_of(
    value: Option<f32>,
    state: &AppState,
) -> Result<veriface_core::face::Threshold, ApiError> {
    value
        .map_or(
            Ok(state.config.default_threshold),
            veriface_core::face::Threshold::parse,
        )
        .map_err(ApiError::from)
}
