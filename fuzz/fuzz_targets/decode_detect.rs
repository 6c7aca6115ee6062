//! Fuzzes the upload path end to end: `decode` with small limits, then the
//! fast detector and the largest-face search on whatever decoded. Any input
//! must give an image (and a list of boxes inside it, whose largest is the
//! one the search finds) or an `ImageError`, never a panic or an abort.
//!
//! The models are loaded once, from `$VERIFACE_MODELS_DIR` (else
//! `./models`, relative to the directory the fuzzer runs in); install them
//! first with `scripts/install-models.sh`. A missing model aborts the run
//! with that message rather than silently fuzzing only the decoder.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veriface_vision::decode::{decode, DecodeLimits};
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::engine::{DetectOptions, FaceEngine, LargestSearch};

/// Small limits keep each execution quick: the detector's cost grows with
/// the pixel count, and 1 Mpx is enough to reach every code path.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 1024 * 1024,
    max_width: 2048,
    max_height: 2048,
    max_pixels: 1_000_000,
};

fn engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| match FaceEngine::from_env() {
        Ok(e) => e,
        Err(e) => panic!(
            "cannot load the models ({e}); run scripts/install-models.sh and set VERIFACE_MODELS_DIR"
        ),
    })
}

fuzz_target!(|data: &[u8]| {
    let engine = engine();
    if let Ok(decoded) = decode(data, &LIMITS) {
        let img = &decoded.image;
        let (w, h) = img.dimensions();
        assert!(u64::from(w) * u64::from(h) <= LIMITS.max_pixels);
        let faces = engine.detect(img, &DetectOptions::fast());
        // The exact largest-face search must pick the same face as the full
        // list, whatever the input; the screened default (what `veriface
        // compare` runs) is only checked not to fail: it does not prove its
        // pick.
        let pick = pick_largest(&faces, |f| (f.rect.area(), f.score)).map(|f| f.rect);
        let exact = DetectOptions {
            largest: LargestSearch::Exact,
            ..DetectOptions::fast()
        };
        let largest = engine.detect_largest(img, &exact).map(|f| f.rect);
        assert_eq!(largest, pick, "largest-face search disagrees");
        if let Some(f) = engine.detect_largest(img, &DetectOptions::fast()) {
            assert!(f.score.is_finite());
        }
        for face in faces {
            let r = face.rect;
            assert!(r.left >= 0 && r.top >= 0, "box outside the image: {r:?}");
            // face_recognition clips to `width`/`height` inclusive.
            assert!(
                r.right <= i64::from(w) && r.bottom <= i64::from(h),
                "box outside the image: {r:?}"
            );
            assert!(face.score.is_finite());
        }
    }
});
