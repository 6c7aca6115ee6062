//! Minimal CPU tensor kernels for dlib's networks.

pub mod conv;
pub mod direct;
pub mod ops;
pub mod tensor;

#[cfg(test)]
mod test_util;
