//! `GET /`, health, readiness, metrics and request ids.

use reqwest::StatusCode;
use veriface_testkit::app::spawn_app;
use veriface_testkit::fixtures::{fixture_bytes, photos};

use crate::helpers::{expect_ok, files};

#[tokio::test]
async fn index_answers_like_seed_004() {
    let app = spawn_app().await;
    let body = expect_ok(app.get("/").await).await;
    assert_eq!(
        body,
        serde_json::json!({"success": true, "message": "Server is working"})
    );
}

#[tokio::test]
async fn health_and_readiness_report_the_store_and_the_pool() {
    let app = spawn_app().await;
    let health = expect_ok(app.get("/healthz").await).await;
    assert_eq!(health["status"], "ok");
    let ready = expect_ok(app.get("/readyz").await).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["blob_store"]["backend"], "local");
    assert_eq!(ready["inference"]["workers"], 2);
    assert_eq!(ready["inference"]["queue_capacity"], 8);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-id-42");
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "not a valid id <>")
        .send()
        .await
        .unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 16);
    assert_ne!(generated, "not a valid id <>");
}

#[tokio::test]
async fn metrics_expose_request_and_stage_latency_histograms() {
    let app = spawn_app().await;
    expect_ok(
        app.client
            .post(app.url("/v1/detect"))
            .multipart(files(&[("image", fixture_bytes(photos::PERSON02_A))]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    for needle in [
        "veriface_http_request_duration_seconds_bucket{",
        "path=\"/v1/detect\"",
        "veriface_http_requests_total{",
        "veriface_stage_duration_seconds_bucket{stage=\"detect\"",
        "veriface_stage_duration_seconds_bucket{stage=\"decode\"",
        "veriface_stage_duration_seconds_count{stage=\"landmarks\"}",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}
