//! The MMOD detector network: strip-wise evaluation equals a whole-tensor
//! run, output geometry follows section 6.1, and a timing probe.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Instant;

use veriface_vision::models::mmod_net::{Layer3Cache, MmodNet};
use veriface_vision::nn::tensor::Tensor;

fn net() -> MmodNet {
    MmodNet::from_bytes(&common::model_bytes("mmod_human_face_detector.dat")).unwrap()
}

/// A deterministic pseudo-image in roughly the normalised value range.
fn input(h: usize, w: usize) -> Tensor {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let data = (0..3 * h * w)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Smooth structure plus noise, so deeper layers see varied values.
            let (y, x) = ((i / w) % h, i % w);
            ((x as f32 * 0.05).sin() * (y as f32 * 0.07).cos()) * 0.4
                + (s >> 40) as f32 / (1u64 << 24) as f32 * 0.2
                - 0.1
        })
        .collect();
    Tensor { c: 3, h, w, data }
}

#[test]
fn exposes_the_documented_options() {
    let n = net();
    assert_eq!(n.window_size(), (80, 80));
    assert_eq!(n.nms_iou_thresh(), 0.3382761351109955);
    assert_eq!(n.means(), [122.782, 117.001, 104.298]);
    assert_eq!(n.pyramid_padding(), (10, 11));
}

#[test]
fn strips_give_the_same_score_map_as_one_pass() {
    let n = net();
    let x = input(261, 150);
    let whole = n.forward_in_strips(&x, 10_000, 10_000);
    // H3 = ((261-5)/2+1 -> 129 -> 63 -> 30), W3 = (150 -> 73 -> 35 -> 16).
    assert_eq!((whole.c, whole.h, whole.w), (1, 30, 16));
    for (down, same) in [(1, 1), (3, 7), (7, 3), (11, 29), (29, 11), (10_000, 2)] {
        let split = n.forward_in_strips(&x, down, same);
        assert_eq!((split.c, split.h, split.w), (1, 30, 16));
        let worst = whole
            .data
            .iter()
            .zip(&split.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "strips of {down}/{same} rows: max diff {worst}"
        );
    }
    assert_eq!(n.forward(&x).data.len(), whole.data.len());
}

#[test]
fn scoring_only_the_needed_cells_gives_their_forward_scores() {
    let n = net();
    let x = input(420, 380);
    let whole = n.forward(&x);
    // H3 = (420 -> 208 -> 102 -> 49), W3 = (380 -> 188 -> 92 -> 44).
    assert_eq!((whole.h, whole.w), (49, 44));
    assert_eq!(n.output_size(420, 380), (49, 44));
    for (rows, cols) in [
        (0..49, 0..44),
        (20..30, 15..29),
        (0..12, 30..44),
        (9..11, 0..5),
        (11..40, 10..35),
        (35..49, 5..6),
        (30..30, 0..44),
    ] {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| n.forward_cells(&x, (rows.clone(), cols.clone())));
            assert_eq!((got.c, got.h, got.w), (1, 49, 44));
            let mut worst = 0f32;
            for y in 0..49 {
                for c in 0..44 {
                    let (g, w) = (got.data[y * 44 + c], whole.data[y * 44 + c]);
                    if rows.contains(&y) && cols.contains(&c) {
                        worst = worst.max((g - w).abs());
                    } else {
                        assert_eq!(
                            g,
                            f32::NEG_INFINITY,
                            "cell ({y}, {c}) outside {rows:?} x {cols:?}"
                        );
                    }
                }
            }
            // Equal up to the summation order of the GEMM route, which
            // narrower planes take.
            assert!(worst < 1e-5, "{rows:?} x {cols:?}: max diff {worst}");
        }
    }
}

/// The `h x w` pixels of `t` from `(top, left)` on.
fn crop(t: &Tensor, top: usize, left: usize, h: usize, w: usize) -> Tensor {
    let mut out = Tensor::zeros(t.c, h, w);
    for c in 0..t.c {
        for y in 0..h {
            let s = (c * t.h + top + y) * t.w + left;
            out.data[(c * h + y) * w..(c * h + y + 1) * w].copy_from_slice(&t.data[s..s + w]);
        }
    }
    out
}

#[test]
fn overlapping_crops_share_cached_phase_one_results() {
    let n = net();
    let x = input(520, 480);
    // Crops on the 8-pixel output stride, overlapping each other: the
    // second and third reuse layer-3 cells the earlier ones computed, the
    // fourth is covered by them entirely.
    let crops = [
        (0usize, 0usize, 300usize, 280usize),
        (160, 120, 320, 300),
        (96, 0, 200, 480),
        (160, 160, 120, 100),
    ];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut cache = Layer3Cache::new();
        let mut held = 0;
        for (i, &(top, left, h, w)) in crops.iter().enumerate() {
            let part = crop(&x, top, left, h, w);
            let (h3, w3) = n.output_size(h, w);
            let need = (3..h3 - 2, 2..w3 - 3);
            let origin = ((top / 8) as i64, (left / 8) as i64);
            let fresh = pool.install(|| n.forward_cells(&part, need.clone()));
            let cached =
                pool.install(|| n.forward_cells_cached(&part, need.clone(), origin, &mut cache));
            assert_eq!((cached.h, cached.w), (h3, w3));
            let mut worst = 0f32;
            for (a, b) in fresh.data.iter().zip(&cached.data) {
                if a.is_finite() || b.is_finite() {
                    worst = worst.max((a - b).abs());
                } else {
                    assert_eq!(a, b);
                }
            }
            // Cells computed in differently shaped blocks may take the GEMM
            // route instead of the direct kernel (summation order).
            assert!(
                worst < 1e-5,
                "crop {i}, {threads} threads: max diff {worst}"
            );
            let now = cache.cells();
            if i == 3 {
                assert_eq!(now, held, "a covered crop computed cells again");
            } else {
                assert!(now > held, "crop {i} added no cells");
            }
            held = now;
        }
    }
}

#[test]
fn tiny_inputs_give_empty_maps_without_panicking() {
    let n = net();
    let out = n.forward(&input(20, 20));
    assert_eq!(out.h, 0);
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// `cargo test -p veriface-vision --test mmod_net time -- --ignored --nocapture`
#[test]
#[ignore]
fn time_forward_per_megapixel() {
    let n = net();
    let x = input(1000, 1000);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            n.forward(&x);
            let (t, cpu0) = (Instant::now(), thread_cpu_ns());
            let reps = 3;
            for _ in 0..reps {
                std::hint::black_box(n.forward(&x));
            }
            if threads == 1 {
                let cpu = thread_cpu_ns()
                    .zip(cpu0)
                    .map_or(f64::NAN, |(b, a)| (b - a) as f64 * 1e-6 / reps as f64);
                eprintln!("mmod forward, 1 thread: {cpu:.1} ms on-CPU per megapixel");
            }
            eprintln!(
                "mmod forward, {threads} thread(s): {:.1} ms per megapixel",
                t.elapsed().as_secs_f64() * 1e3 / reps as f64
            );
        });
    }
}
