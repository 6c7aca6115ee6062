//! Request builders and assertions shared by the API tests.

use base64::Engine;
use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use veriface_testkit::app::TestApp;
use veriface_testkit::fixtures::fixture_bytes;

/// A multipart form with image files `(field, bytes)`.
pub fn files(parts: &[(&str, Vec<u8>)]) -> Form {
    let mut form = Form::new();
    for (name, bytes) in parts {
        form = form.part(
            (*name).to_string(),
            Part::bytes(bytes.clone())
                .file_name(format!("{name}.jpg"))
                .mime_str("image/jpeg")
                .unwrap(),
        );
    }
    form
}

/// A fixture as a data URI, as seed 004's browser clients send it.
pub fn data_uri(name: &str) -> String {
    format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(fixture_bytes(name))
    )
}

/// Plain base64 of some bytes.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Asserts an error response's status, code and envelope (with the
/// request id of the response header) and returns the body.
pub async fn expect_error(res: Response, status: StatusCode, code: &str) -> Value {
    let got = res.status();
    let request_id = res
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    assert_eq!(
        body["error"]["request_id"].as_str(),
        request_id.as_deref(),
        "the body's request id is the header's"
    );
    body
}

/// Asserts a 200 and returns the JSON body.
pub async fn expect_ok(res: Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "body: {body}");
    body
}

/// Asserts that the app's data directory holds no file at all.
pub fn assert_no_files(app: &TestApp) {
    assert!(
        app.files().is_empty(),
        "files left in the data directory: {:?}",
        app.files()
    );
}

/// A PDF header: a real-world wrong upload.
pub const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";

/// A valid PNG header declaring `width` x `height` pixels and no pixel
/// data: a decompression bomb's header, refused before any decoding.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = 0xFFFF_FFFFu32;
        for &b in kind.iter().chain(data) {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            }
        }
        out.extend_from_slice(&(!crc).to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    // The start of a zlib stream: decoders read the header up to the first
    // IDAT, and the size check must happen before any of it is inflated.
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00]);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// `bytes` re-encoded as another format (for the format tests).
pub fn reencode(bytes: &[u8], format: image::ImageFormat) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// `bytes` (a JPEG) scaled by `factor` (to make slow requests).
pub fn scaled_jpeg(bytes: &[u8], factor: f64) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    let (w, h) = (
        (f64::from(img.width()) * factor) as u32,
        (f64::from(img.height()) * factor) as u32,
    );
    let big = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    big.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}
