//! The screened largest-face search against the exact one on transformed
//! copies of the golden photos: the check behind the screened search's
//! empirical guarantee (`docs/engine.md`, "Screened largest face"). The
//! golden photos themselves are `golden_parity`'s business.
//!
//! Every golden photo up to 4 Mpx is mirrored, cropped to 90% at its
//! top-left and its bottom-right corner and rescaled to 0.8x and 1.15x
//! (bilinear), in memory; each of those 285 variants goes through both
//! searches, which must find the same face (box and raw box). Both
//! searches' total time is printed (`cargo test --release -p
//! veriface-vision --test largest_variants -- --nocapture`; ~30 s on two
//! threads).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Instant;

use image::imageops::{self, FilterType};
use image::RgbImage;
use rayon::prelude::*;
use veriface_vision::{DetectOptions, FaceBox, FaceEngine, LargestSearch};

/// Photos larger than this are left out (the two 12-14 Mpx ones would take
/// most of the time and add no case the others lack).
const MAX_PIXELS: u64 = 4_000_000;

/// The five variants of `img`, each with a short name.
fn variants(img: &RgbImage) -> Vec<(&'static str, RgbImage)> {
    let (w, h) = img.dimensions();
    let (cw, ch) = (w * 9 / 10, h * 9 / 10);
    let scaled = |f: f64| {
        let (sw, sh) = (
            ((f64::from(w) * f).round() as u32).max(1),
            ((f64::from(h) * f).round() as u32).max(1),
        );
        imageops::resize(img, sw, sh, FilterType::Triangle)
    };
    vec![
        ("mirror", imageops::flip_horizontal(img)),
        ("crop-tl", imageops::crop_imm(img, 0, 0, cw, ch).to_image()),
        (
            "crop-br",
            imageops::crop_imm(img, w - cw, h - ch, cw, ch).to_image(),
        ),
        ("0.8x", scaled(0.8)),
        ("1.15x", scaled(1.15)),
    ]
}

#[test]
fn screened_search_finds_the_exact_searchs_face_on_transformed_photos() {
    let engine = FaceEngine::load(&common::models_dir()).expect("models load");
    let screened = DetectOptions::fast();
    let exact = DetectOptions {
        largest: LargestSearch::Exact,
        ..screened
    };
    let photos: Vec<(String, RgbImage)> = common::golden_entries()
        .into_iter()
        .map(|g| (g.file, common::load_rgb_no_exif(&g.image_path)))
        .filter(|(_, img)| u64::from(img.width()) * u64::from(img.height()) <= MAX_PIXELS)
        .collect();
    assert!(photos.len() >= 57, "only {} golden photos", photos.len());
    let jobs: Vec<(&str, &str, RgbImage)> = photos
        .iter()
        .flat_map(|(file, img)| {
            variants(img)
                .into_iter()
                .map(move |(name, v)| (file.as_str(), name, v))
        })
        .collect();
    let key = |f: Option<FaceBox>| f.map(|f| (f.rect, f.raw_rect));
    // One variant per task: the searches' own parallelism is per channel.
    let results: Vec<(Option<String>, f64, f64)> = jobs
        .par_iter()
        .map(|(file, name, img)| {
            let t = Instant::now();
            let a = engine.detect_largest(img, &exact);
            let t_exact = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let b = engine.detect_largest(img, &screened);
            let t_screened = t.elapsed().as_secs_f64();
            let differs = (key(a) != key(b)).then(|| {
                format!(
                    "{file} {name} ({}x{}): exact {a:?}, screened {b:?}",
                    img.width(),
                    img.height()
                )
            });
            (differs, t_exact, t_screened)
        })
        .collect();
    let (te, ts) = results
        .iter()
        .fold((0.0, 0.0), |(a, b), r| (a + r.1, b + r.2));
    println!(
        "{} variants of {} photos: exact search {te:.1} s, screened {ts:.1} s ({:.2}x less)",
        results.len(),
        photos.len(),
        te / ts
    );
    let differing: Vec<&String> = results.iter().filter_map(|r| r.0.as_ref()).collect();
    assert!(
        differing.is_empty(),
        "the screened search missed the exact search's face on {} of {} variants:\n{}",
        differing.len(),
        results.len(),
        differing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
