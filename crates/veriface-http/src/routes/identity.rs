//! The identity store over HTTP (seed 001's verifier, without a broker):
//! asynchronous enrolment through the embedded durable queue, subject
//! status, 1:1 verification, 1:N search and erasure.
//!
//! Templates never leave the server: no response carries a descriptor.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veriface_core::identity::{JobId, JobStatus, NewJob, SubjectStatus, Username};
use veriface_core::Error;

use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{
    body_kind, decode_base64_image, json_number, json_string, parse_json_object, parse_number,
    read_body, read_multipart, unsupported, BodyKind,
};
use crate::state::{AppState, IdentityState};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enrol))
        .routes(routes!(enrolment_status))
        .routes(routes!(get_user, delete_user))
        .routes(routes!(verify_user))
        .routes(routes!(search))
}

/// Default number of search results.
const DEFAULT_K: usize = 5;

fn identity(state: &AppState) -> Result<&IdentityState, ApiError> {
    state.identity.as_ref().ok_or_else(|| {
        ApiError::from(Error::Unavailable {
            what: "the identity store",
            source: "this server was started without a database".into(),
        })
    })
}

/// The fields of an identity request, whichever body form it used.
struct Fields {
    image: Bytes,
    username: Option<String>,
    threshold: Option<f32>,
    k: Option<f32>,
}

/// Reads `image` (a file part, or base64/data URI in JSON) and the
/// optional text fields `username`, `threshold` and `k`.
async fn read_fields(req: Request, limit: usize) -> Result<Fields, ApiError> {
    match body_kind(&req) {
        BodyKind::Json => {
            let bytes = read_body(req.into_body(), limit).await?;
            let map = parse_json_object(&bytes)?;
            let image = decode_base64_image("image", json_string(&map, "image")?)?;
            let username = match map.get("username") {
                None | Some(serde_json::Value::Null) => None,
                Some(_) => Some(json_string(&map, "username")?.to_string()),
            };
            Ok(Fields {
                image,
                username,
                threshold: json_number(&map, "threshold")?,
                k: json_number(&map, "k")?,
            })
        }
        BodyKind::Multipart => {
            let parts = read_multipart(req, limit).await?;
            let image = parts
                .get("image")
                .ok_or_else(|| ApiError::missing("image"))?
                .bytes
                .clone();
            let number = |name: &str| -> Result<Option<f32>, ApiError> {
                match parts.text(name)? {
                    Some(t) if !t.trim().is_empty() => Ok(Some(parse_number(name, t)?)),
                    _ => Ok(None),
                }
            };
            Ok(Fields {
                username: parts.text("username")?.map(|u| u.trim().to_string()),
                threshold: number("threshold")?,
                k: number("k")?,
                image,
            })
        }
        other => Err(unsupported(
            &other,
            "multipart/form-data (an `image` file) or application/json (a base64 `image`)",
        )),
    }
}

/// An enrolment, as JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EnrolJsonRequest {
    /// Whom to enrol (1-128 ASCII letters, digits and `. _ @ + -`).
    username: String,
    /// The photo, base64 or a data URI.
    image: String,
}

/// An enrolment, as multipart.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EnrolMultipartRequest {
    /// Whom to enrol.
    username: String,
    /// The photo file.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// An enrolment job's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentJobDto {
    /// The job id.
    pub job_id: i64,
    /// The subject it enrols.
    pub username: String,
    /// `queued`, `running`, `done` or `failed`.
    #[schema(example = "queued")]
    pub state: &'static str,
    /// Processing attempts so far.
    pub attempts: u32,
    /// The outcome once done (`enrolled`, or the reason the photo was
    /// refused: `no_face_detected`, `multiple_faces`, an image error code),
    /// or the last failure.
    pub reason: Option<String>,
    /// Where to poll this job.
    #[schema(example = "/v1/enrollments/42")]
    pub status_url: String,
    /// Where the subject's status is.
    #[schema(example = "/v1/users/alice")]
    pub user_url: String,
    /// Enqueued (RFC 3339, UTC).
    pub created_at: String,
    /// Last change (RFC 3339, UTC).
    pub updated_at: String,
}

impl EnrolmentJobDto {
    fn new(j: &JobStatus) -> Self {
        Self {
            job_id: j.id.0,
            username: j.username.as_str().to_string(),
            state: j.state.as_str(),
            attempts: j.attempts,
            reason: j.reason.clone(),
            status_url: format!("/v1/enrollments/{}", j.id.0),
            user_url: format!("/v1/users/{}", j.username.as_str()),
            created_at: j.created_at.to_rfc3339(),
            updated_at: j.updated_at.to_rfc3339(),
        }
    }
}

/// Enrol a subject asynchronously: the photo is queued durably (it
/// survives a restart) and processed by the enrolment worker, which stores
/// the face template and sets `verified`, or records why not. Poll
/// `status_url` or `GET /v1/users/{username}`.
#[utoipa::path(
    post,
    path = "/v1/enrollments",
    operation_id = "v1_enrol",
    tag = "identity",
    request_body(content(
        (EnrolMultipartRequest = "multipart/form-data"),
        (EnrolJsonRequest = "application/json"),
    )),
    responses(
        (status = 202, description = "Queued; `Location` is the job", body = EnrolmentJobDto),
        (status = 400, description = "Malformed body, missing field or invalid username", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type", body = ErrorEnvelope),
        (status = 503, description = "The database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn enrol(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let id = identity(&state)?;
    let fields = read_fields(req, state.config.body_limit).await?;
    let raw = fields
        .username
        .ok_or_else(|| ApiError::missing("username"))?;
    let username = Username::parse(&raw)?;
    if fields.image.is_empty() {
        return Err(Error::Image {
            label: "image".to_string(),
            source: veriface_vision::decode::ImageError::Empty,
        }
        .into());
    }
    let job = id
        .jobs
        .enqueue(NewJob {
            username,
            image: fields.image,
        })
        .await?;
    id.enqueued.notify_one();
    let status = id.jobs.find_job(job).await?.ok_or_else(|| {
        ApiError::internal(std::io::Error::other("an enqueued job vanished at once"))
    })?;
    let dto = EnrolmentJobDto::new(&status);
    let mut res = (StatusCode::ACCEPTED, Json(dto)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/enrollments/{}", job.0)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// An enrolment job's state (never its photo).
#[utoipa::path(
    get,
    path = "/v1/enrollments/{job_id}",
    operation_id = "v1_enrolment_status",
    tag = "identity",
    params(("job_id" = i64, Path, description = "The id `POST /v1/enrollments` answered")),
    responses(
        (status = 200, description = "The job", body = EnrolmentJobDto),
        (status = 404, description = "No such job (`job_not_found`); erased subjects' jobs are gone too", body = ErrorEnvelope),
        (status = 503, description = "The database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn enrolment_status(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<EnrolmentJobDto>, ApiError> {
    let id = identity(&state)?;
    let not_found = || {
        ApiError::from(Error::NotFound {
            code: "job_not_found",
            what: "enrolment job",
        })
    };
    let job_id: i64 = job_id.parse().map_err(|_| not_found())?;
    let job = id
        .jobs
        .find_job(JobId(job_id))
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(EnrolmentJobDto::new(&job)))
}

/// A subject's status (never its templates).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// The subject.
    pub username: String,
    /// True once a face template is stored.
    pub verified: bool,
    /// Why not verified: the reason code of the latest refused enrolment
    /// (`no_face_detected`, `multiple_faces`, `file_not_found`, ...).
    pub reason: Option<String>,
    /// Stored face templates.
    pub templates: u32,
    /// First seen (RFC 3339, UTC).
    pub created_at: String,
    /// Last enrolment decision (RFC 3339, UTC).
    pub updated_at: String,
    /// When the first template was stored (RFC 3339, UTC).
    pub enrolled_at: Option<String>,
}

impl UserDto {
    fn new(s: &SubjectStatus) -> Self {
        Self {
            username: s.username.as_str().to_string(),
            verified: s.verified,
            reason: s.reason.clone(),
            templates: s.template_count,
            created_at: s.created_at.to_rfc3339(),
            updated_at: s.updated_at.to_rfc3339(),
            enrolled_at: s.enrolled_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// A subject's verified flag, reason and enrolment time.
#[utoipa::path(
    get,
    path = "/v1/users/{username}",
    operation_id = "v1_get_user",
    tag = "identity",
    params(("username" = String, Path, description = "The subject")),
    responses(
        (status = 200, description = "The subject", body = UserDto),
        (status = 400, description = "Invalid username", body = ErrorEnvelope),
        (status = 404, description = "Never enrolled, or erased (`subject_not_found`)", body = ErrorEnvelope),
        (status = 503, description = "The database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<UserDto>, ApiError> {
    let id = identity(&state)?;
    let username = Username::parse(&username)?;
    let status = id.service.status(&username).await?;
    Ok(Json(UserDto::new(&status)))
}

/// What an erasure removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureDto {
    /// The subject.
    pub username: String,
    /// Whether the subject existed.
    pub deleted: bool,
    /// Face templates deleted.
    pub templates: u64,
    /// Enrolment jobs deleted, with the photos they held.
    pub jobs: u64,
}

/// Erase a subject (right to be forgotten): its templates, its queued and
/// finished enrolment jobs with their photos, and its cached entries. The
/// audit log keeps only a hash of the username. Idempotent: erasing an
/// unknown subject answers 200 with `deleted: false`.
#[utoipa::path(
    delete,
    path = "/v1/users/{username}",
    operation_id = "v1_delete_user",
    tag = "identity",
    params(("username" = String, Path, description = "The subject")),
    responses(
        (status = 200, description = "Erased (or never existed)", body = ErasureDto),
        (status = 400, description = "Invalid username", body = ErrorEnvelope),
        (status = 503, description = "The database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<ErasureDto>, ApiError> {
    let id = identity(&state)?;
    let username = Username::parse(&username)?;
    let report = id.service.erase(&username).await?;
    Ok(Json(ErasureDto {
        username: username.as_str().to_string(),
        deleted: report.subject,
        templates: report.templates,
        jobs: report.jobs,
    }))
}

/// A selfie to check, as JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ProbeJsonRequest {
    /// The photo, base64 or a data URI.
    image: String,
    /// Match threshold (0 < t <= 2; default 0.6).
    threshold: Option<f32>,
}

/// A selfie to check, as multipart.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ProbeMultipartRequest {
    /// The photo file.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// Match threshold (default 0.6).
    threshold: Option<f32>,
}

/// The 1:1 decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyDto {
    /// The subject.
    pub username: String,
    /// Whether the selfie's largest face is the enrolled subject.
    #[serde(rename = "match")]
    pub is_match: bool,
    /// Euclidean distance to the closest stored template.
    pub distance: f32,
    /// `clamp(1 - distance / (2 * threshold), 0, 1)`: 0.5 at the threshold.
    pub similarity: f32,
    /// The threshold used.
    pub threshold: f32,
    /// Templates compared.
    pub templates: usize,
    /// Faces found in the selfie (the largest is used).
    pub faces: usize,
}

/// 1:1: is the largest face in `image` the enrolled subject? Compared with
/// every stored template; the decision is audited.
#[utoipa::path(
    post,
    path = "/v1/users/{username}/verify",
    operation_id = "v1_verify_user",
    tag = "identity",
    params(("username" = String, Path, description = "The subject")),
    request_body(content(
        (ProbeMultipartRequest = "multipart/form-data"),
        (ProbeJsonRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The decision", body = VerifyDto),
        (status = 400, description = "Malformed body, image or threshold", body = ErrorEnvelope),
        (status = 404, description = "Unknown subject (`subject_not_found`)", body = ErrorEnvelope),
        (status = 409, description = "The subject has no template (`subject_not_verified`)", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type or image format", body = ErrorEnvelope),
        (status = 422, description = "No face in the image", body = ErrorEnvelope),
        (status = 503, description = "Overloaded, timed out or the database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn verify_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
    req: Request,
) -> Result<Json<VerifyDto>, ApiError> {
    let id = identity(&state)?;
    let username = Username::parse(&username)?;
    let fields = read_fields(req, state.config.body_limit).await?;
    let v = id
        .service
        .verify(&username, fields.image, fields.threshold)
        .await?;
    Ok(Json(VerifyDto {
        username: username.as_str().to_string(),
        is_match: v.is_match,
        distance: v.distance,
        similarity: v.similarity,
        threshold: v.threshold,
        templates: v.templates,
        faces: v.faces,
    }))
}

/// A 1:N query, as JSON.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SearchJsonRequest {
    /// The photo, base64 or a data URI.
    image: String,
    /// Most results to return (1-100, default 5).
    k: Option<u32>,
    /// Only subjects within this distance (default 0.6).
    threshold: Option<f32>,
}

/// A 1:N query, as multipart.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SearchMultipartRequest {
    /// The photo file.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// Most results (default 5).
    k: Option<u32>,
    /// Distance threshold (default 0.6).
    threshold: Option<f32>,
}

/// One enrolled subject close to the query.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitDto {
    /// The subject.
    pub username: String,
    /// Euclidean distance of its closest template.
    pub distance: f32,
    /// As in comparisons: 0.5 at the threshold.
    pub similarity: f32,
}

/// The 1:N answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchDto {
    /// Subjects within the threshold, closest first, at most `k`.
    pub results: Vec<SearchHitDto>,
    /// The threshold used.
    pub threshold: f32,
    /// Templates searched.
    pub searched: usize,
    /// Faces found in the query (the largest is used).
    pub faces: usize,
}

/// 1:N: which enrolled subjects look like the largest face in `image`
/// (duplicate-account checks). Exhaustive search over every template of
/// the current model.
#[utoipa::path(
    post,
    path = "/v1/search",
    operation_id = "v1_search",
    tag = "identity",
    request_body(content(
        (SearchMultipartRequest = "multipart/form-data"),
        (SearchJsonRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The closest subjects", body = SearchDto),
        (status = 400, description = "Malformed body, image, `k` (`invalid_search`) or threshold", body = ErrorEnvelope),
        (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Unsupported Content-Type or image format", body = ErrorEnvelope),
        (status = 422, description = "No face in the image", body = ErrorEnvelope),
        (status = 503, description = "Overloaded, timed out or the database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<SearchDto>, ApiError> {
    let id = identity(&state)?;
    let fields = read_fields(req, state.config.body_limit).await?;
    let k = match fields.k {
        None => DEFAULT_K,
        // A fractional or negative k is as invalid as 0.
        Some(k) if k.fract() == 0.0 && (0.0..=1e6).contains(&k) => k as usize,
        Some(_) => 0,
    };
    let r = id.service.search(fields.image, k, fields.threshold).await?;
    Ok(Json(SearchDto {
        results: r
            .results
            .into_iter()
            .map(|h| SearchHitDto {
                username: h.username.as_str().to_string(),
                distance: h.distance,
                similarity: h.similarity,
            })
            .collect(),
        threshold: r.threshold,
        searched: r.searched,
        faces: r.faces,
    }))
}
