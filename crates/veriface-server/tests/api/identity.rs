//! The identity routes end to end: enrolment through the embedded durable
//! queue, status, 1:1, 1:N and erasure, on SQLite (the default) and on a
//! real PostgreSQL with a real Redis that is stopped mid-run.

use std::time::{Duration, Instant};

use reqwest::multipart::Form;
use reqwest::StatusCode;
use serde_json::{json, Value};
use veriface_testkit::app::{spawn_app_with, TestApp};
use veriface_testkit::fixtures::fixture_bytes;
use veriface_testkit::postgres::PostgresServer;
use veriface_testkit::redis::RedisServer;

use crate::helpers::{b64, expect_error, expect_ok, files};

/// Multipart enrolment of a fixture.
fn enrol_form(username: &str, fixture: &str) -> Form {
    files(&[("image", fixture_bytes(fixture))]).text("username", username.to_string())
}

/// Enqueues an enrolment and returns the job's URL.
async fn enqueue(app: &TestApp, username: &str, fixture: &str) -> String {
    let res = app
        .client
        .post(app.url("/v1/enrollments"))
        .multipart(enrol_form(username, fixture))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], username);
    assert_eq!(body["status_url"], location.as_str());
    assert!(
        ["queued", "running", "done"].contains(&body["state"].as_str().unwrap()),
        "{body}"
    );
    location
}

/// Polls a job until it is done or failed; returns its last state.
async fn wait_for_job(app: &TestApp, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = expect_ok(app.get(location).await).await;
        if job["state"] == "done" || job["state"] == "failed" {
            return job;
        }
        assert!(Instant::now() < deadline, "job never finished: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn enrol(app: &TestApp, username: &str, fixture: &str) -> Value {
    let location = enqueue(app, username, fixture).await;
    wait_for_job(app, &location).await
}

async fn user(app: &TestApp, username: &str) -> reqwest::Response {
    app.get(&format!("/v1/users/{username}")).await
}

async fn verify(app: &TestApp, username: &str, fixture: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/users/{username}/verify")))
        .multipart(files(&[("image", fixture_bytes(fixture))]))
        .send()
        .await
        .unwrap()
}

async fn search(app: &TestApp, fixture: &str) -> Value {
    expect_ok(
        app.client
            .post(app.url("/v1/search"))
            .json(&json!({"image": b64(&fixture_bytes(fixture)), "k": 3}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn usernames(search: &Value) -> Vec<String> {
    search["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["username"].as_str().unwrap().to_string())
        .collect()
}

/// Enrol two people, check 1:1 both ways and 1:N, then erase one.
async fn exercise_identity_flow(app: &TestApp) {
    let job = enrol(app, "alice", "person02_a.jpg").await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["reason"], "enrolled", "{job}");
    // JSON with a data URI enrols too.
    let res = app
        .client
        .post(app.url("/v1/enrollments"))
        .json(&json!({
            "username": "bob",
            "image": format!("data:image/jpeg;base64,{}", b64(&fixture_bytes("angelina.jpg"))),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(wait_for_job(app, &location).await["reason"], "enrolled");

    let alice = expect_ok(user(app, "alice").await).await;
    assert_eq!(alice["verified"], true, "{alice}");
    assert_eq!(alice["templates"], 1);
    assert!(alice["reason"].is_null());
    assert!(alice["enrolled_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(
        alice.get("embedding").is_none() && !alice.to_string().contains("embedding"),
        "a status never carries the template: {alice}"
    );

    // 1:1: another photo of the same person matches, someone else does not.
    let same = expect_ok(verify(app, "alice", "person02_b.jpg").await).await;
    assert_eq!(same["match"], true, "{same}");
    let d = same["distance"].as_f64().unwrap();
    assert!(d > 0.0 && d < 0.6, "{same}");
    assert_eq!(same["threshold"].as_f64().unwrap() as f32, 0.6);
    assert_eq!(same["templates"], 1);
    let other = expect_ok(verify(app, "alice", "angelina.jpg").await).await;
    assert_eq!(other["match"], false, "{other}");
    assert!(other["distance"].as_f64().unwrap() > 0.6, "{other}");

    // 1:N: alice is found, bob is not within the threshold.
    let found = search(app, "person02_b.jpg").await;
    assert_eq!(usernames(&found), ["alice"], "{found}");
    assert_eq!(found["searched"], 2, "{found}");
    assert!((found["results"][0]["distance"].as_f64().unwrap() - d).abs() < 1e-5);

    // Erasure: templates and jobs go, the subject is unknown afterwards,
    // search no longer finds it, and a second erasure is a no-op.
    let erased = expect_ok(
        app.client
            .delete(app.url("/v1/users/alice"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        erased,
        json!({"username": "alice", "deleted": true, "templates": 1, "jobs": 1})
    );
    expect_error(
        user(app, "alice").await,
        StatusCode::NOT_FOUND,
        "subject_not_found",
    )
    .await;
    expect_error(
        app.get(job["status_url"].as_str().unwrap()).await,
        StatusCode::NOT_FOUND,
        "job_not_found",
    )
    .await;
    assert!(usernames(&search(app, "person02_b.jpg").await).is_empty());
    let again = expect_ok(
        app.client
            .delete(app.url("/v1/users/alice"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again["deleted"], false);
    // bob is untouched.
    assert_eq!(expect_ok(user(app, "bob").await).await["verified"], true);
}

#[tokio::test]
async fn enrol_verify_search_and_erase_on_sqlite() {
    let app = spawn_app_with(|_| {}).await;
    exercise_identity_flow(&app).await;
    let ready = expect_ok(app.get("/readyz").await).await;
    assert_eq!(ready["database"]["backend"], "sqlite", "{ready}");
    assert_eq!(ready["database"]["status"], "ok", "{ready}");
    assert_eq!(ready["cache"]["status"], "disabled", "{ready}");
}

#[tokio::test]
async fn refused_photos_leave_an_unverified_subject_with_the_reason() {
    let app = spawn_app_with(|_| {}).await;
    for (name, fixture, reason) in [
        ("nobody", "no_face.jpg", "no_face_detected"),
        ("two.people", "couple.jpg", "multiple_faces"),
    ] {
        let job = enrol(&app, name, fixture).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["reason"], reason, "{job}");
        let status = expect_ok(user(&app, name).await).await;
        assert_eq!(status["verified"], false, "{status}");
        assert_eq!(status["reason"], reason, "{status}");
        assert_eq!(status["templates"], 0, "{status}");
        // Nothing to compare with: a conflict, not a mismatch.
        expect_error(
            verify(&app, name, "person02_b.jpg").await,
            StatusCode::CONFLICT,
            "subject_not_verified",
        )
        .await;
    }
    // A file that is not an image is refused by the worker, not lost.
    let res = app
        .client
        .post(app.url("/v1/enrollments"))
        .multipart(Form::new().text("username", "carol").part(
            "image",
            reqwest::multipart::Part::bytes(b"%PDF-1.7 not a photo".to_vec()).file_name("x.pdf"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let job = wait_for_job(&app, &location).await;
    assert_eq!(job["reason"], "unsupported_image_format", "{job}");
    assert_eq!(
        expect_ok(user(&app, "carol").await).await["verified"],
        false
    );
}

#[tokio::test]
async fn identity_requests_with_bad_input_get_stable_codes() {
    let app = spawn_app_with(|_| {}).await;
    let post = |path: &str, form: Form| app.client.post(app.url(path)).multipart(form).send();
    expect_error(
        post(
            "/v1/enrollments",
            files(&[("image", fixture_bytes("person02_a.jpg"))]),
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    expect_error(
        post("/v1/enrollments", Form::new().text("username", "dave"))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    for bad in ["../etc", ".hidden", "a b", &"x".repeat(200)] {
        expect_error(
            post("/v1/enrollments", enrol_form(bad, "person02_a.jpg"))
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_username",
        )
        .await;
    }
    expect_error(
        app.client
            .post(app.url("/v1/enrollments"))
            .body("username=dave")
            .header("content-type", "text/plain")
            .send()
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_type",
    )
    .await;
    expect_error(
        app.client
            .post(app.url("/v1/enrollments"))
            .json(&json!({"username": "dave", "image": "not base64!"}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_base64",
    )
    .await;
    expect_error(
        user(&app, "nobody").await,
        StatusCode::NOT_FOUND,
        "subject_not_found",
    )
    .await;
    expect_error(
        verify(&app, "nobody", "person02_b.jpg").await,
        StatusCode::NOT_FOUND,
        "subject_not_found",
    )
    .await;
    expect_error(
        app.get("/v1/enrollments/999999").await,
        StatusCode::NOT_FOUND,
        "job_not_found",
    )
    .await;
    expect_error(
        app.get("/v1/enrollments/abc").await,
        StatusCode::NOT_FOUND,
        "job_not_found",
    )
    .await;
    for k in [json!(0), json!(1000), json!(2.5), json!(-1)] {
        expect_error(
            app.client
                .post(app.url("/v1/search"))
                .json(&json!({"image": b64(&fixture_bytes("person02_b.jpg")), "k": k}))
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_search",
        )
        .await;
    }
    expect_error(
        app.client
            .post(app.url("/v1/search"))
            .multipart(files(&[("image", fixture_bytes("no_face.jpg"))]))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_face_detected",
    )
    .await;
}

#[tokio::test]
async fn a_queued_enrolment_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    // First process: accepts the job but runs no worker, then stops.
    let first = spawn_app_with(|s| {
        s.data_dir = dir.clone();
        s.embedded_worker = false;
    })
    .await;
    let location = enqueue(&first, "erin", "person02_a.jpg").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = expect_ok(first.get(&location).await).await;
    assert_eq!(job["state"], "queued", "no worker ran: {job}");
    first.shutdown.shutdown();
    first.server.await.unwrap().unwrap();

    // Second process on the same data directory: its worker finds the job.
    let second = spawn_app_with(|s| s.data_dir = dir.clone()).await;
    let job = wait_for_job(&second, &location).await;
    assert_eq!(job["reason"], "enrolled", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(
        expect_ok(user(&second, "erin").await).await["verified"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_redis_and_the_api_keeps_answering_when_redis_stops() {
    let db_url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    let mut redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let redis_url = redis.url();
    let app = spawn_app_with(|s| {
        s.database_url = Some(veriface_store::blob::Secret::new(db_url));
        s.redis_url = Some(veriface_store::blob::Secret::new(redis_url));
    })
    .await;
    exercise_identity_flow(&app).await;
    let ready = expect_ok(app.get("/readyz").await).await;
    assert_eq!(ready["database"]["backend"], "postgres", "{ready}");
    assert_eq!(ready["cache"]["backend"], "redis", "{ready}");
    assert_eq!(ready["cache"]["status"], "up", "{ready}");
    // bob's status twice: the second read is a cache hit.
    expect_ok(user(&app, "bob").await).await;
    expect_ok(user(&app, "bob").await).await;
    let ready = expect_ok(app.get("/readyz").await).await;
    assert!(ready["cache"]["hits"].as_u64().unwrap() >= 1, "{ready}");

    // Redis goes away: every answer is still right, from the database.
    let mut redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .unwrap();
    let bob = expect_ok(user(&app, "bob").await).await;
    assert_eq!(bob["verified"], true, "{bob}");
    let job = enrol(&app, "frank", "person02_b.jpg").await;
    assert_eq!(job["reason"], "enrolled", "{job}");
    let same = expect_ok(verify(&app, "frank", "person02_a.jpg").await).await;
    assert_eq!(same["match"], true, "{same}");
    assert_eq!(usernames(&search(&app, "person02_a.jpg").await), ["frank"]);
    let ready = expect_ok(app.get("/readyz").await).await;
    assert_eq!(ready["status"], "ready", "the cache is optional: {ready}");
    assert_eq!(ready["cache"]["status"], "down", "{ready}");
    assert!(ready["cache"]["errors"].as_u64().unwrap() >= 1, "{ready}");

    // Erasure while Redis is down, then Redis comes back (empty): no stale
    // entry can resurrect the erased subject.
    expect_ok(
        app.client
            .delete(app.url("/v1/users/frank"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let _redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    expect_error(
        user(&app, "frank").await,
        StatusCode::NOT_FOUND,
        "subject_not_found",
    )
    .await;
    assert_eq!(expect_ok(user(&app, "bob").await).await["verified"], true);
}
