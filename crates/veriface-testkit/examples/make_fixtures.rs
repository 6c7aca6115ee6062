//! Regenerates `tests/fixtures/*.jpg` from `../shared/data/faces` and
//! prints what the engine finds in each, with the distances of the pairs
//! the API tests rely on.
//!
//! `cargo run --release -p veriface-testkit --example make_fixtures`
//!
//! The photos are downscaled so that an API test analyses about 0.1 Mpx
//! instead of 1 Mpx (the detector's cost is proportional to pixels), while
//! every face stays well above the detector's 40 px minimum.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Context;
use image::imageops::FilterType;
use veriface_testkit::fixtures::{fixtures_dir, shared_dir};
use veriface_vision::compare::distance;
use veriface_vision::decode::{decode, DecodeLimits};
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::engine::AnalyzeOptions;

/// A crop rectangle: x, y, width, height.
type Crop = (u32, u32, u32, u32);

/// (output, source under data/faces/images, crop, width to scale to).
const SPECS: &[(&str, &str, Option<Crop>, Option<u32>)] = &[
    ("person02_a.jpg", "person02/img53.jpg", None, Some(400)),
    ("person02_b.jpg", "person02/img56.jpg", None, Some(420)),
    ("couple.jpg", "_multi/couple.jpg", None, Some(570)),
    // The left 440 px of img56 hold a wall and a shoulder, no face.
    (
        "no_face.jpg",
        "person02/img56.jpg",
        Some((0, 0, 440, 800)),
        Some(220),
    ),
];

fn main() -> anyhow::Result<()> {
    let images = shared_dir().join("data/faces/images");
    let out_dir = fixtures_dir();
    std::fs::create_dir_all(&out_dir)?;
    for (out, src, crop, width) in SPECS {
        let bytes = std::fs::read(images.join(src)).with_context(|| format!("reading {src}"))?;
        let mut img = decode(&bytes, &DecodeLimits::default())?.image;
        if let Some((x, y, w, h)) = crop {
            img = image::imageops::crop_imm(&img, *x, *y, *w, *h).to_image();
        }
        if let Some(w) = width {
            let h =
                (f64::from(img.height()) * f64::from(*w) / f64::from(img.width())).round() as u32;
            img = image::imageops::resize(&img, *w, h, FilterType::Lanczos3);
        }
        let mut encoded = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 90).encode_image(&img)?;
        std::fs::write(out_dir.join(out), &encoded)?;
        println!(
            "{out}: {}x{} {} bytes from {src}",
            img.width(),
            img.height(),
            encoded.len()
        );
    }
    // One original, byte for byte: small enough already.
    std::fs::copy(
        images.join("angelina/img5.jpg"),
        out_dir.join("angelina.jpg"),
    )?;

    let engine =
        veriface_vision::engine::FaceEngine::load(&veriface_testkit::fixtures::models_dir())?;
    let mut embeddings = Vec::new();
    for name in [
        "person02_a.jpg",
        "person02_b.jpg",
        "angelina.jpg",
        "couple.jpg",
        "no_face.jpg",
    ] {
        let bytes = std::fs::read(out_dir.join(name))?;
        let img = decode(&bytes, &DecodeLimits::default())?.image;
        let t = std::time::Instant::now();
        let faces = engine.analyze(&img, &AnalyzeOptions::default())?;
        println!(
            "{name}: {} face(s) {:?} in {:.0} ms",
            faces.len(),
            faces.iter().map(|f| f.face_box.rect).collect::<Vec<_>>(),
            t.elapsed().as_secs_f64() * 1e3
        );
        let largest = pick_largest(&faces, |f| (f.face_box.rect.area(), f.face_box.score));
        embeddings.push((name, largest.and_then(|f| f.embedding)));
    }
    for (i, (a, ea)) in embeddings.iter().enumerate() {
        for (b, eb) in &embeddings[i + 1..] {
            if let (Some(ea), Some(eb)) = (ea, eb) {
                println!("distance {a} {b}: {:.4}", distance(&ea.0, &eb.0));
            }
        }
    }
    Ok(())
}
