//! API keys and the per-key rate limit.

use reqwest::StatusCode;
use veriface_store::blob::Secret;
use veriface_testkit::app::spawn_app_with;

use crate::helpers::expect_error;

#[tokio::test]
async fn keys_are_required_everywhere_but_health_and_accepted_in_either_header() {
    let app = spawn_app_with(|s| {
        s.api_keys = vec![Secret::new("k-alpha"), Secret::new("k-beta")];
        s.rate_limit_per_second = 100.0;
        s.rate_limit_burst = 100;
    })
    .await;
    for path in ["/", "/healthz", "/readyz"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path} is public");
    }
    for path in ["/metrics", "/openapi.json", "/docs", "/get-image?name=x"] {
        let res = app.get(path).await;
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let wrong = app
        .client
        .get(app.url("/openapi.json"))
        .bearer_auth("k-gamma")
        .send()
        .await
        .unwrap();
    expect_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let bearer = app
        .client
        .get(app.url("/openapi.json"))
        .bearer_auth("k-alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let header = app
        .client
        .get(app.url("/metrics"))
        .header("x-api-key", "k-beta")
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), StatusCode::OK);
    // The route runs once authorised: a bad name is the next error.
    let res = app
        .client
        .get(app.url("/get-image?name=x"))
        .bearer_auth("k-alpha")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_image_name").await;
}

#[tokio::test]
async fn each_key_has_its_own_rate_limit() {
    let app = spawn_app_with(|s| {
        s.api_keys = vec![Secret::new("k1"), Secret::new("k2")];
        s.rate_limit_per_second = 0.5;
        s.rate_limit_burst = 3;
    })
    .await;
    let get = |key: &'static str| {
        app.client
            .get(app.url("/openapi.json"))
            .bearer_auth(key)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(get("k1").await.unwrap().status(), StatusCode::OK);
    }
    let limited = get("k1").await.unwrap();
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another key is unaffected; health never counts.
    assert_eq!(get("k2").await.unwrap().status(), StatusCode::OK);
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
}
