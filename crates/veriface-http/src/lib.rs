//! veriface's HTTP API: axum router, error codes, compatibility endpoints of the seed services, /v1 API, OpenAPI, pages.
