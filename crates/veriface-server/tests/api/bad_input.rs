//! Every kind of bad input: status, code, and no file left behind.

use reqwest::header::CONTENT_TYPE;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;
use veriface_testkit::app::{spawn_app, spawn_app_with};
use veriface_testkit::fixtures::{fixture_bytes, photos};

use crate::helpers::{assert_no_files, b64, data_uri, expect_error, files, png_header, PDF};

#[tokio::test]
async fn unsupported_image_formats_are_415_except_on_seed_004_json_where_they_are_400() {
    let app = spawn_app().await;
    let tiff = b"II*\0\x08\0\0\0\0\0\0\0".to_vec();
    for (path, form) in [
        (
            "/compare",
            files(&[
                ("reference_image", PDF.to_vec()),
                ("live_image", fixture_bytes(photos::PERSON02_A)),
            ]),
        ),
        ("/v1/detect", files(&[("image", tiff.clone())])),
        ("/upload_image1", files(&[("image", PDF.to_vec())])),
        (
            "/compare_images",
            files(&[("image1", PDF.to_vec()), ("image2", PDF.to_vec())]),
        ),
    ] {
        let res = app
            .client
            .post(app.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let body = expect_error(
            res,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image_format",
        )
        .await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("pdf") || path == "/v1/detect",
            "{body}"
        );
    }
    // Seed 004 documents 400 for an incorrect image format, with its own
    // fields beside the error.
    let res = app
        .client
        .post(app.url("/compare"))
        .json(&json!({"passport": b64(PDF), "face": data_uri(photos::PERSON02_A)}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::BAD_REQUEST, "unsupported_image_format").await;
    assert_eq!(body["success"], false);
    assert!(
        body["message"].as_str().unwrap().contains("passport"),
        "{body}"
    );
    assert_no_files(&app);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whether_declared_or_streamed() {
    let app = spawn_app_with(|s| s.body_limit = 64 * 1024).await;
    let big = vec![0xAB; 100 * 1024];
    // Declared length over the limit: refused before reading.
    let res = app
        .client
        .post(app.url("/v1/detect"))
        .multipart(files(&[("image", big.clone())]))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Chunked (no length): cut off while reading.
    let stream = futures::stream::iter(
        big.chunks(8 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let res = app
        .client
        .post(app.url("/compare"))
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(body["success"], false);
    // The same for a streamed multipart upload.
    let part = Part::stream(reqwest::Body::wrap_stream(futures::stream::iter(
        big.chunks(8 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )))
    .file_name("x.jpg");
    let res = app
        .client
        .post(app.url("/upload_image1"))
        .multipart(Form::new().part("image", part))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_no_files(&app);
}

#[tokio::test]
async fn images_over_the_pixel_limits_are_413_before_decoding() {
    let app = spawn_app_with(|s| s.max_image_pixels = 100_000).await;
    // A 20000x20000 header (400 Mpx) in 60 bytes: refused from the header.
    let res = app
        .client
        .post(app.url("/v1/detect"))
        .json(&json!({"image": b64(&png_header(20_000, 20_000))}))
        .send()
        .await
        .unwrap();
    expect_error(
        res,
        StatusCode::PAYLOAD_TOO_LARGE,
        "image_dimensions_too_large",
    )
    .await;
    // A real 400x300 photo is over this app's 100 000-pixel limit.
    let res = app
        .client
        .post(app.url("/upload_image2"))
        .multipart(files(&[("image", fixture_bytes(photos::PERSON02_A))]))
        .send()
        .await
        .unwrap();
    let body = expect_error(
        res,
        StatusCode::PAYLOAD_TOO_LARGE,
        "image_dimensions_too_large",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("400x300"),
        "{body}"
    );
    assert_no_files(&app);
}

#[tokio::test]
async fn malformed_json_base64_and_multipart_are_400() {
    let app = spawn_app().await;
    let post_json = |path: &str, body: &'static str| {
        app.client
            .post(app.url(path))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let body = expect_error(
        post_json("/compare", r#"{"passport": "abc""#)
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_eq!(body["success"], false);
    expect_error(
        post_json("/compare", "[1, 2]").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    expect_error(
        post_json("/v1/compare", "not json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;

    let res = app
        .client
        .post(app.url("/compare"))
        .json(&json!({"passport": "%%% not base64 %%%", "face": data_uri(photos::PERSON02_A)}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_base64").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("passport"));
    let res = app
        .client
        .post(app.url("/compare"))
        .json(&json!({"passport": data_uri(photos::PERSON02_A)}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::BAD_REQUEST, "missing_field").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("face"));
    let res = app
        .client
        .post(app.url("/compare"))
        .json(&json!({"passport": 42, "face": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_field").await;

    // Valid base64 of bytes that are not a whole image.
    let truncated = &fixture_bytes(photos::PERSON02_A)[..2000];
    let res = app
        .client
        .post(app.url("/v1/detect"))
        .json(&json!({"image": b64(truncated)}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_image").await;
    let res = app
        .client
        .post(app.url("/v1/detect"))
        .json(&json!({"image": ""}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "empty_image").await;

    // Multipart with a boundary that never appears, and without one.
    for content_type in ["multipart/form-data; boundary=XYZ", "multipart/form-data"] {
        let res = app
            .client
            .post(app.url("/compare"))
            .header(CONTENT_TYPE, content_type)
            .body("--nope\r\ngarbage")
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "malformed_multipart").await;
    }
    let res = app
        .client
        .post(app.url("/compare"))
        .multipart(files(&[(
            "reference_image",
            fixture_bytes(photos::PERSON02_A),
        )]))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::BAD_REQUEST, "missing_field").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("live_image"));
    assert_no_files(&app);
}

#[tokio::test]
async fn an_unknown_content_type_is_415_and_unknown_routes_and_methods_have_the_envelope() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/compare"))
        .header(CONTENT_TYPE, "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    expect_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_type",
    )
    .await;
    let res = app.client.post(app.url("/v1/detect")).send().await.unwrap();
    expect_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_type",
    )
    .await;
    let res = app.get("/nope").await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get("/compare").await;
    let body = expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_eq!(body["success"], false);
}

#[tokio::test]
async fn no_face_is_422_naming_the_image() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/compare"))
        .json(&json!({"passport": data_uri(photos::PERSON02_A), "face": data_uri(photos::NO_FACE)}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "no_face_detected").await;
    assert_eq!(body["error"]["message"], "no face detected in face");
    assert_eq!(body["success"], false);
    let res = app
        .client
        .post(app.url("/compare"))
        .multipart(files(&[
            ("reference_image", fixture_bytes(photos::NO_FACE)),
            ("live_image", fixture_bytes(photos::PERSON02_A)),
        ]))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "no_face_detected").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .ends_with("reference_image"));
    assert_no_files(&app);
}
