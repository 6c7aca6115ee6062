//! The whole compare of a pair, repeated in one process: what
//! `scripts/bench-reference.sh --compare --repeat N` times for
//! face_recognition (models loaded once, the median of N runs), so the two
//! can be put side by side.
//!
//! `cargo run --release -p veriface-vision --example compare_loop [A B [RUNS [THREADS]]]`
//!
//! Each run decodes both files' bytes (read once, before timing), finds each
//! photo's largest face with the default (screened) search, embeds it and
//! compares, the two photos in parallel as `veriface compare` does. Prints
//! every run's time and the median and minimum; defaults: the benchmark
//! pair `person02/img53.jpg` and `img56.jpg`, 9 runs, 1 thread.

use std::time::Instant;

mod common;

use veriface_vision::compare::Comparison;
use veriface_vision::decode::{decode, DecodeLimits};
use veriface_vision::engine::{AnalyzeOptions, FaceEngine};

/// The allocator the `veriface` binary and the benchmarks use.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let faces = common::shared_dir().join("data/faces/images");
    let (a, b) = match args.get(..2) {
        Some([a, b]) => (a.into(), b.into()),
        _ => (
            faces.join("person02/img53.jpg"),
            faces.join("person02/img56.jpg"),
        ),
    };
    let runs: usize = args.get(2).map_or(Ok(9), |s| s.parse())?;
    let threads: usize = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let engine = FaceEngine::load(&common::models_dir())?;
    let (ba, bb) = (std::fs::read(&a)?, std::fs::read(&b)?);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let one = |bytes: &[u8]| -> Result<_, String> {
        let img = decode(bytes, &DecodeLimits::default())
            .map_err(|e| e.to_string())?
            .image;
        engine
            .analyze_largest(&img, &AnalyzeOptions::default())
            .map_err(|e| e.to_string())?
            .and_then(|f| f.embedding)
            .ok_or_else(|| "no face".to_string())
    };
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        let (ea, eb) = pool.install(|| rayon::join(|| one(&ba), || one(&bb)));
        let c = Comparison::from_distance(ea?.distance(&eb?), 0.6);
        let ms = 1000.0 * t.elapsed().as_secs_f64();
        println!(
            "run {i}: {ms:.1} ms  match {} distance {:.4}",
            c.is_match, c.distance
        );
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    if let (Some(min), Some(med)) = (times.first(), times.get(times.len() / 2)) {
        println!("{threads} thread(s), {runs} runs: median {med:.1} ms, min {min:.1} ms");
    }
    Ok(())
}
