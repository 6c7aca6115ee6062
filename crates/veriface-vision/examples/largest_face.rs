//! The largest-face search against the fast detector on every golden image.
//!
//! `cargo run --release -p veriface-vision --example largest_face`
//!
//! For each image: the fast detector's whole list (then its largest face,
//! as a compare picks it) and [`FaceEngine::detect_largest`] with the
//! screened (default) and the exact search, all timed on the current thread
//! pool, and whether the faces are identical. Prints one line per image and
//! a summary; `docs/benchmarks.md` quotes it.

use std::time::Instant;

mod common;

use veriface_vision::decode::{decode_no_orientation, DecodeLimits};
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::{DetectOptions, FaceEngine, LargestSearch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (shared, models) = (common::shared_dir(), common::models_dir());
    let engine = FaceEngine::load(&models)?;
    let golden = shared.join("data/golden");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden.join("index.json"))?)?;
    let opts = DetectOptions::fast();
    let exact_opts = DetectOptions {
        largest: LargestSearch::Exact,
        ..opts
    };
    let (mut t_fast, mut t_largest, mut same, mut n) = (0.0, 0.0, 0, 0);
    let (mut t_exact, mut same_exact) = (0.0, 0);
    let mut ratios = Vec::new();
    for e in index["images"].as_array().ok_or("index")? {
        let file = e["file"].as_str().ok_or("file")?;
        let bytes = std::fs::read(shared.join("data/faces").join(file))?;
        let img = decode_no_orientation(&bytes, &DecodeLimits::default())?.image;
        let t = Instant::now();
        let all = engine.detect(&img, &opts);
        let fast = pick_largest(all.iter().copied(), |f| (f.rect.area(), f.score));
        let a = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let largest = engine.detect_largest(&img, &opts);
        let b = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let exact = engine.detect_largest(&img, &exact_opts);
        t_exact += t.elapsed().as_secs_f64();
        n += 1;
        // The same face: the same boxes (scores may differ in the last bits,
        // the network runs on differently sized crops).
        let key = |f: Option<veriface_vision::FaceBox>| f.map(|f| (f.rect, f.raw_rect));
        let is_same = key(fast) == key(largest);
        same += usize::from(is_same);
        same_exact += usize::from(key(fast) == key(exact));
        t_fast += a;
        t_largest += b;
        ratios.push(a / b);
        let side = largest.map_or(0, |f| f.rect.width());
        println!(
            "{file:40} {}x{} face {side:>5}px  fast {:>7.1} ms  screened {:>7.1} ms  {:>5.2}x  {}",
            img.width(),
            img.height(),
            1000.0 * a,
            1000.0 * b,
            a / b,
            if is_same { "same" } else { "DIFFERENT" }
        );
        if !is_same {
            println!("    fast {fast:?}\n    ours {largest:?}\n    all {all:?}");
        }
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "images {n}, identical largest face: screened {same}, exact {same_exact}; total fast {:.1} s, exact search {:.1} s, screened {:.1} s ({:.2}x less than fast, {:.2}x less than exact), median per-image speed-up over fast {:.2}x (min {:.2}x, max {:.2}x)",
        t_fast,
        t_exact,
        t_largest,
        t_fast / t_largest,
        t_exact / t_largest,
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    Ok(())
}
