//! The endpoints, one module per API family. Each module exposes
//! `router() -> OpenApiRouter<AppState>`; [`crate::api_router`] merges them.

pub mod compat;
pub mod identity;
pub mod input;
pub mod ops;
pub mod pages;
pub mod seed000;
pub mod sessions;
pub mod v1;
