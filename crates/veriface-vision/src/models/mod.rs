//! The three dlib models, one per file.

pub mod shape_predictor;
