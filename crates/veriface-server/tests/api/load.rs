//! Load shedding, request timeouts and graceful shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veriface_testkit::app::{spawn_app_with, TestApp};
use veriface_testkit::fixtures::{fixture_bytes, photos};

use crate::helpers::{expect_error, expect_ok, files, scaled_jpeg};

/// A photo big enough that its analysis takes a second or more: 3200x2400
/// (7.7 Mpx). At 4x (1.9 Mpx) a fresh machine's CI analysed it within the
/// timeout test's 300 ms once the detector had got faster.
fn slow_photo() -> Vec<u8> {
    scaled_jpeg(&fixture_bytes(photos::PERSON02_A), 8.0)
}

async fn wait_until_running(app: &TestApp, n: u64) {
    for _ in 0..500 {
        let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
        if ready["inference"]["running"].as_u64() == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the inference pool never had {n} running jobs");
}

#[tokio::test]
async fn a_full_pool_sheds_requests_with_503_and_retry_after() {
    let app = spawn_app_with(|s| {
        s.workers = 1;
        s.queue_capacity = 0;
    })
    .await;
    let busy = {
        let (client, url) = (app.client.clone(), app.url("/v1/detect"));
        tokio::spawn(async move {
            client
                .post(url)
                .multipart(files(&[("image", slow_photo())]))
                .send()
                .await
                .unwrap()
        })
    };
    wait_until_running(&app, 1).await;
    let shed = app
        .client
        .post(app.url("/compare"))
        .multipart(files(&[
            ("reference_image", fixture_bytes(photos::PERSON02_A)),
            ("live_image", fixture_bytes(photos::PERSON02_B)),
        ]))
        .send()
        .await
        .unwrap();
    let retry: u64 = shed.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body = expect_error(shed, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
    assert_eq!(body["success"], false);
    // Shed before the body is parsed: a JSON body that is not even JSON is
    // refused as overloaded (not malformed_json), and on one kept-alive
    // connection, so the shed request's body was drained and the
    // connection stays usable for the next one.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    for path in ["/v1/compare", "/v1/users/alice/verify"] {
        let junk = "x".repeat(300_000);
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            junk.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(junk.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
            .await
            .expect("a shed request is answered")
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 503"), "{path}: {answer}");
        assert!(answer.contains("\"overloaded\""), "{path}: {answer}");
        assert!(!answer.contains("connection: close"), "{path}: {answer}");
    }
    // The request that had the worker is unaffected.
    let done = expect_ok(busy.await.unwrap()).await;
    assert_eq!(done["faces_found"], 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("veriface_inference_rejected_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_request_over_the_timeout_is_503_timeout() {
    let app = spawn_app_with(|s| {
        s.workers = 1;
        s.request_timeout = Duration::from_millis(300);
    })
    .await;
    let res = app
        .client
        .post(app.url("/v1/detect"))
        .multipart(files(&[("image", slow_photo())]))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "timeout").await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_stops_accepting() {
    let app = spawn_app_with(|s| s.workers = 1).await;
    let in_flight = {
        let (client, url) = (app.client.clone(), app.url("/v1/detect"));
        tokio::spawn(async move {
            client
                .post(url)
                .multipart(files(&[("image", slow_photo())]))
                .send()
                .await
        })
    };
    wait_until_running(&app, 1).await;
    app.shutdown.shutdown();
    let res = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    let body = expect_ok(res).await;
    assert_eq!(body["faces_found"], 1);
    let TestApp {
        server,
        client,
        address,
        ..
    } = app;
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops once drained")
        .unwrap()
        .unwrap();
    let refused = client.get(format!("{address}/healthz")).send().await;
    assert!(refused.is_err(), "a stopped server accepts no connection");
}
