//! The three dlib models, one per file, built from the parsed model files.

pub mod mmod_net;
pub mod resnet;
pub mod shape_predictor;
