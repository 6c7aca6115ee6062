//! The OpenAPI 3.1 document and the docs page, both generated from the
//! same `#[utoipa::path]` annotations that register the routes (through
//! `utoipa_axum`), so a route cannot exist undocumented.

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, SecurityRequirement};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, ErrorEnvelope};
use crate::middleware::{is_session_path, PUBLIC_PATHS};
use crate::state::AppState;

/// The document's fixed parts; paths are added by the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "veriface",
        description = "Self-hosted identity verification: face detection, 1:1 face comparison of an ID photo and a selfie, and verification sessions with ID document reading (seed 002), and the endpoints of the services veriface replaces (seeds 000, 002, 003, 004). Errors are `{\"error\": {\"code\", \"message\", \"request_id\"}}`; codes are listed in docs/api-errors.md.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "compatibility", description = "Seed 004 (`GET /`, JSON `POST /compare`) and seed 003 (multipart `POST /compare`)"),
        (name = "seed-000", description = "Seed 000: upload, fetch, delete and compare stored images"),
        (name = "v1", description = "veriface's own API"),
        (name = "identity", description = "Seed 001's verifier over HTTP: enrolment through the durable queue, subject status, 1:1 verify, 1:N search, erasure"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "sessions", description = "Seed 002: verification sessions (ID front, ID back, selfie; document reading and face comparison). The scan calls and check_status need no API key: the session id is their credential"),
        (name = "pages", description = "Seed 002's pages: the test page and the session page (camera capture on a phone, QR code on a desktop)"),
        (name = "documentation", description = "This document and its readable page"),
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The routes serving the document and the page.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
}

/// The rendered document, shared by the two routes.
#[derive(Debug, Clone)]
pub struct ApiDocument {
    json: Arc<String>,
    html: Arc<String>,
}

impl ApiDocument {
    /// Finishes the document (security requirements: a key is needed when
    /// the server has keys, except on the public paths) and renders both
    /// forms once.
    pub fn new(mut doc: OpenApiDoc) -> Self {
        let optional_key = vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("api_key", Vec::<String>::new()),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = PUBLIC_PATHS.contains(&path.as_str()) || is_session_path(path);
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.security = Some(if public {
                    vec![SecurityRequirement::default()]
                } else {
                    optional_key.clone()
                });
            }
        }
        let value = serde_json::to_value(&doc).unwrap_or_default();
        let json = serde_json::to_string_pretty(&value).unwrap_or_default();
        let html = crate::docs_page::render(&value);
        Self {
            json: Arc::new(json),
            html: Arc::new(html),
        }
    }

    /// The document as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// This OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "documentation",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<ApiDocument>) -> Response {
    let mut res = doc.json.as_str().to_string().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A readable page of this document (self-contained HTML, works offline).
#[utoipa::path(
    get,
    path = "/docs",
    tag = "documentation",
    responses((status = 200, description = "The API reference as HTML", content_type = "text/html", body = String))
)]
pub async fn docs_page(Extension(doc): Extension<ApiDocument>) -> Html<String> {
    Html(doc.html.as_str().to_string())
}
