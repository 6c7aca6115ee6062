//! Minimal CPU tensor kernels for dlib's networks.

pub mod tensor;
