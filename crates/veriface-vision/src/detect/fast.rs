//! The fast default detector: dlib's network and pyramid, run on a copy of
//! the image scaled so that the smallest face of interest just fills the
//! 80x80 detector window, with the boxes mapped back to the input.
//!
//! dlib's reference procedure doubles the image first so that faces down to
//! about 40 px are found, which costs about 3x the doubled image's pixels in
//! network work (roughly 12x the photo's pixels). A KYC selfie or ID photo
//! has its face far above 40 px, so the fast mode works at the resolution
//! that the requested minimum face size needs and no finer.

use image::imageops::FilterType;
use image::RgbImage;

use crate::geometry::{lround, Rect};
use crate::models::mmod_net::MmodNet;

use super::pipeline::{detect_on, detect_reference, RawDetection};

/// The detector window side in pixels of the pyramid's first level.
const WINDOW: f64 = 80.0;

/// `min_face_size` value that means "choose from the image size".
pub const DEFAULT_MIN_FACE_SIZE: u32 = 0;

/// With `min_face_size == 0`: the smallest face searched for, as a share of
/// the image's shorter side. KYC photos hold one large face (a selfie's face
/// spans 30-70% of the frame, an ID portrait 15-35%).
pub const AUTO_MIN_FACE_FRACTION: f64 = 0.1;

/// Never search for faces smaller than this (dlib's own limit at upsample 1).
pub const MIN_FACE_FLOOR: u32 = 40;

/// The minimum face size actually used for an image.
pub fn effective_min_face(min_face_size: u32, width: u32, height: u32) -> u32 {
    let auto = (AUTO_MIN_FACE_FRACTION * f64::from(width.min(height))).round() as u32;
    let m = if min_face_size == 0 {
        auto
    } else {
        min_face_size
    };
    m.max(MIN_FACE_FLOOR)
}

/// Detects faces of at least `min_face_size` pixels (0: automatic).
pub fn detect_fast(
    net: &MmodNet,
    img: &RgbImage,
    min_face_size: u32,
    threshold: f32,
) -> Vec<RawDetection> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let min_face = effective_min_face(min_face_size, w, h);
    let scale = WINDOW / f64::from(min_face);
    if scale >= 2.0 {
        // Small faces wanted: that is dlib's own upsample-by-2.
        return detect_reference(net, img, 1, threshold);
    }
    if (scale - 1.0).abs() < 1e-9 {
        return to_raw(detect_on(net, img, threshold), 1.0, 1.0);
    }
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    // Triangle (bilinear with a support that widens when shrinking) avoids
    // the aliasing a plain bilinear downscale would feed the network.
    let small = image::imageops::resize(img, nw, nh, FilterType::Triangle);
    let sx = f64::from(w) / f64::from(nw);
    let sy = f64::from(h) / f64::from(nh);
    to_raw(detect_on(net, &small, threshold), sx, sy)
}

fn to_raw(found: Vec<super::nms::Scored>, sx: f64, sy: f64) -> Vec<RawDetection> {
    // Pixel centres map as (x + 0.5) * s - 0.5.
    let map = |v: i64, s: f64| lround((v as f64 + 0.5) * s - 0.5);
    found
        .into_iter()
        .map(|d| RawDetection {
            rect: Rect::new(
                map(d.rect.left, sx),
                map(d.rect.top, sy),
                map(d.rect.right, sx),
                map(d.rect.bottom, sy),
            ),
            score: d.score,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_min_face_follows_the_shorter_side() {
        assert_eq!(effective_min_face(0, 1000, 800), 80);
        assert_eq!(effective_min_face(0, 200, 300), MIN_FACE_FLOOR);
        assert_eq!(effective_min_face(120, 4000, 3000), 120);
        assert_eq!(effective_min_face(10, 4000, 3000), MIN_FACE_FLOOR);
    }
}
