//! Throughput of `matmul` on the conv shapes the engine uses, from on-CPU
//! time (best of 5). `cargo run --release -p veriface-gemm --example
//! gemm_shapes [-- m n k ...]`; `DS=<stride>` sets the destination row
//! stride, `DENORM=1` makes a third of the lhs subnormal.
#![allow(missing_docs, clippy::unwrap_used)]
use veriface_gemm::{matmul, matmul_strided, MatRef};

fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let custom: Vec<(&str, usize, usize, usize)> = args
        .chunks(3)
        .map(|c| ("custom", c[0], c[1], c[2]))
        .collect();
    let shapes: &[(&str, usize, usize, usize)] = if !custom.is_empty() {
        &custom
    } else {
        &[
            ("square512", 512, 512, 512),
            ("rn stem", 32, 5184, 147),
            ("rn 32", 32, 1225, 288),
            ("rn 64", 64, 289, 576),
            ("rn 128", 128, 64, 1152),
            ("rn 256", 256, 9, 2304),
            ("mm L1", 16, 16384, 75),
            ("mm L2", 32, 8192, 400),
            ("mm L3", 32, 4096, 800),
            ("mm L5", 45, 4096, 1125),
            ("mm L5 big", 45, 16384, 1125),
        ]
    };
    for &(name, m, n, k) in shapes {
        let den = std::env::var("DENORM").is_ok();
        let a: Vec<f32> = (0..m * k)
            .map(|i| {
                if den && i % 3 == 0 {
                    1e-40
                } else {
                    (i % 7) as f32 * 0.1
                }
            })
            .collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let ds: usize = std::env::var("DS").ok().map_or(n, |v| v.parse().unwrap());
        let mut c = vec![0f32; m * ds];
        let flop = 2.0 * (m * n * k) as f64;
        let reps = ((2e9 / flop) as usize).clamp(3, 2000);
        for orient in 0..2 {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t0 = cpu_ns();
                for _ in 0..reps {
                    let lhs = MatRef {
                        data: &a,
                        row_stride: k,
                    };
                    let rhs = MatRef {
                        data: &b,
                        row_stride: n,
                    };
                    if orient == 0 {
                        matmul(&mut c, ds, lhs, rhs, m, n, k).unwrap();
                    } else {
                        matmul_strided(&mut c, 1, m, lhs, rhs, m, n, k).unwrap();
                    }
                }
                best = best.min((cpu_ns() - t0) as f64 / reps as f64);
            }
            println!(
                "{name:10} m={m:4} n={n:6} k={k:5} {}: {:8.1} us {:6.1} GFLOP/s",
                if orient == 0 { "rowmaj" } else { "colmaj" },
                best / 1e3,
                flop / best
            );
        }
    }
}
