//! API tests: the real server on a free port, real photos, a real
//! S3-protocol server. One binary, so the face engine loads once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod bad_input;
mod blob_store;
mod compare;
mod helpers;
mod identity;
mod load;
mod openapi;
mod operations;
mod seed000;
mod sessions;
mod v1;
