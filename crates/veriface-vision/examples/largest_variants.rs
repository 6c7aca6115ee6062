//! The screened largest-face search against the exact one on transformed
//! copies of the golden photos: the check behind the screened search's
//! empirical guarantee (`docs/engine.md`, "Screened largest face").
//!
//! `cargo run --release -p veriface-vision --example largest_variants [MAX_MPX]`
//!
//! Every golden photo up to `MAX_MPX` megapixels (default 4) is mirrored,
//! cropped to 90% at its top-left and its bottom-right corner and rescaled
//! to 0.8x and 1.15x (bilinear), in memory; each of those five variants goes
//! through both searches, and any difference in the face found (box or raw
//! box) is printed with both answers. The photos themselves are the golden
//! test's business. Ends with the count of differences and both searches'
//! total time; exits non-zero when a difference was found.

use std::time::Instant;

mod common;

use image::imageops::{self, FilterType};
use image::RgbImage;
use rayon::prelude::*;
use veriface_vision::decode::{decode_no_orientation, DecodeLimits};
use veriface_vision::{DetectOptions, FaceEngine, LargestSearch};

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let max_mpx: f64 = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 4.0,
    };
    let (shared, models) = (common::shared_dir(), common::models_dir());
    let engine = FaceEngine::load(&models)?;
    let golden = shared.join("data/golden");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden.join("index.json"))?)?;
    let screened = DetectOptions::fast();
    let exact = DetectOptions {
        largest: LargestSearch::Exact,
        ..screened
    };
    let mut photos = Vec::new();
    for e in index["images"].as_array().ok_or("index")? {
        let file = e["file"].as_str().ok_or("file")?;
        let bytes = std::fs::read(shared.join("data/faces").join(file))?;
        let img = decode_no_orientation(&bytes, &DecodeLimits::default())?.image;
        if f64::from(img.width()) * f64::from(img.height()) <= max_mpx * 1e6 {
            photos.push((file.to_string(), img));
        }
    }
    let jobs: Vec<(String, &'static str, RgbImage)> = photos
        .iter()
        .flat_map(|(file, img)| {
            variants(img)
                .into_iter()
                .map(move |(name, v)| (file.clone(), name, v))
        })
        .collect();
    // One variant per thread: the searches' own parallelism is per channel.
    let results: Vec<(bool, f64, f64)> = jobs
        .par_iter()
        .map(|(file, name, img)| {
            let t = Instant::now();
            let a = engine.detect_largest(img, &exact);
            let t_exact = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let b = engine.detect_largest(img, &screened);
            let t_screened = t.elapsed().as_secs_f64();
            let key = |f: Option<veriface_vision::FaceBox>| f.map(|f| (f.rect, f.raw_rect));
            let same = key(a) == key(b);
            if !same {
                println!(
                    "DIFFERENT {file} {name} ({}x{})\n    exact    {a:?}\n    screened {b:?}",
                    img.width(),
                    img.height()
                );
            }
            (same, t_exact, t_screened)
        })
        .collect();
    let differ = results.iter().filter(|r| !r.0).count();
    let (te, ts): (f64, f64) = results
        .iter()
        .fold((0.0, 0.0), |(a, b), r| (a + r.1, b + r.2));
    println!(
        "photos {}, variants {}, screened differs from exact on {differ}; exact {te:.1} s, screened {ts:.1} s ({:.2}x less)",
        photos.len(),
        results.len(),
        te / ts
    );
    if differ > 0 {
        std::process::exit(1);
    }
    Ok(())
}
