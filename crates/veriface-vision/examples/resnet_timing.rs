//! Times one ResNet embedding (a 150x150 chip of a real photo) on the
//! calling thread: the minimum and median of many runs, which is steadier
//! than a mean on a shared machine.
//!
//! Each run is paired with a run of an FMA peak loop (12 independent chains
//! of fused multiply-adds at the CPU's widest SIMD width, the machine's
//! arithmetic peak) just before it, and the embedding is also reported as
//! a multiple of the network's arithmetic limit at that measured peak
//! (0.542 GFLOP / peak). The clock of a shared host moves by 10-20% from
//! minute to minute; the two move together, so the ratio is steadier than
//! either time.
//!
//! `cargo run --release -p veriface-vision --example resnet_timing [RUNS]`

use std::time::Instant;

use veriface_vision::models::resnet::ResNet;

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The network's cost per chip (see `models/resnet.rs`).
const NETWORK_FLOP: f64 = 0.542e9;

/// FMA iterations per peak measurement (12 chains of one vector each).
const PEAK_ITERS: usize = 200_000;

/// The FMA peak loop: returns FLOP/s.
struct Peak;

impl pulp::WithSimd for Peak {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> f64 {
        let lanes = core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>();
        let (b, c) = (simd.splat_f32s(1.000_000_1), simd.splat_f32s(-1e-7));
        let mut acc = [simd.splat_f32s(0.5); 12];
        for (i, a) in acc.iter_mut().enumerate() {
            *a = simd.splat_f32s(i as f32);
        }
        // Opaque starting values: with known ones LLVM merged two of the
        // chains (11 FMAs per iteration for 12 counted).
        let mut acc = std::hint::black_box(acc);
        let t = Instant::now();
        for _ in 0..PEAK_ITERS {
            for a in acc.iter_mut() {
                *a = simd.mul_add_f32s(*a, b, c);
            }
        }
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(acc);
        (PEAK_ITERS * 12 * lanes * 2) as f64 / s
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = common::models_dir();
    let net = ResNet::from_bytes(&std::fs::read(
        dir.join("dlib_face_recognition_resnet_model_v1.dat"),
    )?)?;
    // A deterministic textured chip: the network's cost does not depend on
    // the pixel values.
    let chip = image::RgbImage::from_fn(150, 150, |x, y| {
        image::Rgb([(x * 7 + y) as u8, (y * 5 + x * 3) as u8, (x ^ y) as u8])
    });
    let input = net.input_tensor(&chip)?;
    let arch = pulp::Arch::new();
    let (mut times, mut peaks, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let peak = arch.dispatch(Peak);
        let t = Instant::now();
        std::hint::black_box(net.forward(&input));
        let ms = t.elapsed().as_secs_f64() * 1e3;
        times.push(ms);
        peaks.push(peak / 1e9);
        ratios.push(ms / (NETWORK_FLOP / peak * 1e3));
    }
    for v in [&mut times, &mut peaks, &mut ratios] {
        v.sort_by(f64::total_cmp);
    }
    // The fastest embedding against the limit at the fastest peak (both
    // taken when the host let this core run at its best), and the median
    // of each run's own ratio.
    let best = times[0] / (NETWORK_FLOP / (peaks[runs - 1] * 1e9) * 1e3);
    println!(
        "embedding: min {:.2} ms, median {:.2} ms over {runs} runs; FMA peak max {:.1}, median {:.1} GFLOP/s; embedding / arithmetic limit: fastest / at fastest peak {:.2}x, median of pairs {:.2}x",
        times[0],
        times[runs / 2],
        peaks[runs - 1],
        peaks[runs / 2],
        best,
        ratios[runs / 2]
    );
    Ok(())
}
