//! Readers for dlib's model files.

pub mod serialize;
