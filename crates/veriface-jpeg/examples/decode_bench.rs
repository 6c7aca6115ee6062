//! Times `decode_rgb` against the `image` crate (zune-jpeg) on the given files.
//!
//! `cargo run --release -p veriface-jpeg --example decode_bench -- FILE...`

use std::time::{Duration, Instant};

fn best_of<F: FnMut()>(runs: u32, mut f: F) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let limits = veriface_jpeg::Limits::default();
        let ours = best_of(7, || {
            let _ = std::hint::black_box(veriface_jpeg::decode_rgb(&bytes, &limits));
        });
        let zune = best_of(7, || {
            let _ = std::hint::black_box(image::load_from_memory(&bytes).map(|i| i.to_rgb8()));
        });
        let h = veriface_jpeg::read_header(&bytes);
        let desc = h.map_or_else(
            |e| e.to_string(),
            |h| {
                format!(
                    "{}x{} {} {:?}",
                    h.width,
                    h.height,
                    if h.progressive {
                        "progressive"
                    } else {
                        "baseline"
                    },
                    h.sampling_factors
                )
            },
        );
        println!(
            "{path}: {desc}: veriface-jpeg {:.1} ms, image/zune-jpeg {:.1} ms",
            ours.as_secs_f64() * 1e3,
            zune.as_secs_f64() * 1e3
        );
    }
}
