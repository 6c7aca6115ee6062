//! End-to-end parity with real dlib on every image of `shared/data/golden/`.
//!
//! The expected values come from dlib-bin 20.0.1.post1 through
//! face_recognition 1.3.0, written by `shared/tools/make_golden.py`:
//!
//! ```python
//! img = face_recognition.load_image_file(path)          # PIL RGB, no EXIF
//! raw = cnn_face_detector(img, 1)                        # -> "cnn.raw"
//! css = face_recognition.face_locations(img, 1, "cnn")   # clipped
//! for box in css:                                        # -> "faces_cnn"
//!     landmarks_5 = pose_predictor_5_point(img, css_to_rect(box))
//!     encoding = face_recognition.face_encodings(img, [box], 1, "small")[0]
//! ```
//!
//! Tolerances (issue 2): same number of faces, IoU >= 0.95 against dlib's
//! CNN boxes, landmarks within 1 px, every descriptor component within 1e-3.
//! The fast default detector must keep IoU >= 0.9 and the same pair
//! decisions. Worst figures are printed (`cargo test -- --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use rayon::prelude::*;
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::engine::{AnalyzeOptions, DetectOptions, Face, FaceEngine, LargestSearch};
use veriface_vision::geometry::Rect;

struct Analysed {
    file: String,
    golden: serde_json::Value,
    /// `None` where dlib has no CNN golden.
    reference: Option<Vec<Face>>,
    fast: Vec<Face>,
    /// The fast mode's largest-face search (screened, the default).
    largest: Option<Face>,
    /// The same with [`LargestSearch::Exact`].
    largest_exact: Option<Face>,
}

fn engine() -> &'static FaceEngine {
    static E: OnceLock<FaceEngine> = OnceLock::new();
    E.get_or_init(|| FaceEngine::load(&common::models_dir()).expect("models load"))
}

/// Every golden image, analysed once per test binary.
fn analysed() -> &'static [Analysed] {
    static A: OnceLock<Vec<Analysed>> = OnceLock::new();
    A.get_or_init(|| {
        let entries = common::golden_entries();
        assert!(
            entries.len() >= 65,
            "expected 65 golden images, found {}",
            entries.len()
        );
        entries
            .into_par_iter()
            .map(|g| {
                let img = common::load_rgb_no_exif(&g.image_path);
                let e = engine();
                let opts = |detect| AnalyzeOptions {
                    detect,
                    embed: true,
                    num_jitters: 1,
                };
                // dlib could not run its CNN on the two largest photos, so
                // there is no reference box to compare with there.
                let has_cnn = g.json["cnn"].get("raw").is_some();
                Analysed {
                    reference: has_cnn
                        .then(|| e.analyze(&img, &opts(DetectOptions::reference())).unwrap()),
                    fast: e.analyze(&img, &opts(DetectOptions::fast())).unwrap(),
                    largest: e
                        .analyze_largest(&img, &opts(DetectOptions::fast()))
                        .unwrap(),
                    largest_exact: e
                        .analyze_largest(
                            &img,
                            &opts(DetectOptions {
                                largest: LargestSearch::Exact,
                                ..DetectOptions::fast()
                            }),
                        )
                        .unwrap(),
                    file: g.file,
                    golden: g.json,
                }
            })
            .collect()
    })
}

fn rect(v: &serde_json::Value) -> Rect {
    let a: [i64; 4] = serde_json::from_value(v.clone()).unwrap();
    Rect::new(a[0], a[1], a[2], a[3])
}

fn golden_raw_rects(g: &serde_json::Value) -> Vec<Rect> {
    g["cnn"]["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| rect(&d["rect"]))
        .collect()
}

/// Best IoU of `r` against any of `others`.
fn best_iou(r: &Rect, others: &[Rect]) -> f64 {
    others.iter().map(|o| r.iou(o)).fold(0.0, f64::max)
}

#[test]
fn reference_detector_finds_dlibs_boxes() {
    let mut worst = (1.0f64, String::new());
    let mut faces = 0;
    for a in analysed() {
        let Some(reference) = &a.reference else {
            continue;
        };
        let expected = golden_raw_rects(&a.golden);
        assert_eq!(reference.len(), expected.len(), "{}: face count", a.file);
        for f in reference {
            let iou = best_iou(&f.face_box.raw_rect, &expected);
            faces += 1;
            if iou < worst.0 {
                worst = (iou, a.file.clone());
            }
            assert!(
                iou >= 0.95,
                "{}: {:?} IoU {iou} against {expected:?}",
                a.file,
                f.face_box.raw_rect
            );
        }
    }
    println!(
        "reference detector: {faces} faces, worst IoU {:.4} ({})",
        worst.0, worst.1
    );
}

/// Pairs each golden CNN face with our face of best IoU.
fn matched<'a>(a: &'a Analysed, ours: &'a [Face]) -> Vec<(&'a serde_json::Value, &'a Face)> {
    a.golden["faces_cnn"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| {
            let r = rect(&g["rect"]);
            ours.iter()
                .max_by(|x, y| x.face_box.rect.iou(&r).total_cmp(&y.face_box.rect.iou(&r)))
                .map(|f| (g, f))
        })
        .collect()
}

#[test]
fn reference_landmarks_and_embeddings_match_dlib() {
    let (mut worst_px, mut worst_emb, mut n) = (0i64, 0f64, 0);
    for a in analysed() {
        let Some(reference) = &a.reference else {
            continue;
        };
        for (g, f) in matched(a, reference) {
            let lm: Vec<[i64; 2]> = serde_json::from_value(g["landmarks_5"].clone()).unwrap();
            for (p, q) in f.landmarks.iter().zip(&lm) {
                let d = (p.x - q[0]).abs().max((p.y - q[1]).abs());
                worst_px = worst_px.max(d);
                assert!(d <= 1, "{}: landmark {p:?} vs {q:?}", a.file);
            }
            let enc: Vec<f64> = serde_json::from_value(g["encoding"].clone()).unwrap();
            let ours = f.embedding.expect("embedding");
            let d = ours
                .0
                .iter()
                .zip(&enc)
                .map(|(x, y)| (f64::from(*x) - y).abs())
                .fold(0.0, f64::max);
            worst_emb = worst_emb.max(d);
            assert!(d <= 1e-3, "{}: descriptor max abs diff {d}", a.file);
            n += 1;
        }
    }
    println!("reference pipeline: {n} faces, worst landmark diff {worst_px} px, worst descriptor diff {worst_emb:.3e}");
}

#[test]
fn fast_detector_boxes_overlap_dlibs() {
    let (mut worst, mut sum, mut n) = (1.0f64, 0.0, 0);
    for a in analysed().iter().filter(|a| a.reference.is_some()) {
        let expected = golden_raw_rects(&a.golden);
        let ours: Vec<Rect> = a.fast.iter().map(|f| f.face_box.raw_rect).collect();
        assert_eq!(
            ours.len(),
            expected.len(),
            "{}: fast face count {ours:?} vs {expected:?}",
            a.file
        );
        for e in &expected {
            let iou = best_iou(e, &ours);
            worst = worst.min(iou);
            sum += iou;
            n += 1;
            assert!(
                iou >= 0.9,
                "{}: dlib box {e:?} best fast IoU {iou} ({ours:?})",
                a.file
            );
        }
    }
    println!(
        "fast detector: {n} faces, mean IoU {:.4}, worst {:.4}",
        sum / n as f64,
        worst
    );
}

/// The largest face's descriptor per image file.
fn largest_by_file(pick: impl Fn(&Analysed) -> Option<Vec<f64>>) -> HashMap<String, Vec<f64>> {
    analysed()
        .iter()
        .filter_map(|a| pick(a).map(|e| (a.file.clone(), e)))
        .collect()
}

fn ours_largest(faces: &[Face]) -> Option<Vec<f64>> {
    pick_largest(faces, |f| (f.face_box.rect.area(), f.face_box.score))
        .and_then(|f| f.embedding)
        .map(|e| e.0.iter().map(|&v| f64::from(v)).collect())
}

fn dlib_largest(a: &Analysed) -> Option<Vec<f64>> {
    // The golden files hold no scores; their faces are in dlib's order, best
    // first, so keeping the first of equal areas is the higher score.
    pick_largest(a.golden["faces_cnn"].as_array()?, |g| {
        (rect(&g["rect"]).area(), 0.0)
    })
    .map(|g| serde_json::from_value(g["encoding"].clone()).unwrap())
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

fn check_pairs(label: &str, ours: &HashMap<String, Vec<f64>>) {
    let dlib = largest_by_file(dlib_largest);
    let pairs = std::fs::read_to_string(common::shared_dir().join("data/faces/pairs.csv")).unwrap();
    let (mut n, mut agree, mut correct, mut near, mut no_golden, mut max_dd) =
        (0, 0, 0, 0, 0, 0f64);
    for line in pairs.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (a, b, same) = (f[0], f[1], f[2] == "1");
        let d_ours = dist(&ours[a], &ours[b]);
        n += 1;
        correct += usize::from((d_ours <= 0.6) == same);
        // dlib's CNN could not run on the two 12-14 Mpx photos (about 3.7 GB
        // per megapixel, `dlib-models.md` 9.2): pairs with them have no dlib
        // decision to agree with, but still count for accuracy.
        let (Some(da), Some(db)) = (dlib.get(a), dlib.get(b)) else {
            no_golden += 1;
            continue;
        };
        let d_dlib = dist(da, db);
        max_dd = max_dd.max((d_dlib - d_ours).abs());
        if (d_dlib - 0.6).abs() <= 0.005 {
            near += 1;
            continue;
        }
        assert_eq!(
            d_ours <= 0.6,
            d_dlib <= 0.6,
            "{label}: {a} vs {b}: ours {d_ours:.4}, dlib {d_dlib:.4}"
        );
        agree += 1;
    }
    println!(
        "{label}: {n} pairs, {agree} decided as dlib ({near} within 0.005 of the threshold, \
         {no_golden} without a dlib CNN golden), accuracy vs labels {:.2}%, \
         max |distance - dlib's| {max_dd:.2e}",
        100.0 * correct as f64 / n as f64
    );
}

#[test]
fn reference_pair_decisions_equal_dlibs() {
    check_pairs(
        "reference",
        &largest_by_file(|a| ours_largest(a.reference.as_deref().unwrap_or(&a.fast))),
    );
}

#[test]
fn fast_pair_decisions_equal_dlibs() {
    check_pairs("fast", &largest_by_file(|a| ours_largest(&a.fast)));
}

/// The largest-face search (`FaceEngine::analyze_largest`, what `veriface
/// compare` runs) must return exactly the face a compare picks from the fast
/// detector's whole list: the same box, landmarks and descriptor, in both
/// its modes (the exact one proves it; the screened default is checked
/// here). Scores may differ in the last bits (the network runs on
/// differently sized crops).
#[test]
fn largest_face_search_equals_the_fast_detectors_pick() {
    let mut worst_score = 0f32;
    for a in analysed() {
        let pick = pick_largest(&a.fast, |f| (f.face_box.rect.area(), f.face_box.score));
        for (mode, found) in [("screened", &a.largest), ("exact", &a.largest_exact)] {
            match (pick, found) {
                (None, None) => {}
                (Some(p), Some(l)) => {
                    let what = format!("{} ({mode})", a.file);
                    assert_eq!(p.face_box.rect, l.face_box.rect, "{what}");
                    assert_eq!(p.face_box.raw_rect, l.face_box.raw_rect, "{what}");
                    assert_eq!(p.landmarks, l.landmarks, "{what}");
                    assert_eq!(p.embedding, l.embedding, "{what}");
                    let d = (p.face_box.score - l.face_box.score).abs();
                    assert!(d < 1e-5, "{what}: score {d}");
                    worst_score = worst_score.max(d);
                }
                (p, l) => panic!("{} ({mode}): fast {p:?}, largest-face search {l:?}", a.file),
            }
        }
    }
    println!(
        "largest-face search, screened and exact: {} images, same face as the fast \
         detector's pick on all, worst score difference {worst_score:.1e}",
        analysed().len()
    );
}

#[test]
fn largest_face_pair_decisions_equal_dlibs() {
    let ours = largest_by_file(|a| {
        a.largest
            .as_ref()
            .and_then(|f| f.embedding)
            .map(|e| e.0.iter().map(|&v| f64::from(v)).collect())
    });
    check_pairs("largest-face search", &ours);
}
