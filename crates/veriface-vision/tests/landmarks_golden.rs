//! The 5-point shape predictor against dlib 20.0.1's own landmarks.
//!
//! Expected values: `faces_cnn[*].landmarks_5` and `faces_hog[*].landmarks_5`
//! of every golden JSON, written by `shared/tools/make_golden.py` with
//! `face_recognition.face_landmarks(img, [css], model="small")`, i.e. dlib's
//! `shape_predictor` on the dlib rectangle stored as `rect`.
//!
//! Images are decoded by the engine's JPEG decoder, which is bit-identical
//! to libjpeg-turbo (the pixels PIL gave dlib), so every point must be exact.
//! (With zune-jpeg's decodes only 21/137 faces were exact, worst 7 px.)

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use veriface_vision::geometry::{IPoint, Rect};
use veriface_vision::models::shape_predictor::ShapePredictor;

fn rect_of(v: &serde_json::Value) -> Rect {
    let c: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    Rect::new(c[0], c[1], c[2], c[3])
}

fn points_of(v: &serde_json::Value) -> Vec<IPoint> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| IPoint::new(p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
        .collect()
}

fn load_model() -> ShapePredictor {
    let bytes = common::model_bytes("shape_predictor_5_face_landmarks.dat");
    let t0 = Instant::now();
    let sp = ShapePredictor::from_bytes(&bytes).unwrap();
    eprintln!("shape predictor loaded in {:?}", t0.elapsed());
    assert_eq!((sp.num_stages(), sp.num_trees()), (15, 7500));
    sp
}

/// Predicts every golden face; returns (faces, exact, worst px difference).
fn run(load: impl Fn(&common::Golden) -> image::RgbImage) -> (usize, usize, i64) {
    let sp = load_model();
    let (mut faces, mut exact, mut worst) = (0usize, 0usize, 0i64);
    let mut time = Duration::ZERO;
    for g in common::golden_entries() {
        let img = load(&g);
        for key in ["faces_cnn", "faces_hog"] {
            let Some(list) = g.json[key].as_array() else {
                continue;
            };
            for (i, face) in list.iter().enumerate() {
                let t = Instant::now();
                let got = sp.predict(&img, rect_of(&face["rect"]));
                time += t.elapsed();
                let want = points_of(&face["landmarks_5"]);
                let diff = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a.x - b.x).abs().max((a.y - b.y).abs()))
                    .max()
                    .unwrap();
                if diff != 0 {
                    eprintln!("  {} {key}[{i}]: {diff} px", g.file);
                }
                faces += 1;
                exact += usize::from(diff == 0);
                worst = worst.max(diff);
            }
        }
    }
    eprintln!(
        "landmarks: {exact}/{faces} exact, worst {worst} px, {:?} per face",
        time / faces as u32
    );
    (faces, exact, worst)
}

#[test]
fn landmarks_match_dlib_on_every_golden_face() {
    let (faces, exact, worst) = run(|g| common::load_rgb_no_exif(&g.image_path));
    // The engine decodes JPEG exactly as libjpeg-turbo (PIL) does, so the
    // predictor sees dlib's pixels and must give dlib's points exactly.
    assert_eq!((faces, exact, worst), (137, 137, 0));
}

#[test]
fn stage_trace_matches_for_angelina_img5() {
    let shared = common::shared_dir();
    let trace: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared.join("data/golden/traces/shape5_angelina_img5_hog0.json")).unwrap(),
    )
    .unwrap();
    let sp = load_model();
    let img = common::load_rgb_no_exif(
        &shared
            .join("data/faces")
            .join(trace["file"].as_str().unwrap()),
    );
    let got = sp.predict(&img, rect_of(&trace["rect_ltrb"]));
    let want = points_of(&trace["landmarks"]);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a.x - b.x).abs().max((a.y - b.y).abs()))
        .max()
        .unwrap();
    assert_eq!(worst, 0, "got {got:?}, want {want:?}");
}

#[test]
fn prediction_takes_well_under_a_frame() {
    let shared = common::shared_dir();
    let sp = load_model();
    let img = common::load_rgb_no_exif(&shared.join("data/faces/images/angelina/img5.jpg"));
    let rect = Rect::new(97, 160, 283, 345);
    let mut best = Duration::MAX;
    for _ in 0..200 {
        let t = Instant::now();
        std::hint::black_box(sp.predict(&img, rect));
        best = best.min(t.elapsed());
    }
    eprintln!("landmarks: best of 200 = {best:?} per face");
    // About 0.5 ms on a desktop core; generous for loaded CI machines.
    assert!(best < Duration::from_millis(20), "{best:?}");
}
