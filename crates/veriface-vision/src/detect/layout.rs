//! The tiled image pyramid of dlib's `input_rgb_image_pyramid<pyramid_down<6>>`
//! (spec: `dlib-models.md` section 6.2, step 2).
//!
//! dlib packs every pyramid level into one tensor so that a single network
//! pass scores all scales at once: level 0 at the top left, smaller levels
//! stacked below it, and the rest right-aligned going back up. Reproducing
//! the exact layout matters because windows near a tile border see their
//! neighbours (and the zero padding between tiles), which changes scores.

use crate::geometry::Rect;

/// Zero rows/columns between two pyramid levels.
pub const PYRAMID_PADDING: i64 = 10;
/// Zero border around the whole tiled tensor.
pub const PYRAMID_OUTER_PADDING: i64 = 11;

/// Where each pyramid level sits in the tiled tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyramidLayout {
    /// One rectangle per level (inclusive corners, tensor coordinates);
    /// level `i` has been scaled by roughly `(5/6)^i`.
    pub levels: Vec<Rect>,
    /// Tensor rows.
    pub rows: usize,
    /// Tensor columns.
    pub cols: usize,
}

/// Level sizes `(rows, cols)` of a `pyramid_down<6>` pyramid starting at
/// `(rows, cols)`: each level is `floor(5/6 * n)` of the previous one, and the
/// pyramid stops before a level that would be empty or under 5 rows.
pub fn level_sizes(rows: usize, cols: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut h, mut w) = (rows, cols);
    while h >= 5 && h * w > 0 {
        out.push((h, w));
        h = ((5.0 / 6.0) * h as f64).floor() as usize;
        w = ((5.0 / 6.0) * w as f64).floor() as usize;
    }
    out
}

impl PyramidLayout {
    /// The layout dlib builds for an input of `rows x cols` pixels.
    pub fn new(rows: usize, cols: usize) -> Self {
        Self::from_sizes(&level_sizes(rows, cols))
    }

    /// dlib's layout algorithm applied to a given list of level sizes
    /// `(rows, cols)`, largest first (the fast detector starts the pyramid
    /// part-way down).
    pub fn from_sizes(sizes: &[(usize, usize)]) -> Self {
        let pad = PYRAMID_PADDING;
        let outer = PYRAMID_OUTER_PADDING;
        if sizes.is_empty() {
            return Self {
                levels: Vec::new(),
                rows: 0,
                cols: 0,
            };
        }
        let (h0, w0) = (sizes[0].0 as i64, sizes[0].1 as i64);
        let total_height: i64 = sizes.iter().map(|&(h, _)| h as i64 + pad).sum::<i64>() - 2 * pad;

        // How far down the first column goes before the remaining levels fit
        // on the right-hand side, going back up.
        let mut height = 0i64;
        let mut prev_width = 0i64;
        for &(h, w) in sizes {
            let (h, w) = (h as i64, w as i64);
            if w <= w0 - prev_width - pad && (height - h0) * 2 >= total_height - h0 {
                break;
            }
            height += h + pad;
            prev_width = w;
        }
        height -= pad;

        let mut levels = Vec::with_capacity(sizes.len());
        let mut y = outer;
        let mut i = 0;
        while y < height + outer && i < sizes.len() {
            let (h, w) = (sizes[i].0 as i64, sizes[i].1 as i64);
            levels.push(Rect::new(outer, y, outer + w - 1, y + h - 1));
            y += h + pad;
            i += 1;
        }
        y -= pad;
        while i < sizes.len() {
            let (h, w) = (sizes[i].0 as i64, sizes[i].1 as i64);
            let right = outer + w0 - 1;
            let bottom = y - 1;
            let r = Rect::new(right - w + 1, bottom - h + 1, right, bottom);
            if !r.intersect(&levels[0]).is_empty() {
                break;
            }
            levels.push(r);
            y -= h + pad;
            i += 1;
        }
        Self {
            levels,
            rows: (height + 2 * outer) as usize,
            cols: (w0 + 2 * outer) as usize,
        }
    }

    /// Moves each tile right and down by 0 to 7 pixels so that its origin
    /// has the same remainder modulo the network's output stride (8) as the
    /// matching tile of `reference`, starting at reference level `offset`.
    /// Score-map cells then sit on exactly the window positions the
    /// reference pyramid scores. Tiles are at least 10 pixels apart, so
    /// shifts of under 8 never make two overlap.
    pub fn align_phases(&mut self, reference: &PyramidLayout, offset: usize) {
        const STRIDE: i64 = 8;
        for (j, tile) in self.levels.iter_mut().enumerate() {
            let Some(r) = reference.levels.get(offset + j) else {
                break;
            };
            let dx = (r.left - tile.left).rem_euclid(STRIDE);
            let dy = (r.top - tile.top).rem_euclid(STRIDE);
            *tile = Rect::new(
                tile.left + dx,
                tile.top + dy,
                tile.right + dx,
                tile.bottom + dy,
            );
        }
        self.rows += STRIDE as usize;
        self.cols += STRIDE as usize;
    }

    /// The same layout seen from a crop of the tensor: every tile moved by
    /// `-crop`'s origin, and the tensor the crop's size.
    pub fn shifted(&self, crop: Rect) -> Self {
        Self {
            levels: self
                .levels
                .iter()
                .map(|t| {
                    Rect::new(
                        t.left - crop.left,
                        t.top - crop.top,
                        t.right - crop.left,
                        t.bottom - crop.top,
                    )
                })
                .collect(),
            rows: crop.height() as usize,
            cols: crop.width() as usize,
        }
    }

    /// The level whose tile contains `(x, y)`, else the nearest tile (by
    /// Euclidean distance to the rectangle; the first one on ties), as
    /// dlib's `tensor_space_to_image_space` does.
    pub fn level_of(&self, x: i64, y: i64) -> Option<usize> {
        if let Some(i) = self.levels.iter().position(|r| r.contains(x, y)) {
            return Some(i);
        }
        let mut best: Option<(usize, f64)> = None;
        for (i, r) in self.levels.iter().enumerate() {
            let dx = (r.left - x).max(0).max(x - r.right) as f64;
            let dy = (r.top - y).max(0).max(y - r.bottom) as f64;
            let d = (dx * dx + dy * dy).sqrt();
            if best.is_none_or(|(_, b)| d < b) {
                best = Some((i, d));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_sizes_follow_five_sixths() {
        let s = level_sizes(1025, 662);
        assert_eq!(s[0], (1025, 662));
        assert_eq!(s[1], (854, 551));
        assert!(s.last().unwrap().0 >= 5);
    }

    #[test]
    fn empty_input_has_no_levels() {
        assert!(PyramidLayout::new(0, 0).levels.is_empty());
        assert!(PyramidLayout::new(4, 100).levels.is_empty());
    }

    #[test]
    fn aligned_tiles_keep_reference_phases_and_never_overlap() {
        let reference = PyramidLayout::new(1601, 2402);
        let sizes = level_sizes(1601, 2402);
        let mut l = PyramidLayout::from_sizes(&sizes[5..]);
        l.align_phases(&reference, 5);
        for (j, a) in l.levels.iter().enumerate() {
            let r = reference.levels[5 + j];
            assert_eq!((a.left - r.left).rem_euclid(8), 0);
            assert_eq!((a.top - r.top).rem_euclid(8), 0);
            assert!(a.right < l.cols as i64 && a.bottom < l.rows as i64);
            for b in &l.levels[j + 1..] {
                assert!(a.intersect(b).is_empty());
            }
        }
    }

    #[test]
    fn tiles_never_overlap() {
        for (h, w) in [(1025, 662), (600, 800), (81, 81), (2000, 300), (300, 2000)] {
            let l = PyramidLayout::new(h, w);
            for (i, a) in l.levels.iter().enumerate() {
                assert!(a.right < l.cols as i64 && a.bottom < l.rows as i64);
                for b in &l.levels[i + 1..] {
                    assert!(a.intersect(b).is_empty(), "{h}x{w}: {a:?} overlaps {b:?}");
                }
            }
        }
    }
}
