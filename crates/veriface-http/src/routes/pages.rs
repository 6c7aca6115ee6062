//! The pages the binary serves for seed 002's flow: `/test_page` (a
//! "Start Verification" button) and the session page `/verify/{id}`.
//!
//! Everything is embedded (`include_str!` of `assets/`): no CDN, no web
//! font, no build step. The session page works out whether it runs on a
//! phone (coarse pointer or a narrow window; `?mode=phone` or
//! `?mode=desktop` force it): a phone gets the camera capture of the ID
//! front, ID back and selfie with preview and retake, then confirm and the
//! live status; a desktop gets a QR code of the page's URL, rendered here
//! as inline SVG, and follows the status.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use rxing::qrcode::QRCodeWriter;
use rxing::{BarcodeFormat, EncodeHints, Writer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veriface_core::session::SessionId;

use crate::docs_page::esc;
use crate::error::{ApiError, ErrorEnvelope};
use crate::routes::sessions::{base_url, page_url, sessions};
use crate::state::AppState;

const CSS: &str = include_str!("../../assets/style.css");
const TEST_PAGE: &str = include_str!("../../assets/test_page.html");
const SESSION_PAGE: &str = include_str!("../../assets/session.html");
const SESSION_JS: &str = include_str!("../../assets/session.js");

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(test_page))
        .routes(routes!(session_page))
}

/// `text` as a QR code in SVG (one `path` of unit squares, 4-module quiet
/// zone, error correction M so a phone camera reads it off a screen).
///
/// # Errors
/// `internal` when the text does not fit a QR code (the URL is short and
/// built by this server, so that would be a bug).
pub fn qr_svg(text: &str) -> Result<String, ApiError> {
    let hints = EncodeHints {
        ErrorCorrection: Some("M".into()),
        ..EncodeHints::default()
    };
    let matrix = QRCodeWriter
        .encode_with_hints(text, &BarcodeFormat::QR_CODE, 0, 0, &hints)
        .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))?;
    let (w, h) = (matrix.getWidth(), matrix.getHeight());
    let mut path = String::new();
    for y in 0..h {
        for x in 0..w {
            if matrix.get(x, y) {
                path.push_str(&format!("M{x} {y}h1v1h-1z"));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

fn page(html: String) -> Response {
    let mut res = Html(html).into_response();
    let h = res.headers_mut();
    // Inline script and style only, camera allowed for this origin.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src 'self' blob: data:; media-src 'self' blob: mediastream:; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A page to try the flow: its "Start Verification" button starts a
/// session and opens the session page.
#[utoipa::path(
    get,
    path = "/test_page",
    tag = "pages",
    responses((status = 200, description = "The test page", content_type = "text/html", body = String))
)]
pub async fn test_page() -> Response {
    page(TEST_PAGE.replace("{{CSS}}", CSS))
}

/// The session page: camera capture on a phone, a QR code of itself on a
/// desktop, and the live status on both.
#[utoipa::path(
    get,
    path = "/verify/{session_id}",
    tag = "pages",
    params(("session_id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The session page", content_type = "text/html", body = String),
        (status = 404, description = "No such session", body = ErrorEnvelope),
    )
)]
pub async fn session_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    let s = sessions(&state)?;
    let id = SessionId::parse(&session_id)?;
    // 404 for an unknown session rather than a page that cannot work.
    let session = s.service.status(&id).await?;
    let url = page_url(&base_url(s, &headers), &session.id);
    let html = SESSION_PAGE
        .replace("{{CSS}}", CSS)
        .replace("{{JS}}", SESSION_JS)
        .replace("{{QR_SVG}}", &qr_svg(&url)?)
        .replace("{{SESSION_ID}}", &esc(session.id.as_str()))
        .replace("{{URL}}", &esc(&url));
    Ok(page(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_of_square_modules() {
        let svg = qr_svg("http://127.0.0.1:5000/verify/0123456789abcdef0123456789abcdef").unwrap();
        assert!(svg.starts_with("<svg"));
        // Version 3 or 4 for a URL of this length: 29 or 33 modules plus
        // the quiet zone on each side.
        let side: u32 = svg
            .split("viewBox=\"0 0 ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!((29 + 8..=33 + 8).contains(&side), "{side}");
        assert!(svg.matches('z').count() > 200, "modules drawn");
    }

    #[test]
    fn html_escaping_covers_attribute_quotes() {
        assert_eq!(esc("a\"<b>'&"), "a&quot;&lt;b&gt;&#39;&amp;");
    }
}
