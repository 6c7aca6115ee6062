//! Shared helpers of the worker's integration tests: the engine (loaded
//! once per test binary), real photos from the shared data set, and
//! generated images for the bad-input cases.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use veriface_vision::FaceEngine;

/// `$VERIFACE_SHARED_DIR/data/faces/images`, else `../shared` beside the
/// checkout.
pub fn faces_dir() -> PathBuf {
    let shared = std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("data/faces/images");
    assert!(
        dir.is_dir(),
        "the shared face photos are missing at {}: set VERIFACE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// Bytes of a shared photo, e.g. `person03/img51.jpg`.
pub fn photo(rel: &str) -> Vec<u8> {
    std::fs::read(faces_dir().join(rel)).unwrap()
}

/// Small single-face photos (400-660 px wide), one per person.
pub const SINGLE_FACES: [&str; 4] = [
    "person03/img51.jpg",
    "person05/img62.jpg",
    "person09/img25.jpg",
    "person10/img46.jpg",
];

/// The models: `$VERIFACE_MODELS_DIR`, else the checkout's `models`.
pub fn engine() -> Arc<FaceEngine> {
    static ENGINE: OnceLock<Arc<FaceEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let dir = std::env::var_os("VERIFACE_MODELS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
            Arc::new(FaceEngine::load(&dir).unwrap_or_else(|e| {
                panic!("{e} (install the models with scripts/install-models.sh)")
            }))
        })
        .clone()
}

/// `_multi/couple.jpg` (two people, 2280x1588) scaled to 760 px wide:
/// both faces stay about 200 px, detection costs a ninth.
pub fn two_faces_jpeg() -> Vec<u8> {
    let img = image::load_from_memory(&photo("_multi/couple.jpg")).unwrap();
    let small = img.resize(760, 760, image::imageops::FilterType::Triangle);
    let mut out = Cursor::new(Vec::new());
    small
        .to_rgb8()
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// A 320x240 PNG of a smooth gradient: a valid image with no face.
pub fn no_face_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x * 255 / 320) as u8, (y * 255 / 240) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
