//! veriface's HTTP API: axum router, error codes, compatibility endpoints of the seed services, /v1 API, OpenAPI, pages.
//!
//! The router is assembled from one `OpenApiRouter` per API family
//! ([`api_router`]), so every route is registered together with its
//! OpenAPI operation; [`build`] adds the layers every route runs through
//! (request id and access log, API keys and rate limit, body limit,
//! timeout, error rendering). A later feature adds its family with one
//! `.merge(...)` line in [`api_router`] and its ports as fields of
//! [`AppState`].
//!
//! ```no_run
//! # async fn demo(state: veriface_http::AppState) -> std::io::Result<()> {
//! let app = veriface_http::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

pub mod auth;
pub mod docs_page;
pub mod dto;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;

use axum::extract::DefaultBodyLimit;
use axum::{middleware as mw, Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ErrorCode};
pub use state::{AppState, HttpConfig, Sessions};

/// Every API family's routes, documented, without layers or state.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::compat::router())
        .merge(routes::seed000::router())
        .merge(routes::v1::router())
        .merge(routes::identity::router())
        .merge(routes::ops::router())
        .merge(routes::sessions::router())
        .merge(routes::pages::router())
        .merge(openapi::router())
}

/// The OpenAPI document of [`api_router`].
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The complete application: [`api_router`] with its layers and state.
pub fn router(state: AppState) -> Router {
    build(state, api_router())
}

/// Adds the layers every route runs through, the `/openapi.json` and
/// `/docs` document, and the state to `api`.
pub fn build(state: AppState, api: OpenApiRouter<AppState>) -> Router {
    let (routes, doc) = api.split_for_parts();
    let doc = openapi::ApiDocument::new(doc);
    // The last layer added runs first: observe (id, span, metrics,
    // timeout, error rendering) wraps authorize, which wraps the
    // declared-length check, which wraps the routes.
    routes
        .fallback(middleware::not_found)
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(mw::from_fn_with_state(
            state.clone(),
            middleware::check_length,
        ))
        .layer(mw::from_fn_with_state(state.clone(), middleware::authorize))
        .layer(mw::from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}
