//! Face chips against dlib 20.0.1's own chips.
//!
//! Expected values: `chip` of every face in the golden JSONs, written by
//! `shared/tools/make_golden.py` from dlib's
//! `get_face_chip_details(shape, 150, 0.25)` and `extract_image_chip` on the
//! golden `landmarks_5`: the chip rectangle and angle at full precision and
//! the sha256 of the chip's raw RGB bytes (the PNG sits beside the JSON).
//!
//! The chips are computed from the golden landmarks, so the geometry is
//! decoder-independent; the pixels are bit-identical because the engine's
//! JPEG decoder reproduces libjpeg-turbo (PIL) exactly.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use sha2::{Digest, Sha256};
use veriface_vision::align::{chip_details, extract_chip};
use veriface_vision::geometry::{IPoint, Landmarks};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Extracts every golden chip; returns (faces, bit-identical, worst pixel
/// difference).
fn run(load: impl Fn(&common::Golden) -> image::RgbImage) -> (usize, usize, u8) {
    let mut worst_pixel = 0u8;
    let (mut faces, mut identical, mut worst_geom) = (0usize, 0usize, 0f64);
    let mut chip_time = std::time::Duration::ZERO;
    let mut mismatches = Vec::new();
    for g in common::golden_entries() {
        let img = load(&g);
        for key in ["faces_cnn", "faces_hog"] {
            let Some(list) = g.json[key].as_array() else {
                continue;
            };
            for (i, face) in list.iter().enumerate() {
                let lm: Vec<IPoint> = face["landmarks_5"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| IPoint::new(p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
                    .collect();
                let lm: Landmarks = lm.try_into().unwrap();
                let chip = &face["chip"];
                let t = Instant::now();
                let d = chip_details(&lm);
                let got = extract_chip(&img, &d);
                chip_time += t.elapsed();

                let want_rect: Vec<f64> = chip["rect"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let got_rect = [d.rect.left, d.rect.top, d.rect.right, d.rect.bottom];
                let geom = got_rect
                    .iter()
                    .zip(&want_rect)
                    .map(|(a, b)| (a - b).abs())
                    .fold((d.angle - chip["angle"].as_f64().unwrap()).abs(), f64::max);
                worst_geom = worst_geom.max(geom);
                assert!(geom < 1e-6, "{} {key}[{i}]: {d:?} vs {chip}", g.file);

                faces += 1;
                let sha = hex(&Sha256::digest(got.as_raw()));
                if sha == chip["sha256_rgb"].as_str().unwrap() {
                    identical += 1;
                } else {
                    let png = g
                        .json_path
                        .parent()
                        .unwrap()
                        .join(chip["png"].as_str().unwrap());
                    let want = image::open(&png).unwrap().to_rgb8();
                    let max_diff = got
                        .as_raw()
                        .iter()
                        .zip(want.as_raw())
                        .map(|(a, b)| a.abs_diff(*b))
                        .max()
                        .unwrap();
                    worst_pixel = worst_pixel.max(max_diff);
                    let n_diff = got
                        .as_raw()
                        .iter()
                        .zip(want.as_raw())
                        .filter(|(a, b)| a != b)
                        .count();
                    mismatches.push(format!(
                        "{} {key}[{i}]: {n_diff} bytes differ, max {max_diff}",
                        g.file
                    ));
                }
            }
        }
    }
    eprintln!(
        "chips: {identical}/{faces} bit-identical, worst geometry error {worst_geom:e}, {:?} per face",
        chip_time / faces as u32
    );
    for m in &mismatches {
        eprintln!("  {m}");
    }
    (faces, identical, worst_pixel)
}

#[test]
fn chips_match_dlib_on_every_golden_face() {
    let (faces, identical, worst) = run(|g| common::load_rgb_no_exif(&g.image_path));
    // Same pixels as dlib (libjpeg-exact decode), so bit-identical chips.
    assert_eq!((faces, identical, worst), (137, 137, 0));
}

#[test]
fn chip_extraction_timing() {
    let mut report = Vec::new();
    for g in common::golden_entries() {
        if !matches!(
            g.file.as_str(),
            "images/angelina/img1.jpg" | "images/angelina/img5.jpg" | "images/_multi/couple.jpg"
        ) {
            continue;
        }
        let img = common::load_rgb_no_exif(&g.image_path);
        let face = &g.json["faces_hog"][0];
        let lm: Vec<IPoint> = face["landmarks_5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| IPoint::new(p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
            .collect();
        let lm: Landmarks = lm.try_into().unwrap();
        let mut best = std::time::Duration::MAX;
        let mut d = chip_details(&lm);
        for _ in 0..30 {
            let t = Instant::now();
            d = chip_details(&lm);
            std::hint::black_box(extract_chip(&img, &d));
            best = best.min(t.elapsed());
        }
        report.push(format!(
            "{} ({}x{}), chip side {:.0} px: best {best:?}",
            g.file,
            img.width(),
            img.height(),
            d.rect.right - d.rect.left + 1.0
        ));
        assert!(best < std::time::Duration::from_millis(100), "{best:?}");
    }
    for r in &report {
        eprintln!("chip timing: {r}");
    }
    assert_eq!(report.len(), 3);
}
