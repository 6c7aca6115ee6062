//! The CNN detector's pyramid of one channel, streamed row by row.
//!
//! dlib builds its detector input as a chain: level 0 is the photo's
//! `pyramid_up` (a bilinear resize to `(2W + 2) x (2H + 1)`), normalised,
//! and every next level is an f32 bilinear resize of the previous one. Done a
//! level at a time, the chain writes and rereads level 0 (14 MB per channel
//! for a 1 MP photo) and the next few levels through main memory, and that
//! traffic, not arithmetic, was its cost (about 30 ms per channel). Each
//! output row of a level needs only two rows of the level before, so this
//! module keeps a ring of a few rows per level and produces a row of level
//! `i` only when level `i + 1` asks for it: every level's working rows stay
//! in cache, and the caller sees each row once, in order, through a visitor.
//! The values are the same bits as the level-at-a-time chain (same row
//! kernels, same order of operations).

use image::RgbImage;

use super::resize::{channel_row, row_plan, ColumnPlan, RowKernel, RowPos};

/// Rows kept per level. A level's rows are asked for in non-decreasing order
/// and an output row needs rows `top` and `top + 1` (or `top` twice), so the
/// two most recent rows would do; one more keeps the invariant obvious.
const RING: usize = 3;

/// One level of the chain: its geometry, plans and ring of recent rows.
struct Level {
    width: usize,
    height: usize,
    cols: ColumnPlan,
    rows: Vec<RowPos>,
    ring: Vec<f32>,
    /// Rows produced so far (rows `produced - RING..produced` are in the ring).
    produced: usize,
}

impl Level {
    fn new(in_w: usize, in_h: usize, width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            cols: ColumnPlan::new(in_w, width),
            rows: row_plan(in_h, height),
            ring: vec![0.0; RING * width],
            produced: 0,
        }
    }

    fn row(&self, y: usize) -> &[f32] {
        debug_assert!(y < self.produced && y + RING >= self.produced);
        let s = (y % RING) * self.width;
        &self.ring[s..s + self.width]
    }
}

/// Streams channel `c` of dlib's detector pyramid for `img`: level 0 is the
/// normalised `pyramid_up`, `(v - mean) / 256`, of size `sizes[0]`, and level
/// `i` the bilinear resize of level `i - 1` to `sizes[i]` (`(width, height)`
/// pairs). `visit(level, row, values)` sees every row of every level exactly
/// once, each level's rows in order; rows of different levels interleave.
///
/// Bit-identical to [`super::resize::resize_channel_normalised`] followed by
/// [`super::resize::resize_plane_f32`] level after level.
pub fn stream_channel(
    img: &RgbImage,
    c: usize,
    mean: f32,
    sizes: &[(usize, usize)],
    mut visit: impl FnMut(usize, usize, &[f32]),
) {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    if in_w == 0 || in_h == 0 || sizes.iter().any(|&(w, h)| w == 0 || h == 0) {
        return;
    }
    let mut levels = Vec::with_capacity(sizes.len());
    let (mut pw, mut ph) = (in_w, in_h);
    for &(w, h) in sizes {
        levels.push(Level::new(pw, ph, w, h));
        (pw, ph) = (w, h);
    }
    let mut source = Source {
        img,
        c,
        rows: [(usize::MAX, vec![0.0; in_w]), (usize::MAX, vec![0.0; in_w])],
        mean,
        kernel: RowKernel::new(),
        arch: pulp::Arch::new(),
    };
    // Asking for the last row of each level, coarsest first, pulls every row
    // of every level through the chain (the first ask does it all: a
    // resize's last output row reads the last input row).
    for i in (0..levels.len()).rev() {
        let last = levels[i].height - 1;
        ensure(&mut levels, i, last, &mut source, &mut visit);
    }
}

/// The photo's channel as level 0's source, converted to f32 a row at a
/// time as level 0 asks for it rather than as a whole plane (4 MB less to
/// write and read per channel of a 1 MP photo). An output row reads rows
/// `top` and `top + 1` (or `top` twice), so row `y` is kept in slot `y % 2`:
/// the two rows a step needs never share a slot.
struct Source<'a> {
    img: &'a RgbImage,
    c: usize,
    /// Per slot, the row it holds (`usize::MAX`: none yet) and its values.
    rows: [(usize, Vec<f32>); 2],
    mean: f32,
    kernel: RowKernel,
    /// The CPU's SIMD level, detected once for every row's conversion.
    arch: pulp::Arch,
}

impl Source<'_> {
    /// Makes rows `top` and `bot` (`bot` is `top` or `top + 1`) available
    /// and returns them.
    fn load(&mut self, top: usize, bot: usize) -> (&[f32], &[f32]) {
        let width = self.img.width() as usize;
        for y in [top, bot] {
            let (held, values) = &mut self.rows[y % 2];
            if *held != y {
                let raw = &self.img.as_raw()[y * width * 3..(y + 1) * width * 3];
                channel_row(self.arch, raw, self.c, values);
                *held = y;
            }
        }
        (&self.rows[top % 2].1, &self.rows[bot % 2].1)
    }
}

/// Produces rows of `levels[i]` until row `y` exists, producing the rows of
/// the finer levels they need first (recursion depth: the number of levels).
fn ensure(
    levels: &mut [Level],
    i: usize,
    y: usize,
    src: &mut Source<'_>,
    visit: &mut impl FnMut(usize, usize, &[f32]),
) {
    while levels[i].produced <= y {
        let r = levels[i].produced;
        let rp = levels[i].rows[r];
        if i > 0 {
            ensure(levels, i - 1, rp.bottom, src, visit);
        }
        let (finer, rest) = levels.split_at_mut(i);
        let level = &mut rest[0];
        let w = level.width;
        let slot = (r % RING) * w;
        let dst = &mut level.ring[slot..slot + w];
        if i == 0 {
            let (kernel, mean) = (src.kernel, src.mean);
            let (top, bot) = src.load(rp.top, rp.bottom);
            kernel.normalised_row(&level.cols, rp.frac, top, bot, dst, mean);
        } else {
            let prev = &finer[i - 1];
            src.kernel.f32_row(
                &level.cols,
                rp.frac,
                prev.row(rp.top),
                prev.row(rp.bottom),
                dst,
            );
        }
        visit(i, r, dst);
        level.produced += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgproc::resize::{resize_channel_normalised, resize_plane_f32};

    /// The level-at-a-time chain the stream replaces.
    fn levels_one_by_one(
        img: &RgbImage,
        c: usize,
        mean: f32,
        sizes: &[(usize, usize)],
    ) -> Vec<Vec<f32>> {
        if sizes.is_empty() {
            return Vec::new();
        }
        let mut out = vec![resize_channel_normalised(
            img, c, sizes[0].0, sizes[0].1, mean,
        )];
        for i in 1..sizes.len() {
            let (pw, ph) = sizes[i - 1];
            let (w, h) = sizes[i];
            let mut next = vec![0.0; w * h];
            resize_plane_f32(&out[i - 1], pw, ph, &mut next, w, h);
            out.push(next);
        }
        out
    }

    fn pyramid_sizes(w: usize, h: usize) -> Vec<(usize, usize)> {
        crate::detect::layout::level_sizes(2 * h + 1, 2 * w + 2)
            .into_iter()
            .map(|(r, c)| (c, r))
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn stream_equals_the_level_at_a_time_chain(
            (w, h, seed) in (1u32..90, 1u32..70, 0u32..1000)
        ) {
            let img = RgbImage::from_fn(w, h, |x, y| {
                let v = (x * 7919 + y * 104_729 + seed).wrapping_mul(2_654_435_761);
                image::Rgb([(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8])
            });
            let sizes = pyramid_sizes(w as usize, h as usize);
            for c in 0..3 {
                let mean = [122.782, 117.001, 104.298][c];
                let expect = levels_one_by_one(&img, c, mean, &sizes);
                let mut got: Vec<Vec<f32>> = sizes.iter().map(|_| Vec::new()).collect();
                let mut next_row = vec![0usize; sizes.len()];
                stream_channel(&img, c, mean, &sizes, |i, y, row| {
                    assert_eq!(y, next_row[i], "level {i} rows out of order");
                    next_row[i] += 1;
                    got[i].extend_from_slice(row);
                });
                for (g, e) in got.iter().zip(&expect) {
                    proptest::prop_assert_eq!(g.len(), e.len());
                    proptest::prop_assert!(g.iter().zip(e).all(|(a, b)| a.to_bits() == b.to_bits()));
                }
            }
        }
    }

    #[test]
    fn empty_inputs_visit_nothing() {
        let mut n = 0;
        stream_channel(&RgbImage::new(0, 5), 0, 0.0, &[(2, 11)], |_, _, _| n += 1);
        stream_channel(&RgbImage::new(3, 5), 0, 0.0, &[], |_, _, _| n += 1);
        assert_eq!(n, 0);
    }
}
