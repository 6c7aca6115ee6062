//! The networks, one per file, built from parsed dlib model files.

pub mod resnet;
