//! Shared helpers for the engine's integration tests: where the shared data
//! set, the golden files and the models live.
//!
//! The golden files are real dlib 20.0.1 outputs produced by
//! `shared/tools/make_golden.py` (face_recognition 1.3.0, dlib-bin
//! 20.0.1.post1); see `shared/docs/dlib-models.md` section 11.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// `../shared` beside the checkout, or `$VERIFACE_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("data/golden/index.json").is_file(),
        "the shared data set is missing at {}: clone it beside the checkout or set VERIFACE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// `$VERIFACE_MODELS_DIR`, else `models/` at the workspace root.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(
        dir.join("mmod_human_face_detector.dat").is_file(),
        "models are missing in {}: run `scripts/install-models.sh`",
        dir.display()
    );
    dir
}

/// Reads a model file's bytes.
pub fn model_bytes(name: &str) -> Vec<u8> {
    let p = models_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// One golden entry: the image path and its parsed JSON.
pub struct Golden {
    /// `images/<identity>/<file>` relative to `shared/data/faces`.
    pub file: String,
    /// Absolute path of the image.
    pub image_path: PathBuf,
    /// Absolute path of the JSON (chips sit next to it).
    pub json_path: PathBuf,
    /// The parsed JSON.
    pub json: serde_json::Value,
}

/// Every image listed in `golden/index.json`, in index order.
pub fn golden_entries() -> Vec<Golden> {
    let shared = shared_dir();
    let golden = shared.join("data/golden");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden.join("index.json")).unwrap()).unwrap();
    index["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let file = e["file"].as_str().unwrap().to_string();
            let json_path = golden.join(e["json"].as_str().unwrap());
            let json = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
            Golden {
                image_path: shared.join("data/faces").join(&file),
                file,
                json_path,
                json,
            }
        })
        .collect()
}

/// Decodes an image file to RGB8 the way face_recognition's loader does
/// (PIL `convert("RGB")`, no EXIF orientation), for parity tests: the
/// engine's own decoder, whose JPEG pixels are bit-identical to
/// libjpeg-turbo's (PIL's).
pub fn load_rgb_no_exif(path: &std::path::Path) -> image::RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    veriface_vision::decode::decode_no_orientation(
        &bytes,
        &veriface_vision::decode::DecodeLimits::default(),
    )
    .unwrap_or_else(|e| panic!("decoding {}: {e}", path.display()))
    .image
}
