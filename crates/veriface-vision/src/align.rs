//! Face chips: dlib's `get_face_chip_details(shape, 150, 0.25)` and
//! `extract_image_chip` (spec: `dlib-models.md` section 7).
//!
//! The five landmarks are fitted to dlib's mean face with a similarity
//! transform; the chip is the 150x150 image of that face frame, sampled
//! bilinearly. Large faces are first shrunk with `pyramid_down<2>` so that
//! bilinear sampling never skips pixels; the pyramid level is part of what
//! makes the chip bit-identical to dlib's, and so to the descriptors the
//! ResNet was trained on.

use image::RgbImage;

use crate::geometry::{lround, DRect, Landmarks, Point};
use crate::imgproc::pyramid::{drect_down, pyr_down2, pyr_down2_view, RgbView};
use crate::transform::{similarity, Affine};

/// Side of a face chip in pixels.
pub const CHIP_SIZE: u32 = 150;
/// Padding around the mean face, as a fraction of its size.
const PADDING: f64 = 0.25;

/// dlib's 5-point mean face in normalised coordinates, in landmark order.
const MEAN_FACE: [(f64, f64); 5] = [
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
];

/// Where a chip lies in the image: a rectangle rotated by `angle` about its
/// centre (dlib's `chip_details` for a 150x150 chip).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipDetails {
    /// The chip's rectangle before rotation, in image coordinates.
    pub rect: DRect,
    /// Rotation in radians (image axes, y down).
    pub angle: f64,
}

/// The chip geometry for five landmarks: size 150, padding 0.25.
pub fn chip_details(landmarks: &Landmarks) -> ChipDetails {
    let size = f64::from(CHIP_SIZE);
    let from: [Point; 5] = std::array::from_fn(|k| {
        let (x, y) = MEAN_FACE[k];
        Point::new(
            (PADDING + x) / (2.0 * PADDING + 1.0) * size,
            (PADDING + y) / (2.0 * PADDING + 1.0) * size,
        )
    });
    let to: [Point; 5] =
        std::array::from_fn(|k| Point::new(landmarks[k].x as f64, landmarks[k].y as f64));
    let t = similarity(&from, &to);
    let (vx, vy) = (t.m[0][0], t.m[1][0]);
    let angle = vy.atan2(vx);
    let scale = (vx * vx + vy * vy).sqrt();
    let centre = t.apply(Point::new(size / 2.0, size / 2.0));
    let half = (size * scale - 1.0) / 2.0;
    ChipDetails {
        rect: DRect {
            left: centre.x - half,
            top: centre.y - half,
            right: centre.x + half,
            bottom: centre.y + half,
        },
        angle,
    }
}

/// Extracts the 150x150 chip described by `d`, bit-identical to dlib's
/// `extract_image_chip` with bilinear interpolation. Chip pixels whose
/// neighbourhood leaves the image are black.
pub fn extract_chip(img: &RgbImage, d: &ChipDetails) -> RgbImage {
    let n = CHIP_SIZE as usize;
    let chip_area = (n * n) as f64;
    let mut out = RgbImage::new(CHIP_SIZE, CHIP_SIZE);

    // Pyramid depth needed for this chip, and the border it needs.
    let mut depth = 0usize;
    let mut grow = 2.0;
    let mut r = drect_down(d.rect);
    while r.area() > chip_area {
        r = drect_down(r);
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }

    // The crop: the rotated chip rectangle, grown, clipped to the image.
    let c = centre(&d.rect);
    let corners = rect_corners(&d.rect).map(|p| rotate(c, p, d.angle));
    let min_x = corners.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
    let max_x = corners
        .iter()
        .map(|p| p.x)
        .fold(f64::NEG_INFINITY, f64::max);
    let min_y = corners.iter().map(|p| p.y).fold(f64::INFINITY, f64::min);
    let max_y = corners
        .iter()
        .map(|p| p.y)
        .fold(f64::NEG_INFINITY, f64::max);
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let bl = lround((min_x - grow).max(0.0));
    let bt = lround((min_y - grow).max(0.0));
    let br = lround((max_x + grow).min(w - 1.0));
    let bb = lround((max_y + grow).min(h - 1.0));
    if bl > br || bt > bb || img.width() == 0 || img.height() == 0 {
        return out;
    }
    let sub = RgbView::whole(img).crop(
        bl as usize,
        bt as usize,
        (br - bl + 1) as usize,
        (bb - bt + 1) as usize,
    );

    // Which pyramid level to sample from.
    let mut q = DRect {
        left: d.rect.left - bl as f64,
        top: d.rect.top - bt as f64,
        right: d.rect.right - bl as f64,
        bottom: d.rect.bottom - bt as f64,
    };
    let mut level = 0usize;
    while drect_down(q).area() > chip_area {
        level += 1;
        q = drect_down(q);
    }
    // dlib computes `depth` on the untranslated rectangle; the two agree up
    // to rounding, and never sampling below the built levels keeps us safe.
    let level = level.min(depth);
    let mut shrunk: Option<RgbImage> = None;
    for _ in 0..level {
        shrunk = Some(match &shrunk {
            None => pyr_down2_view(sub),
            Some(prev) => pyr_down2(prev),
        });
    }
    let src = match &shrunk {
        None => sub,
        Some(im) => RgbView::whole(im),
    };

    // The affine map from chip pixels to `src`, through three corners.
    let qc = centre(&q);
    let [tl, tr, bl_, _] = rect_corners(&q).map(|p| rotate(qc, p, d.angle));
    let last = (n - 1) as f64;
    let map = Affine {
        m: [
            [(tr.x - tl.x) / last, (bl_.x - tl.x) / last],
            [(tr.y - tl.y) / last, (bl_.y - tl.y) / last],
        ],
        b: [tl.x, tl.y],
    };

    for (y, row) in out.as_mut().chunks_exact_mut(n * 3).enumerate() {
        for x in 0..n {
            let p = map.apply(Point::new(x as f64, y as f64));
            if let Some(px) = bilinear(&src, p) {
                row[x * 3..x * 3 + 3].copy_from_slice(&px);
            }
        }
    }
    out
}

/// dlib's `interpolate_bilinear` on RGB: `None` when a neighbour is outside.
fn bilinear(img: &RgbView<'_>, p: Point) -> Option<[u8; 3]> {
    let (l, t) = (floor(p.x), floor(p.y));
    if !(l >= 0.0 && t >= 0.0 && l + 1.0 < img.w as f64 && t + 1.0 < img.h as f64) {
        return None;
    }
    let (fx, fy) = (p.x - l, p.y - t);
    let (l, t) = (l as usize, t as usize);
    let top = &img.row(t)[l * 3..l * 3 + 6];
    let bot = &img.row(t + 1)[l * 3..l * 3 + 6];
    Some(std::array::from_fn(|ch| {
        let v = (1.0 - fy) * ((1.0 - fx) * f64::from(top[ch]) + fx * f64::from(top[ch + 3]))
            + fy * ((1.0 - fx) * f64::from(bot[ch]) + fx * f64::from(bot[ch + 3]));
        v as u8
    }))
}

/// `v.floor()` for the coordinates a chip can produce. Without SSE4.1 the
/// std `floor` is a libm call, which dominated chip extraction.
fn floor(v: f64) -> f64 {
    if v.abs() < 4.0e15 {
        let t = v as i64 as f64;
        if t > v {
            t - 1.0
        } else {
            t
        }
    } else {
        v.floor()
    }
}

fn centre(r: &DRect) -> Point {
    Point::new((r.left + r.right) / 2.0, (r.top + r.bottom) / 2.0)
}

/// Top-left, top-right, bottom-left, bottom-right.
fn rect_corners(r: &DRect) -> [Point; 4] {
    [
        Point::new(r.left, r.top),
        Point::new(r.right, r.top),
        Point::new(r.left, r.bottom),
        Point::new(r.right, r.bottom),
    ]
}

/// dlib's `rotate_point`: `p` rotated by `angle` about `c`.
fn rotate(c: Point, p: Point, angle: f64) -> Point {
    let (s, co) = angle.sin_cos();
    let (x, y) = (p.x - c.x, p.y - c.y);
    Point::new(co * x - s * y + c.x, s * x + co * y + c.y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::IPoint;

    #[test]
    fn mean_face_landmarks_give_an_upright_chip() {
        let lm: Landmarks = std::array::from_fn(|k| {
            let (x, y) = MEAN_FACE[k];
            IPoint::new(
                ((0.25 + x) / 1.5 * 300.0).round() as i64 + 40,
                ((0.25 + y) / 1.5 * 300.0).round() as i64 + 10,
            )
        });
        let d = chip_details(&lm);
        assert!(d.angle.abs() < 0.01, "{d:?}");
        assert!(
            (d.rect.right - d.rect.left + 1.0 - 300.0).abs() < 2.0,
            "{d:?}"
        );
    }

    #[test]
    fn chip_outside_the_image_is_black() {
        let img = RgbImage::from_pixel(50, 50, image::Rgb([200, 200, 200]));
        let d = ChipDetails {
            rect: DRect {
                left: 1000.0,
                top: 1000.0,
                right: 1149.0,
                bottom: 1149.0,
            },
            angle: 0.3,
        };
        let chip = extract_chip(&img, &d);
        assert!(chip.pixels().all(|p| p.0 == [0, 0, 0]));
    }
}
