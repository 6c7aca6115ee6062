//! Test helpers shared by veriface's test suites: fixtures, golden data, real servers started on loopback.

pub mod app;
pub mod fixtures;
pub mod s3;
