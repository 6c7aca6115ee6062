//! Random jitter of a face chip, for `num_jitters > 1` (as face_recognition).
//!
//! dlib averages the descriptors of randomly perturbed copies of the chip:
//! a crop moved by up to 2% of its size, scaled to 97%-100% of its height,
//! rotated by up to 3 degrees and mirrored half of the time (dlib's
//! `jitter_image`). dlib's own random generator is not reproduced (nor is
//! its output bit-for-bit, `dlib-models.md` 4.4); ours is a seeded
//! SplitMix64 so the same input always gives the same descriptor.

use image::RgbImage;

use crate::align::{extract_chip, ChipDetails};
use crate::geometry::DRect;

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// One jittered copy of a square chip.
pub fn jitter_chip(chip: &RgbImage, rng: &mut Rng) -> RgbImage {
    const MAX_ROTATION_DEGREES: f64 = 3.0;
    const MIN_OBJECT_HEIGHT: f64 = 0.97;
    const MAX_OBJECT_HEIGHT: f64 = 0.99999;
    const TRANSLATE: f64 = 0.02;
    // dlib shrinks the chip's rectangle by 3 pixels on each side first.
    let (w, h) = (f64::from(chip.width()), f64::from(chip.height()));
    let (rw, rh) = (w - 6.0, h - 6.0);
    let cx = 3.0 + (rw - 1.0) / 2.0 + rng.range(-TRANSLATE, TRANSLATE) * rw;
    let cy = 3.0 + (rh - 1.0) / 2.0 + rng.range(-TRANSLATE, TRANSLATE) * rh;
    let size = (rh / rng.range(MIN_OBJECT_HEIGHT, MAX_OBJECT_HEIGHT)).floor();
    let angle = rng
        .range(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES)
        .to_radians();
    let half = (size - 1.0) / 2.0;
    let details = ChipDetails {
        rect: DRect {
            left: cx - half,
            top: cy - half,
            right: cx + half,
            bottom: cy + half,
        },
        angle,
    };
    let mut out = extract_chip(chip, &details);
    if rng.unit() > 0.5 {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.range(-3.0, 3.0);
            assert_eq!(x, b.range(-3.0, 3.0));
            assert!((-3.0..3.0).contains(&x));
        }
    }

    #[test]
    fn jitter_keeps_chip_size_and_changes_pixels() {
        let chip = RgbImage::from_fn(150, 150, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        let mut rng = Rng::new(1);
        let j = jitter_chip(&chip, &mut rng);
        assert_eq!(j.dimensions(), (150, 150));
        assert_ne!(j.as_raw(), chip.as_raw());
    }
}
