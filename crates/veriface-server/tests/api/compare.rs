//! `POST /compare` in both forms: seed 004 (JSON, base64) and seed 003
//! (multipart), with same-person and different-person pairs.

use serde_json::json;
use veriface_testkit::app::spawn_app;
use veriface_testkit::fixtures::{fixture_bytes, photos};

use crate::helpers::{data_uri, expect_ok, files};

#[tokio::test]
async fn seed_004_json_compare_tells_same_from_different_people() {
    let app = spawn_app().await;
    let same = expect_ok(
        app.client
            .post(app.url("/compare"))
            .json(&json!({"passport": data_uri(photos::PERSON02_A), "face": data_uri(photos::PERSON02_B)}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(same["success"], true);
    assert_eq!(same["match"], true, "{same}");
    assert_eq!(same["message"], "It's the same person");
    assert!(same["image_save_time"].as_f64().unwrap() > 0.0);
    assert!(same["comparison_time"].as_f64().unwrap() > 0.0);
    let d = same["distance"].as_f64().unwrap();
    assert!(d > 0.0 && d <= 0.6, "distance {d}");
    assert_eq!(same["threshold"], 0.6);
    assert!((same["similarity"].as_f64().unwrap() - (1.0 - d / 1.2)).abs() < 1e-4);
    for field in ["passport", "face"] {
        let img = &same["images"][field];
        assert_eq!(img["faces_found"], 1, "{img}");
        assert!(
            img["face"]["box"]["right"].as_i64().unwrap()
                > img["face"]["box"]["left"].as_i64().unwrap()
        );
        assert_eq!(img["face"]["landmarks"].as_array().unwrap().len(), 5);
        let t = &same["timings_ms"]["images"][field];
        assert!(t["detect"].as_f64().unwrap() > 0.0, "{t}");
    }
    assert!(same["timings_ms"]["total"].as_f64().unwrap() > 0.0);

    // Plain base64 without the data URI prefix works too.
    let different = expect_ok(
        app.client
            .post(app.url("/compare"))
            .json(&json!({
                "passport": crate::helpers::b64(&fixture_bytes(photos::PERSON02_A)),
                "face": data_uri(photos::ANGELINA),
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(different["success"], true);
    assert_eq!(different["match"], false, "{different}");
    assert_eq!(different["message"], "It's not the same person");
    assert!(different["distance"].as_f64().unwrap() > 0.6);
}

#[tokio::test]
async fn seed_003_multipart_compare_tells_same_from_different_people() {
    let app = spawn_app().await;
    let same = expect_ok(
        app.client
            .post(app.url("/compare"))
            .multipart(files(&[
                ("reference_image", fixture_bytes(photos::PERSON02_A)),
                ("live_image", fixture_bytes(photos::PERSON02_B)),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(same["identical"], true, "{same}");
    assert_eq!(same["match"], true);
    assert!(same["images"]["reference_image"]["face"]["box"].is_object());
    assert!(same["images"]["live_image"]["face"]["box"].is_object());

    let different = expect_ok(
        app.client
            .post(app.url("/compare"))
            .multipart(files(&[
                ("reference_image", fixture_bytes(photos::ANGELINA)),
                ("live_image", fixture_bytes(photos::PERSON02_B)),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(different["identical"], false, "{different}");
    assert!(different["distance"].as_f64().unwrap() > 0.6);
    // Nothing is stored by a comparison.
    crate::helpers::assert_no_files(&app);
}

#[tokio::test]
async fn several_faces_compare_the_largest_and_report_the_others() {
    let app = spawn_app().await;
    let body = expect_ok(
        app.client
            .post(app.url("/compare"))
            .multipart(files(&[
                ("reference_image", fixture_bytes(photos::COUPLE)),
                ("live_image", fixture_bytes(photos::PERSON02_A)),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let couple = &body["images"]["reference_image"];
    assert_eq!(couple["faces_found"], 2, "{couple}");
    let others = couple["other_faces"].as_array().unwrap();
    assert_eq!(others.len(), 1);
    let area = |b: &serde_json::Value| {
        (b["right"].as_i64().unwrap() - b["left"].as_i64().unwrap())
            * (b["bottom"].as_i64().unwrap() - b["top"].as_i64().unwrap())
    };
    assert!(
        area(&couple["face"]["box"]) >= area(&others[0]["box"]),
        "{couple}"
    );
    assert_eq!(body["identical"], false);
}
