//! Times each MMOD detector conv layer on a synthetic square input (1000x1000
//! unless a side is given; the detector's crops are 300-900 px),
//! single-threaded, and prints milliseconds and GFLOP/s per layer.
//!
//! `cargo run --release -p veriface-vision --example conv_layers [SIDE]`

use std::time::Instant;

use veriface_vision::nn::conv::{conv2d, Epilogue};
use veriface_vision::nn::tensor::Tensor;

mod common;
use common::{pseudo, square_conv};

fn main() {
    // (in_channels, filters, kernel, stride, pad) of the MMOD network.
    let layers = [
        (3, 16, 5, 2, 0),
        (16, 32, 5, 2, 0),
        (32, 32, 5, 2, 0),
        (32, 45, 5, 1, 2),
        (45, 45, 5, 1, 2),
        (45, 45, 5, 1, 2),
        (45, 1, 9, 1, 4),
    ];
    let side: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut x = Tensor {
        c: 3,
        h: side,
        w: side,
        data: pseudo(3 * side * side, 1),
    };
    let mut total = 0.0;
    for (i, &(c, f, k, s, p)) in layers.iter().enumerate() {
        let conv = square_conv(c, f, k, s, p, i as u32);
        let mut best = f64::MAX;
        let mut y = None;
        for _ in 0..7 {
            let t = Instant::now();
            let out = conv2d(
                &x,
                &conv,
                Epilogue {
                    affine: None,
                    relu: true,
                },
            );
            best = best.min(t.elapsed().as_secs_f64());
            y = Some(out);
        }
        let y = y.unwrap_or_else(|| Tensor::zeros(1, 1, 1));
        let flops = 2.0 * (f * c * k * k) as f64 * (y.h * y.w) as f64;
        total += best;
        println!(
            "layer {i}: {c:>2}->{f:>2} {k}x{k} s{s}  out {}x{}  {:7.2} ms  {:6.1} GFLOP/s",
            y.h,
            y.w,
            best * 1e3,
            flops / best / 1e9
        );
        x = y;
    }
    println!("total {:.1} ms", total * 1e3);
}
