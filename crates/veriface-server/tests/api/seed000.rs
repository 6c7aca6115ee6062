//! Seed 000: upload, get, delete and compare stored images on the local
//! store (the S3 round trip is in `blob_store.rs`).

use reqwest::StatusCode;
use serde_json::json;
use veriface_testkit::app::spawn_app;
use veriface_testkit::fixtures::{fixture_bytes, photos};

use crate::helpers::{assert_no_files, expect_error, expect_ok, files};

/// A JPEG with an EXIF block holding a GPS-looking text and an XMP packet
/// right after SOI.
fn jpeg_with_metadata(jpeg: &[u8]) -> Vec<u8> {
    let mut exif =
        b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x01\0\0\0\0\0\0\0".to_vec();
    exif.extend_from_slice(b"GPSLatitude 48.8584 N");
    let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Jane Roe, Paris</x:xmpmeta>".to_vec();
    let mut out = jpeg[..2].to_vec();
    for (marker, payload) in [(0xE1u8, exif), (0xE1, xmp)] {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn upload_get_delete_round_trip_on_the_local_store() {
    let app = spawn_app().await;
    let original = jpeg_with_metadata(&fixture_bytes(photos::PERSON02_A));
    let up = expect_ok(
        app.client
            .post(app.url("/upload_image1"))
            .multipart(files(&[("image", original.clone())]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(up["success"], true);
    assert_eq!(up["face_detected"], true, "{up}");
    assert_eq!(up["face_count"], 1);
    assert_eq!(up["faces"].as_array().unwrap().len(), 1);
    let name = up["name"].as_str().unwrap().to_string();
    assert!(name.len() == 36 && name.ends_with(".jpg"), "{name}");

    // Stored under the random name only, without its metadata.
    let stored = app.files();
    assert_eq!(
        stored,
        [std::path::PathBuf::from(format!("blobs/uploads/{name}"))]
    );
    let on_disk = std::fs::read(app.data_dir.path().join(&stored[0])).unwrap();
    assert!(!contains(&on_disk, b"GPSLatitude"));
    assert!(!contains(&on_disk, b"Jane Roe"));
    assert_eq!(up["stored_bytes"], on_disk.len());

    let got = app.get(&format!("/get-image?name={name}")).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.headers()["cache-control"], "no-store");
    assert_eq!(got.bytes().await.unwrap().as_ref(), on_disk.as_slice());

    let del = expect_ok(
        app.client
            .delete(app.url(&format!("/delete-image?name={name}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(del["deleted"], true);
    assert_no_files(&app);
    let gone = app.get(&format!("/get-image?name={name}")).await;
    expect_error(gone, StatusCode::NOT_FOUND, "image_not_found").await;
    let again = app
        .client
        .delete(app.url(&format!("/delete-image?name={name}")))
        .send()
        .await
        .unwrap();
    expect_error(again, StatusCode::NOT_FOUND, "image_not_found").await;
}

#[tokio::test]
async fn names_are_accepted_in_bodies_and_posts_as_seed_clients_send_them() {
    let app = spawn_app().await;
    let up = expect_ok(
        app.client
            .post(app.url("/upload_image2"))
            // Any single file field is accepted (the seed never named it).
            .multipart(files(&[("selfie", fixture_bytes(photos::NO_FACE))]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(up["face_detected"], false, "{up}");
    assert_eq!(up["face_count"], 0);
    let name = up["name"].as_str().unwrap();

    let by_json = app
        .client
        .post(app.url("/get-image"))
        .json(&json!({"image_name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_json.status(), StatusCode::OK);
    let by_form = app
        .client
        .get(app.url("/get-image"))
        .form(&[("name", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(by_form.status(), StatusCode::OK);

    let del = expect_ok(
        app.client
            .post(app.url("/delete-image"))
            .form(&[("name", name)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(del["deleted"], true);
    assert_no_files(&app);
}

#[tokio::test]
async fn client_chosen_names_never_become_paths() {
    let app = spawn_app().await;
    // A file the traversal would reach if names were paths.
    std::fs::write(app.data_dir.path().join("secret.txt"), b"secret").unwrap();
    for name in [
        "../secret.txt",
        "..%2Fsecret.txt",
        "/etc/passwd",
        "uploads/../../secret.txt",
        "0123456789abcdef0123456789abcdef.jpg/../../../secret.txt",
    ] {
        let res = app
            .client
            .get(app.url("/get-image"))
            .query(&[("name", name)])
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_image_name").await;
        let res = app
            .client
            .delete(app.url("/delete-image"))
            .query(&[("name", name)])
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_image_name").await;
    }
    assert!(app.data_dir.path().join("secret.txt").is_file());
    let missing = app.get("/get-image").await;
    expect_error(missing, StatusCode::BAD_REQUEST, "missing_field").await;
}

#[tokio::test]
async fn compare_images_by_stored_names_and_by_files() {
    let app = spawn_app().await;
    let mut names = Vec::new();
    for (path, photo) in [
        ("/upload_image1", photos::PERSON02_A),
        ("/upload_image2", photos::PERSON02_B),
        ("/upload_image2", photos::ANGELINA),
    ] {
        let up = expect_ok(
            app.client
                .post(app.url(path))
                .multipart(files(&[("image", fixture_bytes(photo))]))
                .send()
                .await
                .unwrap(),
        )
        .await;
        names.push(up["name"].as_str().unwrap().to_string());
    }
    let same = expect_ok(
        app.client
            .post(app.url("/compare_images"))
            .json(&json!({"image1": names[0], "image2": names[1]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(same["match"], true, "{same}");
    assert_eq!(same["same_person"], true);
    let different = expect_ok(
        app.client
            .post(app.url("/compare_images"))
            .form(&[("image1", names[0].as_str()), ("image2", names[2].as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(different["same_person"], false, "{different}");

    let by_files = expect_ok(
        app.client
            .post(app.url("/compare_images"))
            .multipart(files(&[
                ("image1", fixture_bytes(photos::PERSON02_B)),
                ("image2", fixture_bytes(photos::PERSON02_A)),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_files["same_person"], true, "{by_files}");

    let unknown = app
        .client
        .post(app.url("/compare_images"))
        .json(&json!({"image1": names[0], "image2": "0123456789abcdef0123456789abcdef.jpg"}))
        .send()
        .await
        .unwrap();
    expect_error(unknown, StatusCode::NOT_FOUND, "image_not_found").await;
    // Only the three uploads are stored.
    assert_eq!(app.files().len(), 3);
}
