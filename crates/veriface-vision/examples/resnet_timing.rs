//! Times one ResNet embedding (a 150x150 chip of a real photo) on the
//! calling thread: the minimum and median of many runs, which is steadier
//! than a mean on a shared machine.
//!
//! `cargo run --release -p veriface-vision --example resnet_timing [RUNS]`

use std::time::Instant;

use veriface_vision::models::resnet::ResNet;

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(net.forward(&input));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "embedding: min {:.2} ms, median {:.2} ms over {runs} runs",
        times[0],
        times[runs / 2]
    );
    Ok(())
}
