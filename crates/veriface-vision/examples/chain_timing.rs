//! The detector's exact level chain alone (dlib's normalised `pyramid_up`,
//! then every `pyramid_down<6>` level, three channels, one thread, best of
//! N): level after level, as the detector built it until session 8, and
//! streamed row by row (`imgproc::chain`), as it builds it now. Both give the
//! same bits; the checksums must agree.
//!
//! `cargo run --release -p veriface-vision --example chain_timing [IMAGE] [RUNS]`

use std::time::Instant;

use veriface_vision::decode::{decode_no_orientation, DecodeLimits};
use veriface_vision::detect::layout::PyramidLayout;
use veriface_vision::imgproc::chain::stream_channel;
use veriface_vision::imgproc::resize::{resize_channel_normalised, resize_plane_f32};

const MEANS: [f32; 3] = [122.782, 117.001, 104.298];

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
    let (up_w, up_h) = (2 * img.width() as usize + 2, 2 * img.height() as usize + 1);
    let layout = PyramidLayout::new(up_h, up_w);
    let sizes: Vec<(usize, usize)> = layout
        .levels
        .iter()
        .map(|t| (t.width() as usize, t.height() as usize))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (mut best_levels, mut best_stream) = (f64::MAX, f64::MAX);
    let (mut sum_levels, mut sum_stream) = (0u64, 0u64);
    for _ in 0..runs {
        pool.install(|| {
            let t = Instant::now();
            sum_levels = 0;
            for (c, &mean) in MEANS.iter().enumerate() {
                let mut level = resize_channel_normalised(&img, c, up_w, up_h, mean);
                let (mut lw, mut lh) = (up_w, up_h);
                sum_levels = sum_levels.wrapping_add(bits_sum(&level));
                let mut next = Vec::new();
                for &(nw, nh) in &sizes[1..] {
                    next.resize(nw * nh, 0.0);
                    resize_plane_f32(&level, lw, lh, &mut next, nw, nh);
                    std::mem::swap(&mut level, &mut next);
                    (lw, lh) = (nw, nh);
                    sum_levels = sum_levels.wrapping_add(bits_sum(&level));
                }
            }
            best_levels = best_levels.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            sum_stream = 0;
            for (c, &mean) in MEANS.iter().enumerate() {
                stream_channel(&img, c, mean, &sizes, |_, _, row| {
                    sum_stream = sum_stream.wrapping_add(bits_sum(row));
                });
            }
            best_stream = best_stream.min(t.elapsed().as_secs_f64());
        });
    }
    println!(
        "{}x{} ({} levels): level after level {:.1} ms, streamed {:.1} ms (each with a checksum pass), checksums {sum_levels} / {sum_stream}",
        img.width(),
        img.height(),
        sizes.len(),
        1000.0 * best_levels,
        1000.0 * best_stream
    );
    if sum_levels != sum_stream {
        return Err("the streamed chain differs from the level-at-a-time chain".into());
    }
    Ok(())
}

/// An order-independent checksum of the values' bits.
fn bits_sum(v: &[f32]) -> u64 {
    v.iter()
        .fold(0u64, |a, x| a.wrapping_add(u64::from(x.to_bits())))
}
