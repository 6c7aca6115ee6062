//! Verification sessions (seed 002, issue 5): whole sessions driven
//! through the API with generated ID documents and real face photos, the
//! processor's decision, every refused transition, expiry, durability
//! across a restart, and the signed webhook received by a real local
//! server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use veriface_testkit::app::{spawn_app, spawn_app_with, TestApp};
use veriface_testkit::documents::{id_back, id_front, id_front_with_ghost, jpeg, licence};
use veriface_testkit::fixtures::fixture_bytes;
use veriface_testkit::fixtures::photos::{ANGELINA, PERSON02_A, PERSON02_B};

use crate::helpers::{b64, expect_error, expect_ok};

/// A licence valid for years yet.
const FUTURE: &str = "01312040";
/// A licence that expired.
const PAST: &str = "03312021";

async fn start(app: &TestApp) -> Value {
    expect_ok(
        app.client
            .post(app.url("/api/verification/start"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn add(app: &TestApp, id: &str, side: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = Form::new().text("side", side.to_string()).part(
        "image",
        Part::bytes(bytes)
            .file_name(format!("{side}.jpg"))
            .mime_str("image/jpeg")
            .unwrap(),
    );
    app.client
        .post(app.url(&format!("/api/scan/add/{id}")))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn post(app: &TestApp, path: &str, id: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("{path}/{id}")))
        .send()
        .await
        .unwrap()
}

async fn status(app: &TestApp, id: &str) -> Value {
    expect_ok(
        app.get(&format!("/api/verification/check_status/{id}"))
            .await,
    )
    .await
}

/// Polls until the session is final (processing takes a few seconds: two
/// face analyses and two document readings).
async fn final_status(app: &TestApp, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let s = status(app, id).await;
        if s["final"] == true {
            println!(
                "session {} after {:.1} s: {}",
                s["status"],
                started.elapsed().as_secs_f64(),
                s["decision"]
            );
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not final after 120 s: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Docs {
    front: Vec<u8>,
    back: Vec<u8>,
    selfie: Vec<u8>,
}

fn docs(portrait: &str, selfie: &str, expiry: &str) -> Docs {
    Docs {
        front: jpeg(&id_front(&fixture_bytes(portrait), true)),
        back: jpeg(&id_back(&licence(expiry))),
        selfie: fixture_bytes(selfie),
    }
}

/// Starts a session, uploads the three images and confirms.
async fn submit(app: &TestApp, d: Docs) -> String {
    let started = start(app).await;
    let id = started["session_id"].as_str().unwrap().to_string();
    for (side, bytes) in [
        ("id_front", d.front),
        ("id_back", d.back),
        ("selfie", d.selfie),
    ] {
        let s = expect_ok(add(app, &id, side, bytes).await).await;
        assert_eq!(s["status"], "collecting");
        assert_eq!(s["scans"][side], true);
    }
    let s = expect_ok(post(app, "/api/scan/confirm", &id).await).await;
    assert!(
        ["submitted", "processing"].contains(&s["status"].as_str().unwrap()),
        "{s}"
    );
    id
}

#[tokio::test]
async fn same_person_with_a_valid_licence_ends_verified_and_the_images_are_deleted() {
    let app = spawn_app().await;
    let started = start(&app).await;
    let id = started["session_id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(started["status"], "created");
    assert_eq!(started["webhook"], false);
    assert_eq!(
        started["url"].as_str().unwrap(),
        format!("{}/verify/{id}", app.address)
    );
    let d = docs(PERSON02_A, PERSON02_B, FUTURE);
    for (side, bytes) in [
        ("id_front", d.front),
        ("id_back", d.back),
        ("selfie", d.selfie),
    ] {
        expect_ok(add(&app, id, side, bytes).await).await;
    }
    assert_eq!(
        app.files()
            .iter()
            .filter(|p| p.starts_with("blobs/sessions"))
            .count(),
        3,
        "the three images are stored: {:?}",
        app.files()
    );
    expect_ok(post(&app, "/api/scan/confirm", id).await).await;

    let s = final_status(&app, id).await;
    assert_eq!(s["status"], "verified", "{s}");
    assert_eq!(s["reasons"], json!([]));
    let d = &s["decision"];
    assert_eq!(d["outcome"], "verified");
    let distance = d["face"]["distance"].as_f64().unwrap();
    assert!(distance < 0.6, "{distance}");
    assert_eq!(d["face"]["threshold"], 0.6);
    assert_eq!(
        d["face"]["faces_on_document"], 2,
        "the portrait and its ghost are both found; the larger is compared"
    );
    assert_eq!(d["document"]["barcode"], true);
    assert_eq!(d["document"]["expiry_date"], "2040-01-31");
    assert_eq!(d["model"], "dlib_face_recognition_resnet_model_v1");
    assert!(!d["model_version"].as_str().unwrap().is_empty());
    // Retention: a decided session keeps no image.
    assert!(
        !app.files().iter().any(|p| p.starts_with("blobs/sessions")),
        "{:?}",
        app.files()
    );
    // Confirm stays idempotent after the decision.
    let again = expect_ok(post(&app, "/api/scan/confirm", id).await).await;
    assert_eq!(again["status"], "verified");
}

#[tokio::test]
async fn the_large_portrait_is_compared_not_a_smaller_ghost_of_someone_else() {
    let app = spawn_app().await;
    // The ghost is another person: comparing it would reject. Sizes (from
    // `veriface detect`): person02's face is 98 px of 400, so 118 px as the
    // 480 px portrait; angelina's is 170 px of 330, so 93 px in a 180 px
    // ghost, above the detector's smallest face on this card (77 px).
    let d = Docs {
        front: jpeg(&id_front_with_ghost(
            &fixture_bytes(PERSON02_A),
            Some((&fixture_bytes(ANGELINA), 180)),
        )),
        ..docs(PERSON02_A, PERSON02_B, FUTURE)
    };
    let id = submit(&app, d).await;
    let s = final_status(&app, &id).await;
    assert_eq!(s["decision"]["face"]["faces_on_document"], 2, "{s}");
    assert_eq!(s["status"], "verified", "{s}");
}

#[tokio::test]
async fn a_different_person_ends_rejected_with_face_mismatch() {
    let app = spawn_app().await;
    let id = submit(&app, docs(PERSON02_A, ANGELINA, FUTURE)).await;
    let s = final_status(&app, &id).await;
    assert_eq!(s["status"], "rejected", "{s}");
    assert_eq!(s["reasons"], json!(["face_mismatch"]));
    assert!(s["decision"]["face"]["distance"].as_f64().unwrap() > 0.6);
}

#[tokio::test]
async fn an_expired_licence_ends_rejected_with_document_expired() {
    let app = spawn_app().await;
    let id = submit(&app, docs(PERSON02_A, PERSON02_B, PAST)).await;
    let s = final_status(&app, &id).await;
    assert_eq!(s["status"], "rejected", "{s}");
    assert_eq!(s["reasons"], json!(["document_expired"]));
    assert_eq!(s["decision"]["document"]["expiry_date"], "2021-03-31");
}

#[tokio::test]
async fn a_back_without_document_data_ends_in_review() {
    let app = spawn_app().await;
    let d = Docs {
        back: fixture_bytes(PERSON02_B),
        ..docs(PERSON02_A, PERSON02_B, FUTURE)
    };
    let id = submit(&app, d).await;
    let s = final_status(&app, &id).await;
    assert_eq!(s["status"], "needs_review", "{s}");
    assert_eq!(s["reasons"], json!(["document_unreadable"]));
}

#[tokio::test]
async fn uploads_take_json_base64_and_replace_the_same_side() {
    let app = spawn_app().await;
    let id = start(&app).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = app.url(&format!("/api/scan/add/{id}"));
    let body = json!({"side": "selfie", "image": format!("data:image/jpeg;base64,{}", b64(&fixture_bytes(PERSON02_B)))});
    let s = expect_ok(app.client.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(s["missing"], json!(["id_front", "id_back"]));
    let body = json!({"side": "selfie", "image": b64(&fixture_bytes(ANGELINA))});
    let s = expect_ok(app.client.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(
        s["scans"],
        json!({"id_front": false, "id_back": false, "selfie": true})
    );

    let bad_side = json!({"side": "passport", "image": b64(&fixture_bytes(ANGELINA))});
    let res = app.client.post(&url).json(&bad_side).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_side").await;
    let not_image = json!({"side": "id_front", "image": b64(b"%PDF-1.7 not an image")});
    let res = app.client.post(&url).json(&not_image).send().await.unwrap();
    expect_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_image_format",
    )
    .await;
    let res = app
        .client
        .post(&url)
        .multipart(Form::new().text("side", "selfie"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "missing_field").await;

    // Restart forgets the uploads and deletes them.
    let s = expect_ok(post(&app, "/api/scan/restart", &id).await).await;
    assert_eq!(s["status"], "created");
    assert_eq!(s["missing"], json!(["id_front", "id_back", "selfie"]));
    assert!(!app.files().iter().any(|p| p.starts_with("blobs/sessions")));
}

#[tokio::test]
async fn every_illegal_transition_answers_409_with_a_stable_code() {
    let app = spawn_app_with(|s| {
        // Keep confirmed sessions submitted: the refusals are about the
        // state, not about a race with the processor.
        s.sessions.poll = Duration::from_secs(3600);
    })
    .await;
    let conflict = |code: &'static str| (StatusCode::CONFLICT, code);

    // created: confirm before anything is uploaded.
    let id = start(&app).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, code) = conflict("invalid_session_transition");
    expect_error(post(&app, "/api/scan/confirm", &id).await, st, code).await;

    // collecting, incomplete: confirm names what is missing.
    expect_ok(add(&app, &id, "selfie", fixture_bytes(PERSON02_B)).await).await;
    let body = expect_error(
        post(&app, "/api/scan/confirm", &id).await,
        StatusCode::CONFLICT,
        "scans_incomplete",
    )
    .await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("id_front, id_back"));

    // cancelled: nothing but the status.
    let s = expect_ok(
        app.client
            .delete(app.url(&format!("/api/verification/cancel/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s["status"], "cancelled");
    assert!(!app.files().iter().any(|p| p.starts_with("blobs/sessions")));
    let (st, code) = conflict("invalid_session_transition");
    expect_error(
        add(&app, &id, "selfie", fixture_bytes(PERSON02_B)).await,
        st,
        code,
    )
    .await;
    expect_error(post(&app, "/api/scan/restart", &id).await, st, code).await;
    expect_error(post(&app, "/api/scan/confirm", &id).await, st, code).await;
    let res = app
        .client
        .delete(app.url(&format!("/api/verification/cancel/{id}")))
        .send()
        .await
        .unwrap();
    expect_error(res, st, code).await;
    assert_eq!(status(&app, &id).await["status"], "cancelled");

    // submitted: no more uploads, restarts or cancels; confirm is idempotent.
    let id = submit(&app, docs(PERSON02_A, PERSON02_B, FUTURE)).await;
    expect_error(
        add(&app, &id, "selfie", fixture_bytes(PERSON02_B)).await,
        st,
        code,
    )
    .await;
    expect_error(post(&app, "/api/scan/restart", &id).await, st, code).await;
    let res = app
        .client
        .delete(app.url(&format!("/api/verification/cancel/{id}")))
        .send()
        .await
        .unwrap();
    expect_error(res, st, code).await;
    for _ in 0..2 {
        let s = expect_ok(post(&app, "/api/scan/confirm", &id).await).await;
        assert_eq!(s["status"], "submitted");
    }

    // Unknown and malformed ids are 404s.
    for bad in ["0123456789abcdef0123456789abcdef", "not-a-session"] {
        let res = app
            .get(&format!("/api/verification/check_status/{bad}"))
            .await;
        expect_error(res, StatusCode::NOT_FOUND, "session_not_found").await;
        expect_error(
            post(&app, "/api/scan/confirm", bad).await,
            StatusCode::NOT_FOUND,
            "session_not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn an_unconfirmed_session_expires_and_then_refuses_everything_with_session_expired() {
    let app = spawn_app_with(|s| s.sessions.ttl = Duration::from_secs(1)).await;
    let id = start(&app).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    expect_ok(add(&app, &id, "selfie", fixture_bytes(PERSON02_B)).await).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let s = status(&app, &id).await;
    assert_eq!(s["status"], "expired");
    assert_eq!(s["final"], true);
    assert!(
        !app.files().iter().any(|p| p.starts_with("blobs/sessions")),
        "an expired session's images are deleted"
    );
    let (st, code) = (StatusCode::CONFLICT, "session_expired");
    expect_error(
        add(&app, &id, "selfie", fixture_bytes(PERSON02_B)).await,
        st,
        code,
    )
    .await;
    expect_error(post(&app, "/api/scan/restart", &id).await, st, code).await;
    expect_error(post(&app, "/api/scan/confirm", &id).await, st, code).await;
    let res = app
        .client
        .delete(app.url(&format!("/api/verification/cancel/{id}")))
        .send()
        .await
        .unwrap();
    expect_error(res, st, code).await;
}

#[tokio::test]
async fn a_confirmed_session_is_processed_by_the_next_server_after_a_restart() {
    // The first server's processor polls once at start, then sleeps: the
    // confirmed session waits in the database when the server stops.
    let first = spawn_app_with(|s| s.sessions.poll = Duration::from_secs(3600)).await;
    let id = submit(&first, docs(PERSON02_A, PERSON02_B, FUTURE)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&first, &id).await["status"], "submitted");
    first.shutdown.shutdown();
    first.server.await.unwrap().unwrap();

    let dir = first.data_dir.path().to_path_buf();
    let second = spawn_app_with(move |s| s.data_dir = dir).await;
    let s = final_status(&second, &id).await;
    assert_eq!(s["status"], "verified", "{s}");
    drop(first.data_dir);
}

/// What the local receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// A real HTTP server on loopback that answers 503 to the first `fail`
/// requests and 200 after, recording every request.
async fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let mut v = seen.lock().unwrap();
                v.push(Received { headers, body });
                if v.len() <= fail {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn the_final_state_is_posted_signed_to_the_webhook_and_retried_after_a_failure() {
    let secret = "whsec-test-0123456789";
    let app = spawn_app_with(|s| {
        s.sessions.webhook_secret = Some(veriface_store::blob::Secret::new(secret));
        s.sessions.webhook_retry_base = Duration::from_millis(300);
        s.sessions.poll = Duration::from_millis(100);
    })
    .await;
    let (url, got) = receiver(1).await;
    let started = expect_ok(
        app.client
            .post(app.url("/api/verification/start"))
            .json(&json!({"webhook_url": url}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(started["webhook"], true);
    let id = started["session_id"].as_str().unwrap().to_string();
    let d = docs(PERSON02_A, ANGELINA, FUTURE);
    for (side, bytes) in [
        ("id_front", d.front),
        ("id_back", d.back),
        ("selfie", d.selfie),
    ] {
        expect_ok(add(&app, &id, side, bytes).await).await;
    }
    expect_ok(post(&app, "/api/scan/confirm", &id).await).await;
    final_status(&app, &id).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the retry never came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one failure, one delivery, then nothing more");
    for r in &got {
        let ts = r.headers["x-veriface-timestamp"].to_str().unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(&r.body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            r.headers["x-veriface-signature"].to_str().unwrap(),
            format!("sha256={hex}")
        );
        assert_eq!(r.headers["x-veriface-event"], "session.finished");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["session_id"], id.as_str());
        assert_eq!(body["status"], "rejected");
        assert_eq!(body["reasons"], json!(["face_mismatch"]));
    }

    // Without a secret the server refuses webhook URLs; bad URLs are 400s.
    let plain = spawn_app().await;
    let res = plain
        .client
        .post(plain.url("/api/verification/start"))
        .json(&json!({"webhook_url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "webhooks_disabled").await;
    let res = app
        .client
        .post(app.url("/api/verification/start"))
        .json(&json!({"webhook_url": "ftp://example.com/"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_webhook_url").await;
    // A form body is read too (a webhook URL there is never ignored).
    let res = app
        .client
        .post(app.url("/api/verification/start"))
        .form(&[("webhook_url", "http://user:pw@example.com/")])
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_webhook_url").await;
}

#[tokio::test]
async fn the_phone_calls_need_no_api_key_but_start_and_cancel_do() {
    let app = spawn_app_with(|s| {
        s.api_keys = vec![veriface_store::blob::Secret::new("k-123")];
    })
    .await;
    let res = app
        .client
        .post(app.url("/api/verification/start"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let started = expect_ok(
        app.client
            .post(app.url("/api/verification/start"))
            .header("x-api-key", "k-123")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = started["session_id"].as_str().unwrap();
    expect_ok(add(&app, id, "selfie", fixture_bytes(PERSON02_B)).await).await;
    assert_eq!(status(&app, id).await["status"], "collecting");
    let page = app.get(&format!("/verify/{id}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let res = app
        .client
        .delete(app.url(&format!("/api/verification/cancel/{id}")))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn the_pages_are_served_with_the_qr_code_of_the_session_url() {
    let app = spawn_app().await;
    let test_page = app.get("/test_page").await;
    assert_eq!(test_page.status(), StatusCode::OK);
    let html = test_page.text().await.unwrap();
    assert!(html.contains("Start Verification"));
    assert!(!html.contains("{{"), "every placeholder is filled");

    let id = start(&app).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app.get(&format!("/verify/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("data-session=\"{id}\"")));
    assert!(html.contains("<svg"), "the QR code is inline");
    assert!(!html.contains("{{"), "every placeholder is filled");
    assert!(!html.contains("http://") || !html.contains("cdn"), "no CDN");

    let res = app.get("/verify/0123456789abcdef0123456789abcdef").await;
    expect_error(res, StatusCode::NOT_FOUND, "session_not_found").await;
}
