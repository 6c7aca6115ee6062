//! Agreement of the fast detector with dlib's CNN boxes on the golden set.
//!
//! `cargo run --release -p veriface-vision --example detector_agreement [MIN_FACE_SIZE]`
//!
//! For every golden image with a dlib CNN result, runs the fast detector
//! (min face size from the argument, 0 = automatic) and prints, per dlib
//! face, the best IoU of our boxes, then the summary and the time per image.
//! `docs/engine.md` quotes its output.

use std::time::Instant;

mod common;

use veriface_vision::decode::{decode_no_orientation, DecodeLimits};
use veriface_vision::geometry::Rect;
use veriface_vision::{DetectOptions, FaceEngine};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let min_face: u32 = std::env::args().nth(1).map_or(Ok(0), |s| s.parse())?;
    let (shared, models) = (common::shared_dir(), common::models_dir());
    let engine = FaceEngine::load(&models)?;
    let golden = shared.join("data/golden");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden.join("index.json"))?)?;
    let mut opts = DetectOptions::fast();
    opts.min_face_size = min_face;
    let (mut ious, mut missed, mut extra, mut secs) = (Vec::new(), 0, 0, 0.0);
    for e in index["images"].as_array().ok_or("index")? {
        let g: serde_json::Value = serde_json::from_slice(&std::fs::read(
            golden.join(e["json"].as_str().ok_or("json")?),
        )?)?;
        let Some(raw) = g["cnn"]["raw"].as_array() else {
            continue;
        };
        let file = e["file"].as_str().ok_or("file")?;
        let bytes = std::fs::read(shared.join("data/faces").join(file))?;
        let img = decode_no_orientation(&bytes, &DecodeLimits::default())?.image;
        let t = Instant::now();
        let found = engine.detect(&img, &opts);
        secs += t.elapsed().as_secs_f64();
        extra += found.len().saturating_sub(raw.len());
        for d in raw {
            let r: [i64; 4] = serde_json::from_value(d["rect"].clone())?;
            let r = Rect::new(r[0], r[1], r[2], r[3]);
            let best = found.iter().map(|f| f.raw_rect.iou(&r)).fold(0.0, f64::max);
            if best == 0.0 {
                missed += 1;
            }
            println!("{file:40} {:>5}px  IoU {best:.4}", r.width());
            ious.push(best);
        }
    }
    ious.sort_by(f64::total_cmp);
    let n = ious.len();
    let exact = ious.iter().filter(|&&v| v >= 0.9999).count();
    println!(
        "faces {n}, identical {exact}, >=0.9 {}, worst {:.4}, mean {:.4}, missed {missed}, extra {extra}, detect {:.1} ms/image",
        ious.iter().filter(|&&v| v >= 0.9).count(),
        ious.first().copied().unwrap_or(0.0),
        ious.iter().sum::<f64>() / n.max(1) as f64,
        1000.0 * secs / 63.0
    );
    Ok(())
}
