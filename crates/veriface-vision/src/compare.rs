//! Comparing two face descriptors.
//!
//! Descriptors are dlib's raw 128-D outputs (not normalised, lengths about
//! 1.3 to 1.6), compared by Euclidean distance exactly as face_recognition's
//! `face_distance` does, with its default tolerance of 0.6: pairs at or
//! under the threshold are the same person.
//!
//! ```
//! use veriface_vision::compare::{Comparison, DEFAULT_THRESHOLD};
//!
//! let a = [0.1_f32; 128];
//! let mut b = a;
//! b[0] += 0.3;
//! let c = Comparison::new(&a, &b, DEFAULT_THRESHOLD);
//! assert!(c.is_match);
//! assert!((c.distance - 0.3).abs() < 1e-6);
//! assert!((c.similarity - 0.75).abs() < 1e-6);
//! ```

use serde::Serialize;

/// face_recognition's default `tolerance`: dlib reports 99.38% accuracy on
/// LFW at this Euclidean distance.
pub const DEFAULT_THRESHOLD: f32 = 0.6;

/// Euclidean distance between two descriptors.
///
/// Differences and their squares are accumulated in `f64`, as numpy does on
/// the `float64` arrays face_recognition gets from dlib, so that distances
/// near the threshold decide the same way as the reference.
pub fn distance(a: &[f32; 128], b: &[f32; 128]) -> f32 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    sum.sqrt() as f32
}

/// A score in `[0, 1]` for people who prefer "higher is more alike" to a
/// distance: `similarity = clamp(1 - distance / (2 * threshold), 0, 1)`.
///
/// It is 1 for identical descriptors, exactly 0.5 at the threshold (so
/// `similarity >= 0.5` is the same decision as `distance <= threshold`) and
/// 0 from twice the threshold on (1.2 by default, beyond which nearly all
/// pairs of different people fall). It is linear in between, so it is
/// monotone (non-increasing) in distance and carries no claim of being a
/// calibrated probability; it is a rescaled distance.
///
/// A non-finite or non-positive `threshold`, or a NaN `distance`, gives 0:
/// such inputs cannot support a claim of similarity.
pub fn similarity(distance: f32, threshold: f32) -> f32 {
    if !(threshold.is_finite() && threshold > 0.0) || distance.is_nan() {
        return 0.0;
    }
    // Computed in f64 so that `distance == threshold` gives exactly 0.5.
    let s = 1.0 - f64::from(distance) / (2.0 * f64::from(threshold));
    s.clamp(0.0, 1.0) as f32
}

/// The outcome of comparing two descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Euclidean distance, see [`distance`].
    pub distance: f32,
    /// Rescaled score in `[0, 1]`, see [`similarity`].
    pub similarity: f32,
    /// The threshold the decision used.
    pub threshold: f32,
    /// `distance <= threshold`, the rule of face_recognition's
    /// `compare_faces`.
    pub is_match: bool,
}

impl Comparison {
    /// Compares two descriptors against `threshold`.
    pub fn new(a: &[f32; 128], b: &[f32; 128], threshold: f32) -> Self {
        Self::from_distance(distance(a, b), threshold)
    }

    /// Builds the outcome from an already computed distance.
    pub fn from_distance(distance: f32, threshold: f32) -> Self {
        Comparison {
            distance,
            similarity: similarity(distance, threshold),
            threshold,
            is_match: distance <= threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn descriptor() -> impl Strategy<Value = [f32; 128]> {
        proptest::array::uniform32(-0.5f32..0.5).prop_flat_map(|head| {
            proptest::array::uniform32(-0.5f32..0.5).prop_flat_map(move |a| {
                (
                    proptest::array::uniform32(-0.5f32..0.5),
                    proptest::array::uniform32(-0.5f32..0.5),
                )
                    .prop_map(move |(b, c)| {
                        let mut out = [0.0; 128];
                        out[..32].copy_from_slice(&head);
                        out[32..64].copy_from_slice(&a);
                        out[64..96].copy_from_slice(&b);
                        out[96..].copy_from_slice(&c);
                        out
                    })
            })
        })
    }

    #[test]
    fn distance_of_known_vectors() {
        let a = [0.0; 128];
        let mut b = [0.0; 128];
        b[0] = 3.0;
        b[127] = 4.0;
        assert_eq!(distance(&a, &b), 5.0);
    }

    #[test]
    fn similarity_is_one_half_at_threshold() {
        assert_eq!(similarity(0.6, 0.6), 0.5);
        assert_eq!(similarity(DEFAULT_THRESHOLD, DEFAULT_THRESHOLD), 0.5);
        assert_eq!(similarity(0.0, 0.6), 1.0);
        assert_eq!(similarity(1.2, 0.6), 0.0);
        assert_eq!(similarity(5.0, 0.6), 0.0);
    }

    #[test]
    fn threshold_is_inclusive_like_compare_faces() {
        assert!(Comparison::from_distance(0.6, 0.6).is_match);
        assert!(!Comparison::from_distance(0.600_001, 0.6).is_match);
    }

    #[test]
    fn degenerate_inputs_give_zero_similarity() {
        assert_eq!(similarity(f32::NAN, 0.6), 0.0);
        assert_eq!(similarity(0.1, 0.0), 0.0);
        assert_eq!(similarity(0.1, -1.0), 0.0);
        assert_eq!(similarity(0.1, f32::INFINITY), 0.0);
        assert!(!Comparison::from_distance(f32::NAN, 0.6).is_match);
    }

    proptest! {
        #[test]
        fn distance_is_symmetric(a in descriptor(), b in descriptor()) {
            prop_assert_eq!(distance(&a, &b), distance(&b, &a));
        }

        #[test]
        fn distance_to_self_is_zero(a in descriptor()) {
            prop_assert_eq!(distance(&a, &a), 0.0);
            prop_assert_eq!(Comparison::new(&a, &a, DEFAULT_THRESHOLD).similarity, 1.0);
        }

        #[test]
        fn distance_obeys_triangle_inequality(a in descriptor(), b in descriptor(), c in descriptor()) {
            prop_assert!(distance(&a, &c) <= distance(&a, &b) + distance(&b, &c) + 1e-5);
        }

        #[test]
        fn similarity_is_bounded_and_monotone(d1 in 0.0f32..4.0, d2 in 0.0f32..4.0, t in 0.01f32..2.0) {
            let (s1, s2) = (similarity(d1, t), similarity(d2, t));
            prop_assert!((0.0..=1.0).contains(&s1));
            if d1 <= d2 {
                prop_assert!(s1 >= s2);
            }
        }

        #[test]
        fn similarity_agrees_with_the_decision(d in 0.0f32..4.0, t in 0.01f32..2.0) {
            let c = Comparison::from_distance(d, t);
            prop_assert_eq!(c.is_match, c.similarity >= 0.5);
        }
    }
}
