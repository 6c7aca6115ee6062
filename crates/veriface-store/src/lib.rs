//! veriface's storage adapters: object_store blobs (local directory or S3), sqlx identity store (SQLite or PostgreSQL), Redis cache.

pub mod blob;
