//! Candidate extraction and dlib MMOD's non-max suppression
//! (spec: `dlib-models.md` section 6.2, steps 4 to 6).

use crate::geometry::{lround, Rect};
use crate::nn::tensor::Tensor;

use super::layout::PyramidLayout;

/// A scored box before or after suppression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The box (inclusive corners).
    pub rect: Rect,
    /// The raw network score (dlib's "confidence").
    pub score: f32,
    /// The pyramid level it was found at.
    pub level: usize,
}

/// Output cell `(col, row)` of the score map looks at this input-tensor point:
/// three stride-2 convolutions (stride 8 in all) with the kernel centres
/// offsetting it by 14 pixels.
pub const OUTPUT_STRIDE: i64 = 8;
/// See [`OUTPUT_STRIDE`].
pub const OUTPUT_OFFSET: i64 = 14;

/// Every score-map cell above `threshold`, mapped to the coordinates of the
/// pyramid's level 0 (the network's input image).
///
/// `window` is the detector window `(width, height)` (80x80 for dlib's face
/// model). `level_offset` is the pyramid level of `layout`'s first tile: 0
/// for dlib's full pyramid, more when the pyramid starts part-way down (the
/// fast detector); boxes are scaled up as from that level.
pub fn candidates(
    scores: &Tensor,
    layout: &PyramidLayout,
    window: (usize, usize),
    threshold: f32,
    level_offset: usize,
) -> Vec<Scored> {
    candidate_cells(scores, layout, window, threshold, level_offset)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// [`candidates`], each with the tensor point `(x, y)` its cell looks at
/// (in `layout`'s coordinates), for callers that score parts of the tensor
/// and must know which cells they have seen.
pub fn candidate_cells(
    scores: &Tensor,
    layout: &PyramidLayout,
    window: (usize, usize),
    threshold: f32,
    level_offset: usize,
) -> Vec<(Scored, (i64, i64))> {
    let mut out = Vec::new();
    let half_w = (window.0 as f64 - 1.0) / 2.0;
    let half_h = (window.1 as f64 - 1.0) / 2.0;
    for r in 0..scores.h {
        let row = &scores.data[r * scores.w..(r + 1) * scores.w];
        for (c, &s) in row.iter().enumerate() {
            if s <= threshold {
                continue;
            }
            let px = c as i64 * OUTPUT_STRIDE + OUTPUT_OFFSET;
            let py = r as i64 * OUTPUT_STRIDE + OUTPUT_OFFSET;
            let Some(tile_index) = layout.level_of(px, py) else {
                continue;
            };
            let tile = layout.levels[tile_index];
            let level = tile_index + level_offset;
            // The window in tensor space, relative to its tile, then scaled up
            // `level` times by pyramid_down<6>'s point_up (x * 6/5 + 0.3).
            let mut l = px as f64 - half_w - tile.left as f64;
            let mut t = py as f64 - half_h - tile.top as f64;
            let mut rr = px as f64 + half_w - tile.left as f64;
            let mut b = py as f64 + half_h - tile.top as f64;
            for _ in 0..level {
                l = l * 1.2 + 0.3;
                t = t * 1.2 + 0.3;
                rr = rr * 1.2 + 0.3;
                b = b * 1.2 + 0.3;
            }
            out.push((
                Scored {
                    rect: Rect::new(lround(l), lround(t), lround(rr), lround(b)),
                    score: s,
                    level,
                },
                (px, py),
            ));
        }
    }
    out
}

/// dlib's `overlaps_nms`: the overlap is measured against the smallest box
/// containing both (not the union), plus two coverage tests that can never
/// fire with dlib's stored threshold of 1.0 but are kept for fidelity.
pub fn overlaps(a: &Rect, b: &Rect, iou_thresh: f64, covered_thresh: f64) -> bool {
    let inner = a.intersect(b).area() as f64;
    if inner <= 0.0 {
        return false;
    }
    let outer = a.bounding_union(b).area() as f64;
    inner / outer > iou_thresh
        || inner / a.area() as f64 > covered_thresh
        || inner / b.area() as f64 > covered_thresh
}

/// Greedy non-max suppression by descending score.
///
/// The sort is stable; dlib's is not, which can only matter for exactly
/// equal scores.
pub fn suppress(mut cands: Vec<Scored>, iou_thresh: f64, covered_thresh: f64) -> Vec<Scored> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Scored> = Vec::new();
    for c in cands {
        if !kept
            .iter()
            .any(|k| overlaps(&k.rect, &c.rect, iou_thresh, covered_thresh))
        {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nms_keeps_best_of_overlapping_boxes() {
        let a = Scored {
            rect: Rect::new(0, 0, 99, 99),
            score: 1.0,
            level: 0,
        };
        let b = Scored {
            rect: Rect::new(10, 10, 109, 109),
            score: 2.0,
            level: 0,
        };
        let c = Scored {
            rect: Rect::new(500, 500, 599, 599),
            score: 0.5,
            level: 0,
        };
        let kept = suppress(vec![a, b, c], 0.3382761351109955, 1.0);
        assert_eq!(kept, vec![b, c]);
    }

    #[test]
    fn overlap_uses_bounding_box_not_union() {
        // Two 10x10 boxes offset diagonally by 5: intersection 25, union 175,
        // bounding box 225. 25/175 = 0.143, 25/225 = 0.111.
        let a = Rect::new(0, 0, 9, 9);
        let b = Rect::new(5, 5, 14, 14);
        assert!(overlaps(&a, &b, 0.12, 1.0) == (25.0 / 225.0 > 0.12));
        assert!(!overlaps(&a, &b, 0.12, 1.0));
    }

    #[test]
    fn rect_down_matches_trace() {
        // mmod_angelina_img5 trace: upsampled [166, 269, 506, 609] -> [82, 134, 252, 304].
        assert_eq!(
            crate::imgproc::pyramid::rect_down(Rect::new(166, 269, 506, 609)),
            Rect::new(82, 134, 252, 304)
        );
    }

    #[test]
    fn candidate_maps_through_level_scaling() {
        // The trace's best cell (row 314, col 73) is found at level 8 of a
        // 1025x662 pyramid and maps to [166, 269, 506, 609].
        let layout = PyramidLayout::new(1025, 662);
        let mut scores = Tensor::zeros(1, 464, 82);
        scores.data.iter_mut().for_each(|v| *v = -1.0);
        scores.data[314 * 82 + 73] = 1.085;
        let c = candidates(&scores, &layout, (80, 80), 0.0, 0);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].level, 8);
        assert_eq!(c[0].rect, Rect::new(166, 269, 506, 609));
    }
}
