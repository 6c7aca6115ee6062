//! `pyramid_up` against the upsampled image of the MMOD trace (numpy port,
//! whose detector results match dlib 20.0.1 exactly; see
//! `shared/docs/dlib-models.md` sections 9 and 11).

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use sha2::{Digest, Sha256};
use veriface_vision::imgproc::pyramid_up;

#[test]
fn pyramid_up_matches_the_mmod_trace() {
    let trace: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::shared_dir().join("data/golden/traces/mmod_angelina_img5.json"))
            .unwrap(),
    )
    .unwrap();
    // The trace hashes the raw RGB bytes (rows of R, G, B) of the upsampled
    // libjpeg-turbo decode, which the engine's decoder reproduces.
    let file = trace["file"].as_str().unwrap();
    let img = common::load_rgb_no_exif(&common::shared_dir().join("data/faces").join(file));
    let t = Instant::now();
    let up = pyramid_up(&img);
    let dt = t.elapsed();
    let hw = &trace["upsampled_size_hw"];
    assert_eq!(
        (u64::from(up.height()), u64::from(up.width())),
        (hw[0].as_u64().unwrap(), hw[1].as_u64().unwrap())
    );
    let sha: String = Sha256::digest(up.as_raw())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, trace["upsampled_sha256_rgb"].as_str().unwrap());
    eprintln!(
        "pyramid_up {}x{} -> {}x{} in {dt:?}",
        img.width(),
        img.height(),
        up.width(),
        up.height()
    );
}

#[test]
fn pyramid_up_of_a_megapixel_image_is_fast() {
    let img = image::RgbImage::from_fn(1000, 1000, |x, y| {
        image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (y * 3) as u8])
    });
    let t = Instant::now();
    let up = pyramid_up(&img);
    let dt = t.elapsed();
    assert_eq!((up.width(), up.height()), (2002, 2001));
    eprintln!("pyramid_up 1000x1000 -> 2002x2001 in {dt:?}");
}
