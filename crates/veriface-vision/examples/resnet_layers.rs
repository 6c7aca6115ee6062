//! Times the ResNet's conv shapes, single-threaded, through the two routes:
//! `conv2d` (im2col + GEMM, or the pixel-vectorised direct kernel where it
//! suits) and `conv2d_packed` (filter-vectorised, weights packed once).
//! The routes alternate within each round, so host noise hits both alike;
//! minimum times over the rounds are printed.
//!
//! `cargo run --release -p veriface-vision --example resnet_layers [ROUNDS]`

use std::time::Instant;

use veriface_vision::nn::conv::{conv2d, Epilogue};
use veriface_vision::nn::direct::{conv2d_packed, PackedWeights};
use veriface_vision::nn::tensor::Tensor;

mod common;
use common::{pseudo, square_conv};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    // (in_channels, input side, filters, kernel, stride, pad, count in the
    // network) of the face ResNet's convs on a 150x150 chip (the 256-filter
    // stage is 4x4: dlib's add_prev zero-extends the 3x3 conv output to the
    // 4x4 average pool of the 8x8 map).
    let layers = [
        (3, 150, 32, 7, 2, 0, 1),
        (32, 35, 32, 3, 1, 1, 6),
        (32, 35, 64, 3, 2, 0, 1),
        (64, 17, 64, 3, 1, 1, 7),
        (64, 17, 128, 3, 2, 0, 1),
        (128, 8, 128, 3, 1, 1, 5),
        (128, 8, 256, 3, 2, 0, 1),
        (256, 3, 256, 3, 1, 1, 1),
        (256, 4, 256, 3, 1, 1, 4),
        (256, 4, 256, 3, 2, 0, 1),
        (256, 1, 256, 3, 1, 1, 1),
    ];
    let (mut total_a, mut total_b, mut flops_all) = (0.0, 0.0, 0.0);
    for (i, &(c, side, f, k, s, p, count)) in layers.iter().enumerate() {
        let x = Tensor {
            c,
            h: side,
            w: side,
            data: pseudo(c * side * side, i as u32 + 1),
        };
        let conv = square_conv(c, f, k, s, p, i as u32);
        let packed = PackedWeights::new(&conv);
        let e = Epilogue {
            affine: None,
            relu: true,
        };
        let (mut a, mut b) = (f64::MAX, f64::MAX);
        let mut out = None;
        for _ in 0..rounds {
            let t = Instant::now();
            let y = conv2d(&x, &conv, e);
            a = a.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let z = conv2d_packed(&x, &conv, &packed, e);
            b = b.min(t.elapsed().as_secs_f64());
            out = Some((y, z));
        }
        let Some((y, z)) = out else { return };
        let diff = y
            .data
            .iter()
            .zip(&z.data)
            .map(|(u, v)| (u - v).abs())
            .fold(0f32, f32::max);
        let flops = 2.0 * (f * c * k * k) as f64 * (y.h * y.w) as f64;
        let n = count as f64;
        total_a += a * n;
        total_b += b * n;
        flops_all += flops * n;
        println!(
            "{c:>3}->{f:>3} {k}x{k} s{s} out {:>2}x{:<2} x{count}: conv2d {:6.3} ms {:5.1} GFLOP/s | packed {:6.3} ms {:5.1} GFLOP/s | max diff {diff:.1e}",
            y.h,
            y.w,
            a * 1e3,
            flops / a / 1e9,
            b * 1e3,
            flops / b / 1e9
        );
    }
    println!(
        "convs in total ({:.3} GFLOP): conv2d {:.2} ms, packed {:.2} ms",
        flops_all / 1e9,
        total_a * 1e3,
        total_b * 1e3
    );
}
