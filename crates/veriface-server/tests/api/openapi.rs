//! The OpenAPI document validates (openapi-spec-validator, installed by
//! scripts/deps/11-openapi-spec-validator.sh) and matches the routes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use reqwest::{Method, StatusCode};
use veriface_testkit::app::spawn_app;

/// Every operation the server must have: the seeds' endpoints, the v1 API,
/// operations and documentation. A route added without documentation, or
/// documented without a route, fails the tests below.
const EXPECTED: &[(&str, &str)] = &[
    ("get", "/"),
    ("post", "/compare"),
    ("post", "/upload_image1"),
    ("post", "/upload_image2"),
    ("get", "/get-image"),
    ("post", "/get-image"),
    ("delete", "/delete-image"),
    ("post", "/delete-image"),
    ("post", "/compare_images"),
    ("post", "/v1/detect"),
    ("post", "/v1/compare"),
    ("post", "/v1/embed"),
    ("post", "/v1/enrollments"),
    ("get", "/v1/enrollments/{job_id}"),
    ("get", "/v1/users/{username}"),
    ("delete", "/v1/users/{username}"),
    ("post", "/v1/users/{username}/verify"),
    ("post", "/v1/search"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("post", "/api/verification/start"),
    ("delete", "/api/verification/cancel/{session_id}"),
    ("post", "/api/scan/add/{session_id}"),
    ("post", "/api/scan/restart/{session_id}"),
    ("post", "/api/scan/confirm/{session_id}"),
    ("get", "/api/verification/check_status/{session_id}"),
    ("get", "/test_page"),
    ("get", "/verify/{session_id}"),
];

fn python_path() -> String {
    let tools = std::env::var_os("VERIFACE_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/veriface/tools"))
        });
    let mut paths: Vec<PathBuf> = tools.into_iter().map(|t| t.join("python")).collect();
    if let Some(existing) = std::env::var_os("PYTHONPATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).unwrap().into_string().unwrap()
}

#[tokio::test]
async fn the_document_validates_and_documents_exactly_the_routes() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    // The official schema validator.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new("python3")
        .env("PYTHONPATH", python_path())
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(&file)
        .output()
        .expect("python3 runs (needed for openapi-spec-validator)");
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the document (install it with scripts/deps/11-openapi-spec-validator.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
        .collect();
    assert_eq!(documented, expected);

    // Every documented operation is served: none answers the router's
    // not_found or method_not_allowed (bodies are left empty, so the
    // handlers refuse them cheaply).
    for (method, path) in &documented {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        // A handler's own 404 (`image_not_found`, `job_not_found`) is
        // fine; the router's `not_found` means the route is missing.
        assert!(
            status != StatusCode::NOT_FOUND || !body.contains("\"code\":\"not_found\""),
            "{method} {path}: {status} {body}"
        );
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
    }
    // And an undocumented one is not.
    let res = app.get("/v2/detect").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Request bodies document the field names clients really send (a
    // schema name used twice would make one endpoint show the other's).
    let fields = |path: &str, content_type: &str| -> BTreeSet<String> {
        let r = doc["paths"][path]["post"]["requestBody"]["content"][content_type]["schema"]
            ["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} {content_type} has no schema"));
        let name = r.rsplit('/').next().unwrap();
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        fields("/compare", "application/json"),
        set(&["passport", "face", "threshold"])
    );
    assert_eq!(
        fields("/compare", "multipart/form-data"),
        set(&["reference_image", "live_image", "threshold"])
    );
    assert_eq!(
        fields("/v1/compare", "application/json"),
        set(&["a", "b", "threshold"])
    );
    assert_eq!(
        fields("/v1/compare", "multipart/form-data"),
        set(&["a", "b", "threshold"])
    );
    assert_eq!(fields("/v1/detect", "multipart/form-data"), set(&["image"]));
    for ct in ["multipart/form-data", "application/json"] {
        assert_eq!(
            fields("/api/scan/add/{session_id}", ct),
            set(&["side", "image"])
        );
    }
    assert_eq!(
        fields("/api/verification/start", "application/json"),
        set(&["webhook_url"])
    );
    assert_eq!(
        fields("/upload_image1", "multipart/form-data"),
        set(&["image"])
    );
    assert_eq!(
        fields("/compare_images", "application/json"),
        set(&["image1", "image2", "threshold"])
    );
    // Errors share the envelope.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("ErrorEnvelope"));
    assert_eq!(
        doc["paths"]["/compare"]["post"]["responses"]["422"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/ErrorEnvelope"
    );
}

#[tokio::test]
async fn the_docs_page_is_self_contained_and_lists_every_path() {
    let app = spawn_app().await;
    let res = app.get("/docs").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    for (_, path) in EXPECTED {
        assert!(
            html.contains(&format!("<code>{path}</code>")),
            "{path} missing from /docs"
        );
    }
    // Nothing is loaded from elsewhere: no scripts, no external styles.
    assert!(!html.contains("<script"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external reference in /docs"
    );
}
