//! Response bodies shared by several endpoints, and their conversions from
//! the domain types.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;
use veriface_core::face::{FaceComparison, FaceDetail, ImageAnalysis, StageTimings};

/// Milliseconds with microsecond resolution.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Seconds with microsecond resolution (seed 004's timing fields).
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

/// The f64 whose shortest decimal form is the f32's (so 0.6 is sent as
/// 0.6, not 0.6000000238418579).
pub fn f32_json(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// Raw image bytes in a response (its schema: a binary string).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBytes(pub Vec<u8>);

/// A face box in pixels of the upright image, inclusive, clipped to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BoxDto {
    /// Left edge.
    pub left: i64,
    /// Top edge.
    pub top: i64,
    /// Right edge.
    pub right: i64,
    /// Bottom edge.
    pub bottom: i64,
}

/// One detected face.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FaceDto {
    /// Where it is.
    #[serde(rename = "box")]
    pub bbox: BoxDto,
    /// Detector confidence (above 0).
    pub score: f64,
    /// The 5 landmarks `[x, y]`: two corners of each eye, then the base of
    /// the nose.
    pub landmarks: Vec<[i64; 2]>,
}

impl From<&FaceDetail> for FaceDto {
    fn from(f: &FaceDetail) -> Self {
        let r = f.face_box.rect;
        Self {
            bbox: BoxDto {
                left: r.left,
                top: r.top,
                right: r.right,
                bottom: r.bottom,
            },
            score: f32_json(f.face_box.score),
            landmarks: f.landmarks.iter().map(|p| [p.x, p.y]).collect(),
        }
    }
}

/// One input image of a comparison: its size and faces.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageFacesDto {
    /// Upright width in pixels.
    pub width: u32,
    /// Upright height in pixels.
    pub height: u32,
    /// Format sniffed from the bytes (`jpeg`, `png`, `webp`, `gif`, `bmp`).
    pub format: String,
    /// How many faces were found.
    pub faces_found: usize,
    /// The largest face: the one compared.
    pub face: Option<FaceDto>,
    /// The other faces (not compared), largest first.
    pub other_faces: Vec<FaceDto>,
}

impl From<&ImageAnalysis> for ImageFacesDto {
    fn from(a: &ImageAnalysis) -> Self {
        Self {
            width: a.width,
            height: a.height,
            format: a.format.as_str().to_string(),
            faces_found: a.faces.len(),
            face: a.largest().map(FaceDto::from),
            other_faces: a.others().iter().map(FaceDto::from).collect(),
        }
    }
}

/// Per-stage wall-clock milliseconds for one image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageTimingsDto {
    /// Format sniffing and decoding.
    pub decode: f64,
    /// Face detection.
    pub detect: f64,
    /// Landmarks of every face.
    pub landmarks: f64,
    /// Face chips and descriptors.
    pub embed: f64,
}

impl From<&StageTimings> for StageTimingsDto {
    fn from(t: &StageTimings) -> Self {
        Self {
            decode: ms(t.decode),
            detect: ms(t.detect),
            landmarks: ms(t.landmarks),
            embed: ms(t.embed),
        }
    }
}

/// Where a comparison's time went, in milliseconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompareTimingsDto {
    /// Waiting for an inference worker.
    pub queue: f64,
    /// Base64 decoding of JSON inputs (0 for file uploads).
    pub base64: f64,
    /// Per image, by field name (the two run in parallel).
    pub images: BTreeMap<String, StageTimingsDto>,
    /// The descriptor distance.
    pub compare: f64,
    /// The whole request as the handler saw it.
    pub total: f64,
}

/// What every comparison endpoint returns beside its own fields.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComparisonDto {
    /// Whether the largest faces are the same person (`distance <=
    /// threshold`).
    #[serde(rename = "match")]
    pub is_match: bool,
    /// Euclidean distance between the two 128-D descriptors.
    pub distance: f64,
    /// `clamp(1 - distance / (2 * threshold), 0, 1)`: 0.5 at the threshold.
    pub similarity: f64,
    /// The threshold the decision used.
    pub threshold: f64,
    /// The two images, by field name.
    pub images: BTreeMap<String, ImageFacesDto>,
    /// Per-stage timings.
    pub timings_ms: CompareTimingsDto,
}

impl ComparisonDto {
    /// Builds the shared fields from a comparison of images labelled
    /// `labels`.
    pub fn new(
        c: &FaceComparison,
        labels: (&str, &str),
        queued: Duration,
        base64: Duration,
        total: Duration,
    ) -> Self {
        let mut images = BTreeMap::new();
        images.insert(labels.0.to_string(), ImageFacesDto::from(&c.a));
        images.insert(labels.1.to_string(), ImageFacesDto::from(&c.b));
        let mut stage = BTreeMap::new();
        stage.insert(labels.0.to_string(), StageTimingsDto::from(&c.a.timings));
        stage.insert(labels.1.to_string(), StageTimingsDto::from(&c.b.timings));
        Self {
            is_match: c.outcome.is_match,
            distance: f64::from(c.outcome.distance),
            similarity: f64::from(c.outcome.similarity),
            threshold: f32_json(c.outcome.threshold),
            images,
            timings_ms: CompareTimingsDto {
                queue: ms(queued),
                base64: ms(base64),
                images: stage,
                compare: ms(c.compare),
                total: ms(total),
            },
        }
    }
}

/// A single image's analysis (`/v1/detect`, uploads).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DetectionDto {
    /// Upright width in pixels.
    pub width: u32,
    /// Upright height in pixels.
    pub height: u32,
    /// Format sniffed from the bytes.
    pub format: String,
    /// How many faces were found.
    pub faces_found: usize,
    /// Every face, largest first.
    pub faces: Vec<FaceDto>,
    /// Per-stage milliseconds (`queue` is the wait for a worker).
    pub timings_ms: DetectTimingsDto,
}

/// Timings of one image's analysis.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DetectTimingsDto {
    /// Waiting for an inference worker.
    pub queue: f64,
    /// The stages.
    #[serde(flatten)]
    pub stages: StageTimingsDto,
}

impl DetectionDto {
    /// From an analysis and its queue wait.
    pub fn new(a: &ImageAnalysis, queued: Duration) -> Self {
        Self {
            width: a.width,
            height: a.height,
            format: a.format.as_str().to_string(),
            faces_found: a.faces.len(),
            faces: a.faces.iter().map(FaceDto::from).collect(),
            timings_ms: DetectTimingsDto {
                queue: ms(queued),
                stages: StageTimingsDto::from(&a.timings),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_their_shortest_form() {
        assert_eq!(f32_json(0.6).to_string(), "0.6");
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
        assert_eq!(secs(Duration::from_micros(1500)), 0.0015);
    }
}
