//! The BlobStore contract on both backends (a local directory and a real
//! S3-protocol server, s3s-fs), and the upload -> get -> delete round trip
//! through the HTTP API on S3.

use bytes::Bytes;
use reqwest::StatusCode;
use veriface_core::ports::BlobStore;
use veriface_store::blob::ObjectBlobStore;
use veriface_testkit::app::{files_under, spawn_app_with};
use veriface_testkit::fixtures::{fixture_bytes, photos};
use veriface_testkit::s3::S3Server;

use crate::helpers::{expect_error, expect_ok, files};

/// What every BlobStore must do.
async fn contract(store: &dyn BlobStore) {
    store.ping().await.unwrap();
    assert_eq!(store.list("").await.unwrap(), Vec::<String>::new());

    store
        .put("uploads/a.jpg", Bytes::from_static(b"first"))
        .await
        .unwrap();
    store
        .put("uploads/b.png", Bytes::from_static(b"second"))
        .await
        .unwrap();
    store
        .put("other/c.bin", Bytes::from_static(b"third"))
        .await
        .unwrap();
    assert_eq!(store.get("uploads/a.jpg").await.unwrap().as_ref(), b"first");
    // Overwrite replaces.
    store
        .put("uploads/a.jpg", Bytes::from_static(b"replaced"))
        .await
        .unwrap();
    assert_eq!(
        store.get("uploads/a.jpg").await.unwrap().as_ref(),
        b"replaced"
    );

    assert_eq!(
        store.list("uploads/").await.unwrap(),
        ["uploads/a.jpg", "uploads/b.png"]
    );
    assert_eq!(store.list("").await.unwrap().len(), 3);

    let missing = store.get("uploads/none.jpg").await.unwrap_err();
    assert_eq!(missing.code(), "image_not_found");
    assert!(store.delete("uploads/a.jpg").await.unwrap());
    assert!(!store.delete("uploads/a.jpg").await.unwrap());
    assert_eq!(
        store.get("uploads/a.jpg").await.unwrap_err().code(),
        "image_not_found"
    );
    assert_eq!(store.list("uploads").await.unwrap(), ["uploads/b.png"]);

    for bad in ["../x", "uploads/../../x", "/abs", "a//b", "a b"] {
        assert_eq!(
            store.put(bad, Bytes::new()).await.unwrap_err().code(),
            "invalid_key",
            "{bad}"
        );
        assert_eq!(
            store.get(bad).await.unwrap_err().code(),
            "invalid_key",
            "{bad}"
        );
    }
    assert!(store.delete("uploads/b.png").await.unwrap());
    assert!(store.delete("other/c.bin").await.unwrap());
    assert_eq!(store.list("").await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn the_local_store_keeps_the_contract_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectBlobStore::local(dir.path().join("blobs")).unwrap();
    assert_eq!(store.backend(), "local");
    contract(&store).await;
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
}

#[tokio::test]
async fn the_s3_store_keeps_the_contract_against_a_real_s3_server() {
    let server = S3Server::start();
    let store = ObjectBlobStore::s3(&server.config()).unwrap();
    assert_eq!(store.backend(), "s3");
    contract(&store).await;

    // The objects really went through the server: it wrote them to disk.
    store
        .put("uploads/z.jpg", Bytes::from_static(b"on disk"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.bucket_dir().join("uploads/z.jpg")).unwrap(),
        b"on disk"
    );
    store.delete("uploads/z.jpg").await.unwrap();

    let mut server = server;
    server.stop();
    let down = store.ping().await.unwrap_err();
    assert_eq!(down.code(), "unavailable");
}

#[tokio::test]
async fn upload_get_delete_round_trip_through_the_api_on_s3() {
    let mut server = S3Server::start();
    let s3 = server.config();
    let app = spawn_app_with(move |s| s.s3 = Some(s3)).await;
    let ready = expect_ok(app.get("/readyz").await).await;
    assert_eq!(ready["blob_store"]["backend"], "s3");

    let up = expect_ok(
        app.client
            .post(app.url("/upload_image1"))
            .multipart(files(&[("image", fixture_bytes(photos::PERSON02_A))]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(up["face_detected"], true);
    let name = up["name"].as_str().unwrap().to_string();
    let object = server.bucket_dir().join("uploads").join(&name);
    assert!(object.is_file(), "the S3 server holds the upload");
    // Nothing went to the local data directory.
    assert!(app.files().is_empty(), "{:?}", app.files());

    let got = app.get(&format!("/get-image?name={name}")).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.bytes().await.unwrap().as_ref(),
        std::fs::read(&object).unwrap()
    );

    let compared = expect_ok(
        app.client
            .post(app.url("/compare_images"))
            .json(&serde_json::json!({"image1": name, "image2": name}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(compared["distance"], 0.0);

    expect_ok(
        app.client
            .post(app.url("/delete-image"))
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!object.exists());
    let gone = app.get(&format!("/get-image?name={name}")).await;
    expect_error(gone, StatusCode::NOT_FOUND, "image_not_found").await;

    // With the store down, readiness fails and uploads are 503.
    server.stop();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["blob_store"]["status"], "unavailable");
    let res = app
        .client
        .post(app.url("/upload_image2"))
        .multipart(files(&[("image", fixture_bytes(photos::PERSON02_B))]))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
}
