//! dlib's 5-point shape predictor, an ensemble of regression trees (Kazemi
//! and Sullivan, CVPR 2014), read from `shape_predictor_5_face_landmarks.dat`
//! (spec: `dlib-models.md` section 5).
//!
//! The file stores about 1.6 million per-value-encoded numbers; they are read
//! straight into flat per-stage arrays (splits, thresholds, leaf values), so
//! that prediction walks contiguous memory and loading allocates a handful of
//! vectors.

use image::RgbImage;

use crate::dlib::serialize::{FormatError, Reader};
use crate::geometry::{round_point, IPoint, Landmarks, Point, Rect};
use crate::transform::similarity;

/// Number of landmarks of the model this engine supports.
const PARTS: usize = 5;
/// Floats per shape: x and y of each landmark.
const DIMS: usize = 2 * PARTS;

/// One cascade stage: its trees (all of the same size) and feature pixels.
#[derive(Debug, Clone)]
struct Stage {
    /// Splits per tree; every tree has `splits + 1` leaves.
    splits: usize,
    /// Per tree, per split: the two feature-pixel indices.
    idx: Vec<[u32; 2]>,
    /// Per tree, per split: the threshold.
    thresh: Vec<f32>,
    /// Per tree, per leaf: the `DIMS` shape increments.
    leaves: Vec<f32>,
    /// Per feature pixel: the landmark it is anchored to.
    anchor: Vec<u32>,
    /// Per feature pixel: the offset from its landmark, normalised.
    deltas: Vec<[f32; 2]>,
}

impl Stage {
    fn trees(&self) -> usize {
        self.thresh.len().checked_div(self.splits).unwrap_or(0)
    }
}

/// dlib's 5-point landmark regressor.
#[derive(Debug, Clone)]
pub struct ShapePredictor {
    initial: [f32; DIMS],
    stages: Vec<Stage>,
}

impl ShapePredictor {
    /// Parses `shape_predictor_5_face_landmarks.dat`.
    ///
    /// # Errors
    ///
    /// A [`FormatError`] with the byte offset when the data is truncated, has
    /// trailing bytes, or describes something other than a 5-point model
    /// of complete, equally sized trees with in-range indices.
    pub fn from_bytes(bytes: &[u8]) -> Result<ShapePredictor, FormatError> {
        let mut r = Reader::new(bytes);
        r.expect_version(1, "shape_predictor")?;
        let (nr, nc, init) = r.matrix_f32()?;
        if nr * nc != DIMS {
            return Err(r.error(format!(
                "initial shape has {} values, expected {DIMS} (a 5-point model)",
                nr * nc
            )));
        }
        let mut initial = [0f32; DIMS];
        initial.copy_from_slice(&init);

        let n_stages = r.usize()?;
        let mut stages = Vec::with_capacity(n_stages.min(1024));
        for _ in 0..n_stages {
            stages.push(read_forest(&mut r)?);
        }
        let at = r.offset();
        if r.usize()? != n_stages {
            return Err(FormatError {
                offset: at,
                reason: "anchor_idx count differs from the number of stages".into(),
            });
        }
        for stage in &mut stages {
            let at = r.offset();
            let n = r.usize()?;
            let mut anchor = Vec::with_capacity(n.min(r.remaining()));
            for _ in 0..n {
                let a = r.usize()?;
                if a >= PARTS {
                    return Err(r.error(format!("anchor index {a} out of range")));
                }
                anchor.push(a as u32);
            }
            if stage.idx.iter().flatten().any(|&i| i as usize >= n) {
                return Err(FormatError {
                    offset: at,
                    reason: "a split refers to a feature pixel the stage does not have".into(),
                });
            }
            stage.anchor = anchor;
        }
        let at = r.offset();
        if r.usize()? != n_stages {
            return Err(FormatError {
                offset: at,
                reason: "deltas count differs from the number of stages".into(),
            });
        }
        for stage in &mut stages {
            let at = r.offset();
            let n = r.usize()?;
            if n != stage.anchor.len() {
                return Err(FormatError {
                    offset: at,
                    reason: "deltas and anchor_idx differ in length".into(),
                });
            }
            let mut deltas = Vec::with_capacity(n);
            for _ in 0..n {
                deltas.push([r.f32()?, r.f32()?]);
            }
            stage.deltas = deltas;
        }
        r.finish()?;
        Ok(ShapePredictor { initial, stages })
    }

    /// Number of cascade stages.
    pub fn num_stages(&self) -> usize {
        self.stages.len()
    }

    /// Number of regression trees over all stages.
    pub fn num_trees(&self) -> usize {
        self.stages.iter().map(Stage::trees).sum()
    }

    /// Predicts the five landmarks of the face in `rect` (a detector box,
    /// inclusive corners), exactly as dlib's `shape_predictor::operator()`.
    ///
    /// Pixels are read as grey levels `(R + G + B) / 3`; feature pixels
    /// outside the image read as 0, so boxes crossing the border are fine.
    pub fn predict(&self, img: &RgbImage, rect: Rect) -> Landmarks {
        let mut shape = self.initial;
        let from: [Point; PARTS] = points(&self.initial);
        let mut features = Vec::new();
        let mut leaves = Vec::new();
        for stage in &self.stages {
            let a = similarity(&from, &points(&shape)).m;
            let a = a.map(|row| row.map(|v| v as f32));
            features.clear();
            features.extend(stage.anchor.iter().zip(&stage.deltas).map(|(&k, d)| {
                let k = k as usize;
                let u = a[0][0] * d[0] + a[0][1] * d[1] + shape[2 * k];
                let v = a[1][0] * d[0] + a[1][1] * d[1] + shape[2 * k + 1];
                grey_at(img, to_image(rect, f64::from(u), f64::from(v)))
            }));
            // The walks depend on the features only, so all leaves are found
            // first and then added in tree order (same f32 sums as dlib):
            // the independent leaf loads overlap instead of each waiting on
            // a cache miss.
            let n = stage.splits;
            leaves.clear();
            leaves.extend(
                stage
                    .idx
                    .chunks_exact(n)
                    .zip(stage.thresh.chunks_exact(n))
                    .enumerate()
                    .map(|(t, (idx, thresh))| {
                        let mut i = 0;
                        while i < n {
                            let [i1, i2] = idx[i];
                            i = if features[i1 as usize] - features[i2 as usize] > thresh[i] {
                                2 * i + 1
                            } else {
                                2 * i + 2
                            };
                        }
                        (t * (n + 1) + i - n) * DIMS
                    }),
            );
            for &leaf in &leaves {
                for (s, &d) in shape.iter_mut().zip(&stage.leaves[leaf..leaf + DIMS]) {
                    *s += d;
                }
            }
        }
        std::array::from_fn(|k| {
            to_image(rect, f64::from(shape[2 * k]), f64::from(shape[2 * k + 1]))
        })
    }
}

/// The shape's landmarks as f64 points.
fn points(shape: &[f32; DIMS]) -> [Point; PARTS] {
    std::array::from_fn(|k| Point::new(f64::from(shape[2 * k]), f64::from(shape[2 * k + 1])))
}

/// Maps normalised box coordinates to the nearest image pixel. dlib uses
/// `right - left`, not the width, and rounds with `floor(v + 0.5)`.
fn to_image(rect: Rect, u: f64, v: f64) -> IPoint {
    let x = rect.left as f64 + u * (rect.right - rect.left) as f64;
    let y = rect.top as f64 + v * (rect.bottom - rect.top) as f64;
    IPoint::new(round_point_fast(x), round_point_fast(y))
}

/// [`round_point`] (`floor(v + 0.5)`) without the libm call that `floor`
/// compiles to on baseline x86-64; it runs 24 000 times per face.
fn round_point_fast(v: f64) -> i64 {
    let w = v + 0.5;
    if w.abs() < 4.0e15 {
        let t = w as i64;
        if (t as f64) > w {
            t - 1
        } else {
            t
        }
    } else {
        round_point(v)
    }
}

/// dlib's `get_pixel_intensity` of an RGB pixel, 0 outside the image.
fn grey_at(img: &RgbImage, p: IPoint) -> f32 {
    if p.x < 0 || p.y < 0 || p.x >= i64::from(img.width()) || p.y >= i64::from(img.height()) {
        return 0.0;
    }
    let [r, g, b] = img.get_pixel(p.x as u32, p.y as u32).0;
    f32::from(((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as u8)
}

/// Reads one stage: `vector<regression_tree>`.
fn read_forest(r: &mut Reader<'_>) -> Result<Stage, FormatError> {
    let n_trees = r.usize()?;
    let cap = n_trees.min(r.remaining());
    let mut stage = Stage {
        splits: 0,
        idx: Vec::new(),
        thresh: Vec::new(),
        leaves: Vec::new(),
        anchor: Vec::new(),
        deltas: Vec::new(),
    };
    for t in 0..n_trees {
        let at = r.offset();
        let n_splits = r.usize()?;
        if t == 0 {
            // Each split takes at least 6 bytes: reject sizes the data
            // cannot hold before reserving for them.
            if n_splits == 0 || n_splits > r.remaining() / 6 {
                return Err(FormatError {
                    offset: at,
                    reason: format!("implausible split count {n_splits}").into(),
                });
            }
            stage.splits = n_splits;
            let budget = r.remaining();
            stage.idx.reserve(cap.saturating_mul(n_splits).min(budget));
            stage
                .thresh
                .reserve(cap.saturating_mul(n_splits).min(budget));
            stage
                .leaves
                .reserve(cap.saturating_mul((n_splits + 1) * DIMS).min(budget));
        } else if n_splits != stage.splits {
            return Err(FormatError {
                offset: at,
                reason: format!(
                    "tree {t} has {n_splits} splits, the stage's first tree {}",
                    stage.splits
                )
                .into(),
            });
        }
        for _ in 0..n_splits {
            let at = r.offset();
            let i1 = u32::try_from(r.u64()?);
            let i2 = u32::try_from(r.u64()?);
            let (Ok(i1), Ok(i2)) = (i1, i2) else {
                return Err(FormatError {
                    offset: at,
                    reason: "split index out of range".into(),
                });
            };
            stage.idx.push([i1, i2]);
            stage.thresh.push(r.f32()?);
        }
        let at = r.offset();
        if r.usize()? != n_splits + 1 {
            return Err(FormatError {
                offset: at,
                reason: "tree is not complete: leaves != splits + 1".into(),
            });
        }
        for _ in 0..=n_splits {
            let at = r.offset();
            let nr = r.i64()?.unsigned_abs();
            let nc = r.i64()?.unsigned_abs();
            if nr.checked_mul(nc) != Some(DIMS as u64) {
                return Err(FormatError {
                    offset: at,
                    reason: format!("leaf is {nr}x{nc}, expected {DIMS} values").into(),
                });
            }
            for _ in 0..DIMS {
                stage.leaves.push(r.f32()?);
            }
        }
    }
    Ok(stage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_truncated_data_with_an_offset() {
        let err = ShapePredictor::from_bytes(&[0x01, 0x01, 0x81]).unwrap_err();
        assert!(err.offset >= 2, "{err}");
        assert!(ShapePredictor::from_bytes(&[]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = ShapePredictor::from_bytes(&bytes);
        }

        #[test]
        fn never_panics_on_a_corrupted_prefix(prefix in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            // A valid version and initial shape, then garbage.
            let mut bytes = vec![0x01, 0x01, 0x81, 0x0a, 0x81, 0x01];
            for _ in 0..DIMS {
                bytes.extend_from_slice(&[0x01, 0x80, 0x81, 0x07]);
            }
            bytes.extend_from_slice(&prefix);
            let _ = ShapePredictor::from_bytes(&bytes);
        }
    }

    #[test]
    fn rejects_other_versions() {
        let err = ShapePredictor::from_bytes(&[0x01, 0x02]).unwrap_err();
        assert_eq!(err.offset, 0);
    }

    #[test]
    fn to_image_uses_right_minus_left() {
        let r = Rect::new(10, 20, 110, 220);
        assert_eq!(to_image(r, 1.0, 1.0), IPoint::new(110, 220));
        assert_eq!(to_image(r, 0.005, 0.0025), IPoint::new(11, 21));
    }

    #[test]
    fn fast_rounding_matches_floor_of_v_plus_half() {
        for v in [
            -2.5, -2.4999, -0.5, -0.49, -0.0, 0.0, 0.49, 0.5, 2.5, 1e17, -1e17, 123.75,
        ] {
            assert_eq!(round_point_fast(v), round_point(v), "{v}");
        }
    }
}
