//! `/v1/detect`, `/v1/compare` (per-request threshold), `/v1/embed`.

use reqwest::StatusCode;
use serde_json::json;
use veriface_testkit::app::spawn_app;
use veriface_testkit::fixtures::{fixture_bytes, photos};

use crate::helpers::{data_uri, expect_error, expect_ok, files, reencode};

#[tokio::test]
async fn detect_finds_every_face_largest_first_in_any_supported_format() {
    let app = spawn_app().await;
    let body = expect_ok(
        app.client
            .post(app.url("/v1/detect"))
            .multipart(files(&[("image", fixture_bytes(photos::COUPLE))]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["faces_found"], 2, "{body}");
    assert_eq!(body["format"], "jpeg");
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(570), Some(397))
    );
    let faces = body["faces"].as_array().unwrap();
    let width = |f: &serde_json::Value| {
        f["box"]["right"].as_i64().unwrap() - f["box"]["left"].as_i64().unwrap()
    };
    assert!(width(&faces[0]) >= width(&faces[1]));
    assert!(faces.iter().all(|f| f.get("embedding").is_none()));

    // The format comes from the bytes: PNG, WebP, BMP and GIF decode.
    let jpeg = fixture_bytes(photos::PERSON02_A);
    for (format, name) in [
        (image::ImageFormat::Png, "png"),
        (image::ImageFormat::WebP, "webp"),
        (image::ImageFormat::Bmp, "bmp"),
        (image::ImageFormat::Gif, "gif"),
    ] {
        let body = expect_ok(
            app.client
                .post(app.url("/v1/detect"))
                .json(&json!({"image": crate::helpers::b64(&reencode(&jpeg, format))}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(body["format"], name);
        assert_eq!(body["faces_found"], 1, "{name}: {body}");
    }
}

#[tokio::test]
async fn compare_takes_a_per_request_threshold() {
    let app = spawn_app().await;
    let pair = || {
        files(&[
            ("a", fixture_bytes(photos::PERSON02_A)),
            ("b", fixture_bytes(photos::PERSON02_B)),
        ])
    };
    let default = expect_ok(
        app.client
            .post(app.url("/v1/compare"))
            .multipart(pair())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(default["match"], true, "{default}");
    let d = default["distance"].as_f64().unwrap();

    // A threshold below the pair's distance turns the same pair into a
    // non-match (and similarity is measured against it).
    let strict = (d * 0.5 * 1000.0).round() / 1000.0;
    let body = expect_ok(
        app.client
            .post(app.url("/v1/compare"))
            .multipart(pair().text("threshold", strict.to_string()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["match"], false, "{body}");
    assert!((body["threshold"].as_f64().unwrap() - strict).abs() < 1e-6);
    assert!(body["similarity"].as_f64().unwrap() < 0.5);

    let json_form = expect_ok(
        app.client
            .post(app.url("/v1/compare"))
            .json(&json!({"a": data_uri(photos::PERSON02_A), "b": data_uri(photos::ANGELINA), "threshold": 0.9}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(json_form["threshold"], 0.9);
    assert!(json_form["images"]["a"]["face"].is_object());

    // Bad thresholds are refused before any image is analysed.
    for (bad, code) in [
        ("0", "invalid_threshold"),
        ("-1", "invalid_threshold"),
        ("3", "invalid_threshold"),
        ("abc", "invalid_field"),
    ] {
        let res = app
            .client
            .post(app.url("/v1/compare"))
            .multipart(pair().text("threshold", bad))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, code).await;
    }
}

#[tokio::test]
async fn embed_returns_one_128_d_descriptor_per_face() {
    let app = spawn_app().await;
    let body = expect_ok(
        app.client
            .post(app.url("/v1/embed"))
            .multipart(files(&[("image", fixture_bytes(photos::COUPLE))]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let faces = body["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2, "{body}");
    for f in faces {
        let e = f["embedding"].as_array().unwrap();
        assert_eq!(e.len(), 128);
        let norm: f64 = e
            .iter()
            .map(|v| v.as_f64().unwrap().powi(2))
            .sum::<f64>()
            .sqrt();
        // dlib's descriptors are not normalised; their lengths are 1.3-1.6.
        assert!((0.8..2.0).contains(&norm), "norm {norm}");
        assert!(f["box"].is_object());
    }
    assert_eq!(body["model"], "dlib_face_recognition_resnet_model_v1");

    let no_face = expect_ok(
        app.client
            .post(app.url("/v1/embed"))
            .json(&json!({"image": data_uri(photos::NO_FACE)}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(no_face["faces"].as_array().unwrap().len(), 0);
    let missing = app
        .client
        .post(app.url("/v1/embed"))
        .json(&json!({"picture": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(missing, StatusCode::BAD_REQUEST, "missing_field").await;
}
