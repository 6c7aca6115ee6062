//! Face use-cases on raw image bytes: decode within limits, find every
//! face, pick the largest, describe it, compare two images.
//!
//! These functions are synchronous and CPU-bound (the detector costs about
//! a second per megapixel): async callers run them on an
//! [`crate::pool::InferencePool`], never on the runtime's threads.
//!
//! Several faces in one image are not an error: the largest is the subject
//! (an ID photo's portrait, a selfie's face) and the others are reported so
//! that a caller can refuse them if its policy says so.

use std::time::{Duration, Instant};

use veriface_vision::compare::{Comparison, DEFAULT_THRESHOLD};
use veriface_vision::decode::{decode, DecodeLimits, ImageFormat};
use veriface_vision::detect::largest::larger_face;
use veriface_vision::engine::{DetectOptions, Embedding, FaceBox, FaceEngine};
use veriface_vision::geometry::Landmarks;

use crate::{Error, Result};

/// How images are decoded and faces are found; one per service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FacePolicy {
    /// Byte and pixel limits checked before any pixel is decoded.
    pub limits: DecodeLimits,
    /// Detector settings (the fast detector by default).
    pub detect: DetectOptions,
    /// face_recognition's `num_jitters` for descriptors (1: none).
    pub num_jitters: u32,
}

impl Default for FacePolicy {
    fn default() -> Self {
        Self {
            limits: DecodeLimits::default(),
            detect: DetectOptions::default(),
            num_jitters: 1,
        }
    }
}

/// Which faces get a 128-D descriptor. Each costs one ResNet pass (about
/// 20 ms), so endpoints that only compare describe the largest face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descriptors {
    /// Boxes and landmarks only.
    None,
    /// The largest face only.
    Largest,
    /// Every face.
    All,
}

/// One face found in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceDetail {
    /// Where it is and how confident the detector is.
    pub face_box: FaceBox,
    /// The five landmarks.
    pub landmarks: Landmarks,
    /// The descriptor, when asked for.
    pub embedding: Option<Embedding>,
}

/// Wall-clock time spent in each stage of one image's analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    /// Sniffing and decoding the bytes (EXIF orientation included).
    pub decode: Duration,
    /// The MMOD detector.
    pub detect: Duration,
    /// The 5-point shape predictor, every face.
    pub landmarks: Duration,
    /// Chips and ResNet descriptors.
    pub embed: Duration,
}

impl StageTimings {
    /// The sum of the stages.
    pub fn total(&self) -> Duration {
        self.decode + self.detect + self.landmarks + self.embed
    }
}

/// Everything learnt about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageAnalysis {
    /// Upright width in pixels (after EXIF orientation).
    pub width: u32,
    /// Upright height in pixels.
    pub height: u32,
    /// The format sniffed from the magic bytes.
    pub format: ImageFormat,
    /// Every face, largest first (ties: higher score first).
    pub faces: Vec<FaceDetail>,
    /// Where the time went.
    pub timings: StageTimings,
}

impl ImageAnalysis {
    /// The subject: the largest face, if any.
    pub fn largest(&self) -> Option<&FaceDetail> {
        self.faces.first()
    }

    /// The faces other than the largest.
    pub fn others(&self) -> &[FaceDetail] {
        self.faces.get(1..).unwrap_or_default()
    }

    /// The largest face, or [`Error::NoFace`] naming the image.
    ///
    /// # Errors
    /// [`Error::NoFace`] when no face was found.
    pub fn require_face(&self, label: &str) -> Result<&FaceDetail> {
        self.largest().ok_or_else(|| Error::NoFace {
            label: label.to_string(),
        })
    }
}

/// A match threshold on the Euclidean descriptor distance.
///
/// Parsed once from client input: finite, above 0 and at most 2 (twice the
/// largest distance two unit-scale descriptors reach in practice; dlib's
/// descriptors have lengths 1.3-1.6, so no meaningful threshold is larger).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Threshold(f32);

impl Threshold {
    /// The largest accepted threshold.
    pub const MAX: f32 = 2.0;

    /// Validates a client-supplied threshold.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] with code `invalid_threshold` when it is not
    /// finite, not positive or above [`Threshold::MAX`].
    pub fn parse(value: f32) -> Result<Self> {
        if value.is_finite() && value > 0.0 && value <= Self::MAX {
            Ok(Self(value))
        } else {
            Err(Error::InvalidInput {
                code: "invalid_threshold",
                message: format!(
                    "threshold must be a number above 0 and at most {}, got {value}",
                    Self::MAX
                ),
            })
        }
    }

    /// The value.
    pub fn value(self) -> f32 {
        self.0
    }
}

impl Default for Threshold {
    /// face_recognition's tolerance, 0.6.
    fn default() -> Self {
        Self(DEFAULT_THRESHOLD)
    }
}

/// The result of comparing the largest faces of two images.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceComparison {
    /// Distance, similarity, threshold and decision.
    pub outcome: Comparison,
    /// The first image (its largest face was compared).
    pub a: ImageAnalysis,
    /// The second image.
    pub b: ImageAnalysis,
    /// The distance computation itself.
    pub compare: Duration,
    /// Wall-clock time of the whole comparison (the two analyses run in
    /// parallel, so this is less than the sum of their stages).
    pub total: Duration,
}

/// Decodes `bytes` within the policy's limits and finds every face.
///
/// `label` names the input in errors (`"passport"`, `"live_image"`), so a
/// client with two uploads knows which one to fix.
///
/// # Errors
/// [`Error::Image`] when the bytes are refused or undecodable (empty, too
/// large, unsupported format, over the pixel limits, corrupt);
/// [`Error::Engine`] on an engine fault.
pub fn analyze_image(
    engine: &FaceEngine,
    label: &str,
    bytes: &[u8],
    policy: &FacePolicy,
    descriptors: Descriptors,
) -> Result<ImageAnalysis> {
    let t0 = Instant::now();
    let decoded = decode(bytes, &policy.limits).map_err(|source| Error::Image {
        label: label.to_string(),
        source,
    })?;
    let img = decoded.image;
    let mut timings = StageTimings {
        decode: t0.elapsed(),
        ..StageTimings::default()
    };

    let t = Instant::now();
    let mut boxes = engine.detect(&img, &policy.detect);
    timings.detect = t.elapsed();
    largest_first(&mut boxes);

    let t = Instant::now();
    let landmarks: Vec<Landmarks> = boxes
        .iter()
        .map(|b| engine.landmarks(&img, b.rect))
        .collect();
    timings.landmarks = t.elapsed();

    let t = Instant::now();
    let mut faces = Vec::with_capacity(boxes.len());
    for (i, (face_box, landmarks)) in boxes.into_iter().zip(landmarks).enumerate() {
        let wanted = match descriptors {
            Descriptors::None => false,
            Descriptors::Largest => i == 0,
            Descriptors::All => true,
        };
        let embedding = if wanted {
            Some(
                engine
                    .descriptor(&img, &landmarks, policy.num_jitters)
                    .map_err(|e| Error::from_engine(label, e))?,
            )
        } else {
            None
        };
        faces.push(FaceDetail {
            face_box,
            landmarks,
            embedding,
        });
    }
    timings.embed = t.elapsed();
    record_stages(&timings, descriptors != Descriptors::None);

    Ok(ImageAnalysis {
        width: img.width(),
        height: img.height(),
        format: decoded.format,
        faces,
        timings,
    })
}

/// Compares the largest face of each image: both are analysed in parallel
/// (rayon), then their descriptors' Euclidean distance is held against
/// `threshold`.
///
/// # Errors
/// As [`analyze_image`] for either image (the first image's error wins
/// when both fail), and [`Error::NoFace`] naming the image without a face.
pub fn compare_images(
    engine: &FaceEngine,
    a: (&str, &[u8]),
    b: (&str, &[u8]),
    policy: &FacePolicy,
    threshold: Threshold,
) -> Result<FaceComparison> {
    let t0 = Instant::now();
    let (ra, rb) = rayon::join(
        || analyze_image(engine, a.0, a.1, policy, Descriptors::Largest),
        || analyze_image(engine, b.0, b.1, policy, Descriptors::Largest),
    );
    let (ra, rb) = (ra?, rb?);
    let t = Instant::now();
    let outcome = {
        let ea = descriptor_of(&ra, a.0)?;
        let eb = descriptor_of(&rb, b.0)?;
        Comparison::from_distance(ea.distance(eb), threshold.value())
    };
    let compare = t.elapsed();
    metrics::histogram!("veriface_stage_duration_seconds", "stage" => "compare")
        .record(compare.as_secs_f64());
    Ok(FaceComparison {
        outcome,
        a: ra,
        b: rb,
        compare,
        total: t0.elapsed(),
    })
}

/// Sorts faces largest first, by `pick_largest`'s rule (the CLI's and
/// enrolment's), so the first face is the one they pick. The detector's
/// order is by score, which would make a sharp background face outrank a
/// slightly blurred subject.
fn largest_first(boxes: &mut [FaceBox]) {
    let key = |b: &FaceBox| (b.rect.area(), b.score);
    boxes.sort_by(|x, y| larger_face(key(y), key(x)));
}

fn descriptor_of<'a>(analysis: &'a ImageAnalysis, label: &str) -> Result<&'a Embedding> {
    analysis
        .require_face(label)?
        .embedding
        .as_ref()
        // analyze_image(Descriptors::Largest) always describes the largest
        // face; a miss here is a bug, not the caller's fault.
        .ok_or_else(|| Error::Internal("largest face has no descriptor".into()))
}

fn record_stages(t: &StageTimings, embedded: bool) {
    let rec = |stage: &'static str, d: Duration| {
        metrics::histogram!("veriface_stage_duration_seconds", "stage" => stage)
            .record(d.as_secs_f64());
    };
    rec("decode", t.decode);
    rec("detect", t.detect);
    rec("landmarks", t.landmarks);
    if embedded {
        rec("embed", t.embed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use veriface_vision::detect::largest::pick_largest;

    proptest! {
        /// The face a compare takes (the first after sorting) is the one the
        /// CLI and enrolment take, ties on area included.
        #[test]
        fn the_first_face_is_the_one_pick_largest_picks(
            faces in proptest::collection::vec((0i64..4, 0u8..4), 1..8)
        ) {
            // Few distinct sides and scores, so ties are frequent.
            let mut boxes: Vec<FaceBox> = faces
                .iter()
                .enumerate()
                .map(|(i, &(side, score))| {
                    let (l, s) = (i as i64 * 100, 10 + side * 10);
                    let rect = veriface_vision::geometry::Rect::new(l, 0, l + s - 1, s - 1);
                    FaceBox { rect, raw_rect: rect, score: f32::from(score) }
                })
                .collect();
            let picked = pick_largest(boxes.clone(), |b| (b.rect.area(), b.score));
            largest_first(&mut boxes);
            let picked = picked.expect("non-empty");
            // Full ties keep the detector's order in both, so the very box.
            prop_assert_eq!(boxes[0].rect, picked.rect);
            prop_assert_eq!(boxes[0].score, picked.score);
        }
    }

    #[test]
    fn default_threshold_is_face_recognitions_tolerance() {
        assert_eq!(Threshold::default().value(), 0.6);
    }

    #[test]
    fn thresholds_outside_the_useful_range_are_refused() {
        for bad in [0.0, -0.1, f32::NAN, f32::INFINITY, 2.5] {
            let e = Threshold::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_threshold", "{bad}");
        }
        assert_eq!(Threshold::parse(2.0).unwrap().value(), 2.0);
    }

    proptest! {
        #[test]
        fn any_threshold_in_range_parses_to_itself(v in 0.0001f32..=2.0) {
            prop_assert_eq!(Threshold::parse(v).unwrap().value(), v);
        }
    }
}
