//! veriface's face engine: dlib-compatible face detection, 5-point alignment
//! and 128-D face descriptors in pure Rust.
//!
//! The engine reads dlib's public model files (installed and sha256-checked by
//! `scripts/install-models.sh`) and reproduces dlib's inference as specified
//! in `docs/dlib-models.md`. It knows nothing of HTTP, SQL or async runtimes:
//! its API is synchronous and its models are immutable, so one loaded engine
//! is shared across threads behind an `Arc`.

pub mod align;
pub mod compare;
pub mod decode;
pub mod detect;
pub mod dlib;
pub mod engine;
pub mod error;
pub mod geometry;
pub mod imgproc;
pub mod jitter;
pub mod models;
pub mod models_dir;
pub mod nn;
mod transform;

pub use engine::{
    AnalyzeOptions, DetectOptions, DetectorMode, Embedding, Face, FaceBox, FaceEngine,
    LargestSearch,
};
pub use error::{Error, Result};
