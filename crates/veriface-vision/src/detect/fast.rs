//! The fast default detector: dlib's reference procedure with the network
//! run only where faces of at least the requested size can be found.
//!
//! dlib doubles the image and tiles a pyramid of 5/6 steps into one tensor;
//! its level `i` finds faces whose boxes are about `39.5 * 1.2^i` pixels of
//! the original. The finest levels cost most of the network's work (level 0
//! alone is 4x the photo's pixels, the pyramid about 3x that) and only find
//! faces smaller than a KYC selfie or ID portrait holds. The fast mode
//! builds dlib's tensor values exactly (resizing is cheap next to the
//! network) but runs the network only on a few crops that hold levels `k`
//! and up, each tile with a margin that covers the network's 189-pixel
//! receptive field, so every score there is the score dlib computes.
//! Candidates from finer levels are dropped and the rest go through dlib's
//! NMS and box mapping.
//!
//! The result is exactly dlib's detections of faces at least `min_face_size`
//! pixels large (all 67 golden faces, `docs/engine.md`), at the cost of the
//! crops (about 1.6x the area of the tiles they score) instead of the whole
//! tensor.
//!
//! Why crops of dlib's own layout and not a compact tiling of the levels
//! `k..`: `docs/engine.md`, "Detector modes".

use image::RgbImage;
use rayon::prelude::*;

use crate::geometry::Rect;
use crate::imgproc::chain::stream_channel;
use crate::imgproc::pyramid::{rect_down, rect_up};
use crate::models::mmod_net::MmodNet;
use crate::nn::tensor::Tensor;

use super::layout::PyramidLayout;
use super::nms::{candidates, suppress, OUTPUT_STRIDE};
use super::pipeline::{detect_reference, RawDetection};

/// `min_face_size` value that means "choose from the image size".
pub const DEFAULT_MIN_FACE_SIZE: u32 = 0;

/// With `min_face_size == 0`: the smallest face searched for, as a share of
/// the image's shorter side. KYC photos hold one large face (a selfie's face
/// spans 30-70% of the frame, an ID portrait 15-35%); the smallest face in
/// the golden set is 15%.
pub const AUTO_MIN_FACE_FRACTION: f64 = 0.12;

/// Never search for faces smaller than this: dlib's own limit at upsample 1.
pub const MIN_FACE_FLOOR: u32 = 40;

/// Box side, in original pixels, of a detection at reference level 0
/// (the 80-pixel window, 79 between its corners, halved by the upsampling).
pub(super) const LEVEL0_BOX: f64 = 39.5;

/// Context kept around the scored tiles: half the receptive field (94) plus
/// the 10-pixel gap a cell centre may sit in, rounded up to the stride.
pub(super) const MARGIN: i64 = 112;

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

/// The first reference pyramid level that must be scored to find faces of
/// `min_face` pixels: the last whose boxes are no larger than that.
pub fn first_level(min_face: u32) -> usize {
    let ratio = f64::from(min_face) / LEVEL0_BOX;
    if ratio <= 1.0 {
        0
    } else {
        (ratio.ln() / 1.2f64.ln()).floor() as usize
    }
}

/// Detects faces of at least `min_face_size` pixels (0: automatic).
pub fn detect_fast(
    net: &MmodNet,
    img: &RgbImage,
    min_face_size: u32,
    threshold: f32,
) -> Vec<RawDetection> {
    let (w, h) = img.dimensions();
    let k = first_level(effective_min_face(min_face_size, w, h));
    if k == 0 {
        return detect_reference(net, img, 1, threshold);
    }
    let (up_w, up_h) = pyramid_up_size(w, h);
    let layout = PyramidLayout::new(up_h, up_w);
    let mut cands = Vec::new();
    let regions = scored_regions(&layout, k);
    let rects: Vec<Rect> = regions.iter().map(|(r, _)| *r).collect();
    let tensors = crop_tensors(img, net.means(), &layout, &rects);
    for ((crop, tiles), tensor) in regions.into_iter().zip(tensors) {
        let scores = net.forward(&tensor);
        drop(tensor);
        // The same tiles, in the crop's coordinates.
        let shifted = layout.shifted(crop);
        // Only the crop's own tiles have their whole receptive field inside it.
        cands.extend(
            candidates(&scores, &shifted, net.window_size(), threshold, 0)
                .into_iter()
                .filter(|c| tiles.contains(&c.level)),
        );
    }
    suppress(cands, net.nms_iou_thresh(), 1.0)
        .into_iter()
        .map(|d| RawDetection {
            rect: rect_down(d.rect),
            score: d.score,
        })
        .collect()
}

/// The parts of the tensor to score, each with the levels it is for: every
/// tile from `k` on plus [`MARGIN`], origins on the output stride so that
/// cells keep dlib's window positions. Neighbouring crops are merged when
/// their bounding box wastes little.
pub(super) fn scored_regions(layout: &PyramidLayout, k: usize) -> Vec<(Rect, Vec<usize>)> {
    let snap = |v: i64| (v - MARGIN).max(0) / OUTPUT_STRIDE * OUTPUT_STRIDE;
    let mut regions: Vec<(Rect, Vec<usize>)> = layout
        .levels
        .iter()
        .enumerate()
        .skip(k)
        .map(|(i, t)| {
            let r = Rect::new(
                snap(t.left),
                snap(t.top),
                (t.right + MARGIN).min(layout.cols as i64 - 1),
                (t.bottom + MARGIN).min(layout.rows as i64 - 1),
            );
            (r, vec![i])
        })
        .collect();
    // Greedy merging, cheapest first: two crops become their bounding box
    // when it is at most 10% larger than the area they cover together (their
    // overlap counted once). A looser rule chained the left column's shrinking
    // tiles into one tall box, 2.2x the tiles' area, mostly padding; this one
    // gives 1.6x (five crops for a 1280x960 photo, `docs/engine.md`).
    loop {
        let mut best: Option<(i64, usize, usize)> = None;
        for a in 0..regions.len() {
            for b in a + 1..regions.len() {
                let (ra, rb) = (regions[a].0, regions[b].0);
                let covered = ra.area() + rb.area() - ra.intersect(&rb).area();
                let bb = ra.bounding_union(&rb).area();
                if bb * 10 <= covered * 11 && best.is_none_or(|(w, _, _)| bb - covered < w) {
                    best = Some((bb - covered, a, b));
                }
            }
        }
        let Some((_, a, b)) = best else {
            return regions;
        };
        let (rb, tb) = regions.remove(b);
        regions[a].0 = regions[a].0.bounding_union(&rb);
        regions[a].1.extend(tb);
    }
}

/// The size `(width, height)` of dlib's `pyramid_up` of a `w x h` image.
pub(super) fn pyramid_up_size(w: u32, h: u32) -> (usize, usize) {
    if w == 0 || h == 0 {
        return (0, 0);
    }
    let up = rect_up(Rect::new(0, 0, i64::from(w) - 1, i64::from(h) - 1));
    (
        (up.right + 1).max(0) as usize,
        (up.bottom + 1).max(0) as usize,
    )
}

/// The values dlib's tensor holds inside each of `crops`, for the image
/// `img` (before its upsampling): every level is computed once, as dlib
/// computes it (the normalised `pyramid_up` of the image, then the chain of
/// f32 resizes), and the part of its tile inside each crop is copied in.
/// Levels are kept one at a time, so memory is the crops plus two levels
/// per channel.
fn crop_tensors(
    img: &RgbImage,
    means: [f32; 3],
    layout: &PyramidLayout,
    crops: &[Rect],
) -> Vec<Tensor> {
    let mut tensors: Vec<Tensor> = crops
        .iter()
        .map(|r| Tensor::zeros(3, r.height() as usize, r.width() as usize))
        .collect();
    // planes[c] = channel c of every crop, so the channels run in parallel.
    let mut planes: Vec<Vec<&mut [f32]>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for t in &mut tensors {
        let len = (t.h * t.w).max(1);
        for (c, p) in t.data.chunks_mut(len).enumerate() {
            planes[c].push(p);
        }
    }
    planes.par_iter_mut().enumerate().for_each(|(c, dst)| {
        level_chain(img, c, means[c], layout, |_, tile, y, row| {
            for (crop, plane) in crops.iter().zip(dst.iter_mut()) {
                copy_row_into_crop(row, tile, y, *crop, plane, crop.width() as usize);
            }
        });
    });
    tensors
}

/// Computes channel `c` of every pyramid level of `img` as dlib does (level
/// 0 the normalised `pyramid_up` of the photo, each next level a bilinear
/// resize of the previous one's values) and hands each row to `visit(level
/// index, tile, row index, values)`, each level's rows in order. The rows
/// stream through the chain (`imgproc::chain`), so no level is ever held
/// whole.
pub(super) fn level_chain(
    img: &RgbImage,
    c: usize,
    mean: f32,
    layout: &PyramidLayout,
    mut visit: impl FnMut(usize, &Rect, usize, &[f32]),
) {
    let sizes: Vec<(usize, usize)> = layout
        .levels
        .iter()
        .map(|t| (t.width() as usize, t.height() as usize))
        .collect();
    stream_channel(img, c, mean, &sizes, |i, y, row| {
        visit(i, &layout.levels[i], y, row);
    });
}

/// Copies the part of row `y` of `tile` (holding `row`) inside `crop`.
fn copy_row_into_crop(
    row: &[f32],
    tile: &Rect,
    y: usize,
    crop: Rect,
    plane: &mut [f32],
    cw: usize,
) {
    let ty = tile.top + y as i64;
    let part = tile.intersect(&crop);
    if part.is_empty() || ty < part.top || ty > part.bottom {
        return;
    }
    let (x0, x1) = (
        (part.left - tile.left) as usize,
        (part.right - tile.left) as usize,
    );
    let src = &row[x0..=x1];
    let off = (ty - crop.top) as usize * cw + (part.left - crop.left) as usize;
    plane[off..off + src.len()].copy_from_slice(src);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_min_face_follows_the_shorter_side() {
        assert_eq!(effective_min_face(0, 1000, 800), 96);
        assert_eq!(effective_min_face(0, 200, 300), MIN_FACE_FLOOR);
        assert_eq!(effective_min_face(120, 4000, 3000), 120);
        assert_eq!(effective_min_face(10, 4000, 3000), MIN_FACE_FLOOR);
    }

    #[test]
    fn first_level_box_is_not_larger_than_the_minimum_face() {
        assert_eq!(first_level(40), 0);
        for m in [48u32, 60, 100, 150, 300, 1000] {
            let k = first_level(m);
            assert!(LEVEL0_BOX * 1.2f64.powi(k as i32) <= f64::from(m));
            assert!(LEVEL0_BOX * 1.2f64.powi(k as i32 + 1) > f64::from(m));
        }
    }

    #[test]
    fn scored_regions_cover_each_tile_with_margin_on_the_stride() {
        let layout = PyramidLayout::new(1601, 2402);
        let whole = Rect::new(0, 0, layout.cols as i64 - 1, layout.rows as i64 - 1);
        for k in [1, 4, 9] {
            let regions = scored_regions(&layout, k);
            let mut seen: Vec<usize> = regions.iter().flat_map(|(_, t)| t.clone()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (k..layout.levels.len()).collect::<Vec<_>>());
            let mut area = 0;
            for (r, tiles) in &regions {
                assert_eq!((r.left % 8, r.top % 8), (0, 0));
                for &i in tiles {
                    let t = layout.levels[i];
                    let grown = Rect::new(
                        t.left - MARGIN,
                        t.top - MARGIN,
                        t.right + MARGIN,
                        t.bottom + MARGIN,
                    );
                    assert_eq!(
                        grown.intersect(&whole).intersect(r),
                        grown.intersect(&whole)
                    );
                }
                area += r.area();
            }
            assert!(area < whole.area());
        }
        assert!(scored_regions(&layout, 1000).is_empty());
    }
}
