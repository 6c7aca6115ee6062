//! veriface's storage adapters: object_store blobs (local directory or S3), sqlx identity store (SQLite or PostgreSQL), Redis cache.

pub mod blob;
// Identity store (SQLite / PostgreSQL) and Redis cache (issue 4).
pub mod cache;
pub mod db;
