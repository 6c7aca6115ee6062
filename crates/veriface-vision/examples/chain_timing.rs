//! The detector's exact level chain alone: `pyramid_up` of a photo, then
//! every `pyramid_down<6>` level of each channel, one thread, best of N.
//!
//! `cargo run --release -p veriface-vision --example chain_timing [IMAGE] [RUNS]`

use std::time::Instant;

use veriface_vision::decode::{decode_no_orientation, DecodeLimits};
use veriface_vision::detect::layout::PyramidLayout;
use veriface_vision::imgproc::pyramid::pyramid_up;
use veriface_vision::imgproc::resize::resize_plane_f32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/person02_b.jpg"
        )
        .to_string()
    });
    let runs: usize = std::env::args().nth(2).map_or(Ok(7), |s| s.parse())?;
    let img = decode_no_orientation(&std::fs::read(&path)?, &DecodeLimits::default())?.image;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (mut best_up, mut best_chain, mut checksum) = (f64::MAX, f64::MAX, 0.0f64);
    for _ in 0..runs {
        pool.install(|| {
            let t = Instant::now();
            let up = pyramid_up(&img);
            let a = t.elapsed().as_secs_f64();
            let layout = PyramidLayout::new(up.height() as usize, up.width() as usize);
            let t = Instant::now();
            let mut sum = 0.0f64;
            for c in 0..3 {
                let mut level: Vec<f32> = up
                    .as_raw()
                    .chunks_exact(3)
                    .map(|p| (f32::from(p[c]) - 120.0) / 256.0)
                    .collect();
                let (mut lw, mut lh) = (up.width() as usize, up.height() as usize);
                let mut next = Vec::new();
                for tile in layout.levels.iter().skip(1) {
                    let (nw, nh) = (tile.width() as usize, tile.height() as usize);
                    next.resize(nw * nh, 0.0);
                    resize_plane_f32(&level, lw, lh, &mut next, nw, nh);
                    std::mem::swap(&mut level, &mut next);
                    (lw, lh) = (nw, nh);
                    sum += f64::from(level[level.len() / 2]);
                }
            }
            let b = t.elapsed().as_secs_f64();
            best_up = best_up.min(a);
            best_chain = best_chain.min(b);
            checksum = sum + up.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>();
        });
    }
    println!(
        "{}x{}: pyramid_up {:.1} ms, f32 chain (3 channels) {:.1} ms, checksum {checksum}",
        img.width(),
        img.height(),
        1000.0 * best_up,
        1000.0 * best_chain
    );
    Ok(())
}
