//! Per-stage benchmarks of the face engine (issue 2), single-threaded and on
//! all cores. Inputs are real photos from `shared/data/faces`; the results
//! are summarised in `docs/benchmarks.md` next to face_recognition's numbers
//! from the same machine (`scripts/bench.sh` runs both).
//!
//! Run: `cargo bench -p veriface-vision --bench engine`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: failing loudly is the point
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use image::RgbImage;
use veriface_vision::compare::Comparison;
use veriface_vision::decode::{decode, DecodeLimits};
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::engine::{AnalyzeOptions, DetectOptions, FaceEngine};

/// The allocator the `veriface` binary uses, so the numbers are the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn shared() -> PathBuf {
    std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn models() -> PathBuf {
    std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

fn photo(rel: &str) -> Vec<u8> {
    let p = shared().join("data/faces/images").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn resized(rel: &str, w: u32, h: u32) -> RgbImage {
    let img = decode(&photo(rel), &DecodeLimits::default()).unwrap().image;
    image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
}

/// A ~1 MP pair of the same person.
const PAIR: (&str, &str) = ("person02/img53.jpg", "person02/img56.jpg");

fn pools() -> Vec<(&'static str, rayon::ThreadPool)> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mk = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    vec![("1-thread", mk(1)), ("all-cores", mk(all))]
}

fn benches(c: &mut Criterion) {
    let engine = FaceEngine::load(&models()).expect("models: run scripts/install-models.sh");
    let jpeg = photo(PAIR.0);
    let img = decode(&jpeg, &DecodeLimits::default()).unwrap().image;
    let face = engine.detect(&img, &DetectOptions::fast())[0];
    let landmarks = engine.landmarks(&img, face.rect);
    let chip = engine.chip(&img, &landmarks);
    let vga = resized(PAIR.0, 640, 480);
    let sxga = resized(PAIR.0, 1280, 960);
    let pair = (photo(PAIR.0), photo(PAIR.1));

    for (name, pool) in pools() {
        // Work runs inside `pool` so that "1-thread" is truly single-threaded;
        // install() costs microseconds, far below every stage measured.
        let run = |f: &mut (dyn FnMut() + Send)| pool.install(f);
        let mut g = c.benchmark_group(format!("engine/{name}"));
        g.sample_size(20);
        g.bench_function("decode_jpeg_1100x825", |b| {
            b.iter(|| run(&mut || drop(decode(&jpeg, &DecodeLimits::default()).unwrap())))
        });
        for (label, im) in [("640x480", &vga), ("1280x960", &sxga)] {
            g.bench_with_input(BenchmarkId::new("detect_fast", label), im, |b, im| {
                b.iter(|| run(&mut || drop(engine.detect(im, &DetectOptions::fast()))))
            });
        }
        g.bench_function("landmarks_and_chip", |b| {
            b.iter(|| {
                run(&mut || {
                    let l = engine.landmarks(&img, face.rect);
                    drop(engine.chip(&img, &l));
                })
            })
        });
        g.bench_function("embedding", |b| {
            b.iter(|| {
                run(&mut || {
                    std::hint::black_box(engine.embed_chip(&chip).unwrap());
                })
            })
        });
        // What `veriface compare` runs: the largest-face search.
        g.bench_function("compare_two_1mp_photos", |b| {
            b.iter(|| {
                run(&mut || {
                    let one = |bytes: &[u8]| {
                        let im = decode(bytes, &DecodeLimits::default()).unwrap().image;
                        engine
                            .analyze_largest(&im, &AnalyzeOptions::default())
                            .unwrap()
                            .and_then(|f| f.embedding)
                            .unwrap()
                    };
                    let (a, b2) = rayon::join(|| one(&pair.0), || one(&pair.1));
                    assert!(Comparison::from_distance(a.distance(&b2), 0.6).is_match);
                })
            })
        });
        // The same compare from the full fast detector (every face found,
        // every face embedded, the largest compared): `--all-faces`, and
        // the whole pipeline before the largest-face search.
        g.bench_function("compare_two_1mp_photos_all_faces", |b| {
            b.iter(|| {
                run(&mut || {
                    let one = |bytes: &[u8]| {
                        let im = decode(bytes, &DecodeLimits::default()).unwrap().image;
                        let faces = engine.analyze(&im, &AnalyzeOptions::default()).unwrap();
                        pick_largest(faces, |f| (f.face_box.rect.area(), f.face_box.score))
                            .and_then(|f| f.embedding)
                            .unwrap()
                    };
                    let (a, b2) = rayon::join(|| one(&pair.0), || one(&pair.1));
                    assert!(Comparison::from_distance(a.distance(&b2), 0.6).is_match);
                })
            })
        });
        g.finish();
    }

    // dlib's exact procedure is ~10x the work; a few samples suffice.
    let mut g = c.benchmark_group("engine/reference");
    g.sample_size(10);
    for (name, pool) in pools() {
        g.bench_with_input(BenchmarkId::new("detect_640x480", name), &vga, |b, im| {
            b.iter(|| pool.install(|| drop(engine.detect(im, &DetectOptions::reference()))))
        });
    }
    g.finish();
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
