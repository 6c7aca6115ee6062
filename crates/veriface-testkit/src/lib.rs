//! Test helpers shared by veriface's test suites: fixtures, golden data, real servers started on loopback.

// Real PostgreSQL, Redis and Kafka-protocol servers on loopback (issue 4).
pub mod app;
pub mod db;
pub mod documents;
pub mod fixtures;
pub mod kafka;
pub mod postgres;
pub mod redis;
pub mod s3;
pub mod server;
