//! The face ResNet against dlib 20.0.1's descriptors for every golden face.
//!
//! Golden data: `shared/data/golden/<identity>/<stem>.json`, written by
//! `shared/tools/make_golden.py`, which for each face stores the aligned
//! 150x150 chip dlib produced (`chip.png`) and
//! `face_recognition.face_encodings(img, [css], 1, "small")[0]`
//! (`encoding`). Feeding dlib's own chip isolates the network from the
//! alignment code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Instant;

use veriface_vision::models::resnet::{EmbedError, ResNet};

fn resnet() -> ResNet {
    ResNet::from_bytes(&common::model_bytes(
        "dlib_face_recognition_resnet_model_v1.dat",
    ))
    .unwrap()
}

#[test]
fn descriptors_match_dlib_for_every_golden_face() {
    let net = resnet();
    let (mut worst, mut count, mut worst_at) = (0f64, 0usize, String::new());
    for g in common::golden_entries() {
        for key in ["faces_cnn", "faces_hog"] {
            let Some(faces) = g.json[key].as_array() else {
                continue;
            };
            for face in faces {
                let png = g
                    .json_path
                    .parent()
                    .unwrap()
                    .join(face["chip"]["png"].as_str().unwrap());
                let chip = image::open(&png).unwrap().to_rgb8();
                let got = net.embed(&chip).unwrap();
                let want: Vec<f64> = face["encoding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                assert_eq!(want.len(), 128);
                let diff = got
                    .iter()
                    .zip(&want)
                    .map(|(g, w)| (f64::from(*g) - w).abs())
                    .fold(0f64, f64::max);
                assert!(diff < 1e-3, "{}: max abs diff {diff}", png.display());
                if diff > worst {
                    worst = diff;
                    worst_at = png.display().to_string();
                }
                count += 1;
            }
        }
    }
    eprintln!("{count} faces, worst max-abs descriptor difference {worst:e} ({worst_at})");
    assert!(count > 100, "only {count} golden faces found");
}

#[test]
fn wrong_chip_size_is_an_error() {
    let net = resnet();
    let chip = image::RgbImage::new(150, 149);
    assert_eq!(
        net.embed(&chip),
        Err(EmbedError::ChipSize {
            width: 150,
            height: 149
        })
    );
}

#[test]
fn rejects_the_detector_file() {
    assert!(ResNet::from_bytes(&common::model_bytes("mmod_human_face_detector.dat")).is_err());
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat): unlike
/// wall time, not inflated when other jobs share the cores.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Single-threaded timing; run with
/// `cargo test -p veriface-vision --test resnet_golden time_one -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_one_embedding() {
    let net = resnet();
    let g = &common::golden_entries()[0];
    let face = &g.json["faces_hog"][0];
    let chip = image::open(
        g.json_path
            .parent()
            .unwrap()
            .join(face["chip"]["png"].as_str().unwrap()),
    )
    .unwrap()
    .to_rgb8();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        for _ in 0..5 {
            net.embed(&chip).unwrap();
        }
        let n = 100;
        let mut best = f64::MAX;
        let (t, cpu0) = (Instant::now(), thread_cpu_ns());
        for _ in 0..n {
            let t1 = Instant::now();
            std::hint::black_box(net.embed(&chip).unwrap());
            best = best.min(t1.elapsed().as_secs_f64());
        }
        let mean = t.elapsed().as_secs_f64() / n as f64;
        let cpu = thread_cpu_ns().zip(cpu0).map_or(f64::NAN, |(b, a)| (b - a) as f64 * 1e-9 / n as f64);
        let gflop = 0.541_708_288;
        eprintln!(
            "embed: wall mean {:.2} ms, best {:.2} ms; on-CPU mean {:.2} ms = {:.1} GFLOP/s (best wall {:.1} GFLOP/s)",
            mean * 1e3,
            best * 1e3,
            cpu * 1e3,
            gflop / cpu,
            gflop / best
        );
    });
}
