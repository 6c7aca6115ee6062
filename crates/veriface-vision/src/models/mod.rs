//! The networks, one per file, built from parsed dlib model files.

pub mod mmod_net;
pub mod resnet;
