//! Readers for dlib's model files.

pub mod dnn;
pub mod serialize;
