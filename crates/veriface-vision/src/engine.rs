//! The face engine: loaded models plus the pipeline that strings them
//! together (detect, landmarks, chip, descriptor).

use std::path::Path;

use image::RgbImage;
use serde::Serialize;

use crate::align::{chip_details, extract_chip};
use crate::detect::fast::detect_fast;
pub use crate::detect::largest::LargestSearch;
use crate::detect::largest::{detect_largest, largest_of};
use crate::detect::pipeline::detect_reference;
use crate::error::{Error, Result};
use crate::geometry::{Landmarks, Rect};
use crate::jitter::{jitter_chip, Rng};
use crate::models::mmod_net::MmodNet;
use crate::models::resnet::ResNet;
use crate::models::shape_predictor::ShapePredictor;
use crate::models_dir::{read_verified, DETECTOR_FILE, RESNET_FILE, SHAPE_FILE};

/// How the detector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorMode {
    /// dlib's exact procedure (`cnn_face_detection_model_v1(img, upsample)`):
    /// the boxes equal dlib's. Costs about 3x the upsampled image's pixels
    /// in network work.
    Reference,
    /// The service default: the same network on a downscaled pyramid that
    /// only covers faces of at least `min_face_size` pixels, with the boxes
    /// mapped back to the full image. Much cheaper on large photos; see
    /// `docs/engine.md` for its agreement with the reference.
    Fast,
}

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DetectOptions {
    /// Reference or fast.
    pub mode: DetectorMode,
    /// Reference mode: how many times the image is doubled first (dlib's
    /// `number_of_times_to_upsample`, face_recognition's default 1). Each
    /// doubling halves the smallest findable face (about 40 px at 1).
    pub upsample: u32,
    /// Fast mode: the smallest face side, in pixels of the input image, that
    /// must be found. Smaller values cost more.
    pub min_face_size: u32,
    /// Detections must score above this (dlib's `adjust_threshold`, 0).
    pub threshold: f32,
    /// Fast mode: how [`FaceEngine::detect_largest`] (a compare) finds the
    /// largest face; screened by default, exact on request.
    pub largest: LargestSearch,
}

impl DetectOptions {
    /// dlib's settings, as face_recognition's `model="cnn"` uses them.
    pub const fn reference() -> Self {
        Self {
            mode: DetectorMode::Reference,
            upsample: 1,
            min_face_size: 40,
            threshold: 0.0,
            largest: LargestSearch::Exact,
        }
    }

    /// The fast default.
    pub const fn fast() -> Self {
        Self {
            mode: DetectorMode::Fast,
            upsample: 1,
            min_face_size: crate::detect::fast::DEFAULT_MIN_FACE_SIZE,
            threshold: 0.0,
            largest: LargestSearch::Screened,
        }
    }
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self::fast()
    }
}

/// A detected face box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    /// The box clipped to the image the way face_recognition clips it
    /// (to `[0, W] x [0, H]`); this is the box the landmark model sees.
    pub rect: Rect,
    /// The detector's unclipped box.
    pub raw_rect: Rect,
    /// Detection confidence (the raw network score, > 0).
    pub score: f32,
}

/// A 128-D face descriptor exactly as the network outputs it (not
/// normalised; lengths are about 1.3 to 1.6, so the 0.6 Euclidean threshold
/// of face_recognition applies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Embedding(pub [f32; 128]);

impl Embedding {
    /// Euclidean distance to another descriptor.
    pub fn distance(&self, other: &Embedding) -> f32 {
        crate::compare::distance(&self.0, &other.0)
    }
}

/// Everything the engine knows about one face.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// Where it is.
    pub face_box: FaceBox,
    /// The five landmarks (integer pixels).
    pub landmarks: Landmarks,
    /// The descriptor, when asked for.
    pub embedding: Option<Embedding>,
}

/// Settings for [`FaceEngine::analyze`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyzeOptions {
    /// Detector settings.
    pub detect: DetectOptions,
    /// Compute descriptors (else only boxes and landmarks).
    pub embed: bool,
    /// face_recognition's `num_jitters`: 1 (or 0) means no jitter; N > 1
    /// averages the descriptors of N jittered chips (N times slower).
    pub num_jitters: u32,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            detect: DetectOptions::default(),
            embed: true,
            num_jitters: 1,
        }
    }
}

/// The loaded models. Immutable, so one engine serves any number of threads
/// (share it in an `Arc`). Work inside a call runs on the current rayon
/// pool: call from a 1-thread pool for strictly single-threaded inference.
#[derive(Debug)]
pub struct FaceEngine {
    detector: MmodNet,
    shape: ShapePredictor,
    resnet: ResNet,
}

impl FaceEngine {
    /// Loads and verifies the three model files in `dir`.
    ///
    /// # Errors
    /// A missing or corrupt file ([`Error::ModelMissing`],
    /// [`Error::ModelChecksum`]) names the command that installs the models.
    pub fn load(dir: &Path) -> Result<Self> {
        let det = read_verified(dir, DETECTOR_FILE)?;
        let shape = read_verified(dir, SHAPE_FILE)?;
        let resnet = read_verified(dir, RESNET_FILE)?;
        Self::from_bytes(&det, &shape, &resnet)
    }

    /// Loads from `$VERIFACE_MODELS_DIR`, else `./models`.
    ///
    /// # Errors
    /// As [`FaceEngine::load`].
    pub fn from_env() -> Result<Self> {
        Self::load(&crate::models_dir::default_models_dir())
    }

    /// Parses the three models from bytes (no hash check).
    ///
    /// # Errors
    /// [`Error::ModelFormat`] when a file does not parse.
    pub fn from_bytes(detector: &[u8], shape: &[u8], resnet: &[u8]) -> Result<Self> {
        let fmt = |model| move |source| Error::ModelFormat { model, source };
        Ok(Self {
            detector: MmodNet::from_bytes(detector).map_err(fmt(DETECTOR_FILE))?,
            shape: ShapePredictor::from_bytes(shape).map_err(fmt(SHAPE_FILE))?,
            resnet: ResNet::from_bytes(resnet).map_err(fmt(RESNET_FILE))?,
        })
    }

    /// Finds faces, best score first.
    pub fn detect(&self, img: &RgbImage, opts: &DetectOptions) -> Vec<FaceBox> {
        let raw = match opts.mode {
            DetectorMode::Reference => {
                detect_reference(&self.detector, img, opts.upsample, opts.threshold)
            }
            DetectorMode::Fast => {
                detect_fast(&self.detector, img, opts.min_face_size, opts.threshold)
            }
        };
        raw.into_iter()
            .map(|d| FaceBox {
                rect: d.rect.clip_like_face_recognition(img.width(), img.height()),
                raw_rect: d.rect,
                score: d.score,
            })
            .collect()
    }

    /// The largest face (by clipped box area; on a tie the higher-scoring
    /// one, as [`crate::detect::largest::pick_largest`] picks from
    /// [`FaceEngine::detect`]'s list), or `None` when there is none.
    ///
    /// In fast mode it scores coarse pyramid levels first and finer ones
    /// only where they matter (`detect::largest`): several times less work
    /// when the face is large. With [`LargestSearch::Exact`] the answer is
    /// certainly that pick from [`FaceEngine::detect`]; the default,
    /// [`LargestSearch::Screened`], screens with approximate scores and
    /// scores dlib-exact windows around the candidates, which gave the same
    /// face on every golden photo and transformed variant tried
    /// (`docs/engine.md`) in 0.65-0.78 of the exact search's time, without
    /// proving it. What neither tells is how many other faces the photo
    /// holds.
    pub fn detect_largest(&self, img: &RgbImage, opts: &DetectOptions) -> Option<FaceBox> {
        let (w, h) = img.dimensions();
        let raw = match opts.mode {
            DetectorMode::Reference => {
                let all = detect_reference(&self.detector, img, opts.upsample, opts.threshold);
                largest_of(all, w, h)
            }
            DetectorMode::Fast => detect_largest(
                &self.detector,
                img,
                opts.min_face_size,
                opts.threshold,
                opts.largest,
            ),
        }?;
        Some(FaceBox {
            rect: raw.rect.clip_like_face_recognition(w, h),
            raw_rect: raw.rect,
            score: raw.score,
        })
    }

    /// [`FaceEngine::analyze`] for the largest face only (see
    /// [`FaceEngine::detect_largest`]): its landmarks and, when asked, its
    /// descriptor; `None` when the photo has no face.
    ///
    /// # Errors
    /// As [`FaceEngine::descriptor`].
    pub fn analyze_largest(&self, img: &RgbImage, opts: &AnalyzeOptions) -> Result<Option<Face>> {
        self.detect_largest(img, &opts.detect)
            .map(|face_box| self.face(img, face_box, opts))
            .transpose()
    }

    /// The five landmarks of the face in `rect`.
    pub fn landmarks(&self, img: &RgbImage, rect: Rect) -> Landmarks {
        self.shape.predict(img, rect)
    }

    /// The aligned 150x150 face chip for `landmarks` (dlib's
    /// `get_face_chip(img, shape, 150, 0.25)`).
    pub fn chip(&self, img: &RgbImage, landmarks: &Landmarks) -> RgbImage {
        extract_chip(img, &chip_details(landmarks))
    }

    /// The descriptor of an aligned 150x150 chip.
    ///
    /// # Errors
    /// [`Error::Chip`] unless the chip is 150x150.
    pub fn embed_chip(&self, chip: &RgbImage) -> Result<Embedding> {
        Ok(Embedding(self.resnet.embed(chip)?))
    }

    /// The descriptor of the face with these landmarks, averaging
    /// `num_jitters` jittered chips when it is above 1.
    ///
    /// # Errors
    /// Only if the aligned chip had the wrong size, which would be a bug.
    pub fn descriptor(
        &self,
        img: &RgbImage,
        landmarks: &Landmarks,
        num_jitters: u32,
    ) -> Result<Embedding> {
        let chip = self.chip(img, landmarks);
        if num_jitters <= 1 {
            return self.embed_chip(&chip);
        }
        let mut rng = Rng::new(0x5EED_F00D);
        let mut acc = [0f64; 128];
        for _ in 0..num_jitters {
            let e = self.resnet.embed(&jitter_chip(&chip, &mut rng))?;
            for (a, v) in acc.iter_mut().zip(e) {
                *a += f64::from(v);
            }
        }
        let mut out = [0f32; 128];
        for (o, a) in out.iter_mut().zip(acc) {
            *o = (a / f64::from(num_jitters)) as f32;
        }
        Ok(Embedding(out))
    }

    /// Detects every face and computes landmarks (and descriptors).
    ///
    /// # Errors
    /// As [`FaceEngine::descriptor`].
    pub fn analyze(&self, img: &RgbImage, opts: &AnalyzeOptions) -> Result<Vec<Face>> {
        self.detect(img, &opts.detect)
            .into_iter()
            .map(|face_box| self.face(img, face_box, opts))
            .collect()
    }

    /// Landmarks and, when `opts.embed`, the descriptor of the face in
    /// `face_box`: the per-face half of [`FaceEngine::analyze`].
    ///
    /// # Errors
    /// As [`FaceEngine::descriptor`].
    pub fn face(&self, img: &RgbImage, face_box: FaceBox, opts: &AnalyzeOptions) -> Result<Face> {
        let landmarks = self.landmarks(img, face_box.rect);
        let embedding = if opts.embed {
            Some(self.descriptor(img, &landmarks, opts.num_jitters)?)
        } else {
            None
        };
        Ok(Face {
            face_box,
            landmarks,
            embedding,
        })
    }
}
