//! dlib's bilinear `resize_image`, reproduced bit for bit (spec:
//! `dlib-models.md` section 8.1).
//!
//! dlib computes most columns four at a time with f32 SIMD lanes whose
//! positions are accumulated in f32, and falls back to a scalar loop (f64
//! positions) for the columns where the last lane would read past the right
//! edge. The two paths round differently, and the upsampled image feeds the
//! CNN detector, so both are emulated exactly. Column positions and weights do
//! not depend on the row, so they are computed once per call (`ColumnPlan`);
//! rows are then independent and run in parallel.

use image::RgbImage;
use rayon::prelude::*;

/// Output sizes below this many pixels are resized on the calling thread.
const PARALLEL_MIN_PIXELS: usize = 1 << 16;

/// Per-column sampling positions for one `(in_w, out_w)` pair.
pub(super) struct ColumnPlan {
    /// Columns `0..simd_cols` come from dlib's SIMD loop.
    simd_cols: usize,
    /// SIMD columns: left source column (u32 so that gathers are 16 wide).
    left: Vec<u32>,
    /// SIMD columns: `fx` in f32.
    frac: Vec<f32>,
    /// SIMD columns: `1 - fx` in f32.
    inv_frac: Vec<f32>,
    /// Scalar columns (`simd_cols..out_w`): left source column.
    s_left: Vec<usize>,
    /// Scalar columns: right source column, clamped to the last one.
    s_right: Vec<usize>,
    /// Scalar columns: `fx` in f64.
    s_frac: Vec<f64>,
    /// Per 16 SIMD columns (`16 * i ..`): when both taps of all 16 lie in
    /// 32 consecutive source values inside the row, the first of them and
    /// each column's offset from it, for the AVX-512 permute kernel.
    chunks: Vec<Option<(usize, [i32; 16])>>,
}

impl ColumnPlan {
    pub(super) fn new(in_w: usize, out_w: usize) -> Self {
        let x_scale = (in_w as f64 - 1.0) / (out_w.saturating_sub(1).max(1) as f64);
        let x0 = -4.0 * x_scale;
        let mut lanes = [
            x0 as f32,
            (x0 + x_scale) as f32,
            (x0 + 2.0 * x_scale) as f32,
            (x0 + 3.0 * x_scale) as f32,
        ];
        let step = (4.0 * x_scale) as f32;
        let mut left = Vec::with_capacity(out_w);
        let mut frac = Vec::with_capacity(out_w);
        let mut inv_frac = Vec::with_capacity(out_w);
        let mut c = 0usize;
        while c < out_w {
            for lane in &mut lanes {
                *lane += step;
            }
            // SSE's cvttps2dq: truncation toward zero.
            let lefts = lanes.map(|v| v as i32);
            if i64::from(lefts[3]) + 1 >= in_w as i64 {
                break;
            }
            for j in 0..4 {
                if c + j < out_w {
                    let fx = lanes[j] - lefts[j] as f32;
                    left.push(lefts[j].max(0) as u32);
                    frac.push(fx);
                    inv_frac.push(1.0 - fx);
                }
            }
            c += 4;
        }
        let simd_cols = c.min(out_w);
        let n_scalar = out_w - simd_cols;
        let mut s_left = Vec::with_capacity(n_scalar);
        let mut s_right = Vec::with_capacity(n_scalar);
        let mut s_frac = Vec::with_capacity(n_scalar);
        let mut x = -x_scale + simd_cols as f64 * x_scale;
        for _ in simd_cols..out_w {
            x += x_scale;
            let l = x.floor();
            let li = (l.max(0.0) as usize).min(in_w.saturating_sub(1));
            s_left.push(li);
            s_right.push((li + 1).min(in_w.saturating_sub(1)));
            s_frac.push(x - l);
        }
        let chunks = (0..simd_cols / 16)
            .map(|i| {
                let base = left[16 * i] as usize;
                let last = left[16 * i + 15] as usize;
                if last + 1 >= base + 32 || base + 32 > in_w {
                    return None;
                }
                let mut idx = [0i32; 16];
                for (j, v) in idx.iter_mut().enumerate() {
                    *v = (left[16 * i + j] as usize - base) as i32;
                }
                Some((base, idx))
            })
            .collect();
        Self {
            chunks,
            simd_cols,
            left,
            frac,
            inv_frac,
            s_left,
            s_right,
            s_frac,
        }
    }
}

/// One output row's vertical sampling position.
#[derive(Clone, Copy)]
pub(super) struct RowPos {
    pub(super) top: usize,
    pub(super) bottom: usize,
    pub(super) frac: f64,
}

/// Row positions, accumulated in f64 by repeated addition as dlib does.
pub(super) fn row_plan(in_h: usize, out_h: usize) -> Vec<RowPos> {
    let y_scale = (in_h as f64 - 1.0) / (out_h.saturating_sub(1).max(1) as f64);
    let last = in_h.saturating_sub(1);
    let mut y = -y_scale;
    (0..out_h)
        .map(|_| {
            y += y_scale;
            let t = y.floor();
            let top = (t.max(0.0) as usize).min(last);
            RowPos {
                top,
                bottom: (top + 1).min(last),
                frac: y - t,
            }
        })
        .collect()
}

/// Runs `job(row index, row)` on every `stride`-long row of `buf`, in
/// parallel when the output (`pixels`) is large enough to pay for it.
fn for_each_row<T: Send>(
    buf: &mut [T],
    stride: usize,
    pixels: usize,
    job: impl Fn((usize, &mut [T])) + Sync + Send,
) {
    if pixels >= PARALLEL_MIN_PIXELS {
        buf.par_chunks_mut(stride)
            .enumerate()
            .with_min_len(8)
            .for_each(job);
    } else {
        buf.chunks_mut(stride).enumerate().for_each(job);
    }
}

/// Resizes an RGB image with dlib's bilinear `resize_image`, bit-exactly.
///
/// Results are truncated toward zero, never rounded, as in dlib. An empty
/// input or output size gives an all-black (or empty) image.
pub fn resize_rgb(src: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (ow, oh) = (out_w as usize, out_h as usize);
    let mut out = vec![0u8; ow * oh * 3];
    if in_w == 0 || in_h == 0 || ow == 0 || oh == 0 {
        return RgbImage::from_raw(out_w, out_h, out).unwrap_or_default();
    }
    let cols = ColumnPlan::new(in_w, ow);
    let rows = row_plan(in_h, oh);
    let data = src.as_raw();
    let stride = in_w * 3;
    let arch = pulp::Arch::new();
    let job = |(r, dst): (usize, &mut [u8])| {
        let rp = rows[r];
        let top = &data[rp.top * stride..(rp.top + 1) * stride];
        let bot = &data[rp.bottom * stride..(rp.bottom + 1) * stride];
        arch.dispatch(RgbRow {
            cols: &cols,
            fy: rp.frac,
            top,
            bot,
            dst,
        });
    };
    for_each_row(&mut out, ow * 3, ow * oh, job);
    RgbImage::from_raw(out_w, out_h, out).unwrap_or_default()
}

/// One output row of [`resize_rgb`], compiled for the CPU's best SIMD level
/// (see [`F32Row`]; same operations in the same order).
struct RgbRow<'a> {
    cols: &'a ColumnPlan,
    fy: f64,
    top: &'a [u8],
    bot: &'a [u8],
    dst: &'a mut [u8],
}

impl pulp::WithSimd for RgbRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        rgb_row(self.cols, self.fy, self.top, self.bot, self.dst);
    }
}

#[inline(always)]
fn rgb_row(cols: &ColumnPlan, fy: f64, top: &[u8], bot: &[u8], dst: &mut [u8]) {
    let tb = fy as f32;
    let inv_tb = (1.0 - fy) as f32;
    // As in `f32_row`: the clamp never changes `l` (the plan keeps the
    // right neighbour inside the row) but removes the bounds checks.
    let n = top.len().min(bot.len());
    if n >= 6 {
        let (t, b) = (&top[..n], &bot[..n]);
        let simd = cols.left.iter().zip(&cols.frac).zip(&cols.inv_frac);
        for (d, ((&l, &fx), &ifx)) in dst.chunks_exact_mut(3).zip(simd) {
            let (wtl, wtr, wbl, wbr) = (inv_tb * ifx, inv_tb * fx, tb * ifx, tb * fx);
            let l = (l as usize * 3).min(n - 6);
            for ch in 0..3 {
                let v = wtl * f32::from(t[l + ch])
                    + wtr * f32::from(t[l + 3 + ch])
                    + wbl * f32::from(b[l + ch])
                    + wbr * f32::from(b[l + 3 + ch]);
                d[ch] = v as i32 as u8;
            }
        }
    }
    for (k, c) in (cols.simd_cols..cols.simd_cols + cols.s_left.len()).enumerate() {
        let fx = cols.s_frac[k];
        let (l, r) = (cols.s_left[k] * 3, cols.s_right[k] * 3);
        for ch in 0..3 {
            let v = (1.0 - fy)
                * ((1.0 - fx) * f64::from(top[l + ch]) + fx * f64::from(top[r + ch]))
                + fy * ((1.0 - fx) * f64::from(bot[l + ch]) + fx * f64::from(bot[r + ch]));
            dst[c * 3 + ch] = v as u8;
        }
    }
}

/// Resizes one f32 plane (`w x h`, rows packed) into `dst` (`out_w x
/// out_h`, rows packed), with dlib's f32 `resize_image`, bit-exactly.
///
/// # Panics
///
/// If `src` holds fewer than `w * h` or `dst` fewer than `out_w * out_h`
/// values.
pub fn resize_plane_f32(
    src: &[f32],
    w: usize,
    h: usize,
    dst: &mut [f32],
    out_w: usize,
    out_h: usize,
) {
    resize_plane_f32_strided(src, w, w, h, dst, out_w, out_w, out_h);
}

/// [`resize_plane_f32`] on planes with row strides: row `y` of the source
/// starts at `src[y * src_stride]`, row `y` of the output at
/// `dst[y * dst_stride]`. Values of `dst` outside the `out_w x out_h`
/// rectangle are left untouched, so the planes can be sub-rectangles of
/// larger buffers (the detector's tiled pyramid).
///
/// # Panics
///
/// If a stride is smaller than its width or a slice is too short for the
/// rectangle it must hold.
#[allow(clippy::too_many_arguments)]
pub fn resize_plane_f32_strided(
    src: &[f32],
    src_stride: usize,
    w: usize,
    h: usize,
    dst: &mut [f32],
    dst_stride: usize,
    out_w: usize,
    out_h: usize,
) {
    if w == 0 || h == 0 || out_w == 0 || out_h == 0 {
        return;
    }
    assert!(src_stride >= w && dst_stride >= out_w, "stride below width");
    assert!(
        src.len() >= (h - 1) * src_stride + w && dst.len() >= (out_h - 1) * dst_stride + out_w,
        "plane slice too short"
    );
    let cols = ColumnPlan::new(w, out_w);
    let rows = row_plan(h, out_h);
    let kernel = RowKernel::new();
    let job = |(r, row): (usize, &mut [f32])| {
        let rp = rows[r];
        let top = &src[rp.top * src_stride..rp.top * src_stride + w];
        let bot = &src[rp.bottom * src_stride..rp.bottom * src_stride + w];
        kernel.f32_row(&cols, rp.frac, top, bot, &mut row[..out_w]);
    };
    let dst = &mut dst[..(out_h - 1) * dst_stride + out_w];
    for_each_row(dst, dst_stride, out_w * out_h, job);
}

/// The CPU's best row kernel for the f32 resizes, chosen once: AVX-512
/// permutes where available, otherwise `pulp`'s dispatch of the plain loop.
#[derive(Clone, Copy)]
pub(super) struct RowKernel {
    arch: pulp::Arch,
    #[cfg(target_arch = "x86_64")]
    v4: Option<pulp::x86::V4>,
}

impl RowKernel {
    pub(super) fn new() -> Self {
        Self {
            arch: pulp::Arch::new(),
            #[cfg(target_arch = "x86_64")]
            v4: pulp::x86::V4::try_new(),
        }
    }

    /// One output row of dlib's f32 `resize_image`: `top` and `bot` are the
    /// two source rows (whole width), `fy` the row's vertical fraction.
    #[inline]
    pub(super) fn f32_row(
        self,
        cols: &ColumnPlan,
        fy: f64,
        top: &[f32],
        bot: &[f32],
        dst: &mut [f32],
    ) {
        let op = F32Row {
            cols,
            fy,
            top,
            bot,
            dst,
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            return pulp::Simd::vectorize(v4, avx512::Permuted { v4, op });
        }
        self.arch.dispatch(op);
    }

    /// One row of [`resize_channel_normalised`]: the f32 resize of the
    /// channel's rows `top` and `bot` (values 0-255), truncated to u8 and
    /// normalised, dlib's scalar columns recomputed with its f64 formula.
    pub(super) fn normalised_row(
        self,
        cols: &ColumnPlan,
        fy: f64,
        top: &[f32],
        bot: &[f32],
        row: &mut [f32],
        mean: f32,
    ) {
        self.f32_row(cols, fy, top, bot, row);
        let simd = cols.simd_cols.min(row.len());
        self.arch.dispatch(TruncateNormalise {
            row: &mut row[..simd],
            mean,
        });
        for (k, v) in row[simd..].iter_mut().enumerate() {
            let fx = cols.s_frac[k];
            let (l, rr) = (cols.s_left[k], cols.s_right[k]);
            let x = (1.0 - fy) * ((1.0 - fx) * f64::from(top[l]) + fx * f64::from(top[rr]))
                + fy * ((1.0 - fx) * f64::from(bot[l]) + fx * f64::from(bot[rr]));
            *v = (f32::from(x as u8) - mean) / 256.0;
        }
    }
}

/// Channel `c` of [`resize_rgb`]`(src, out_w, out_h)` as the detector's
/// tensor holds it, `(v - mean) / 256`, bit for bit, without building the
/// resized RGB image: the channel is resized as an f32 plane with the
/// vectorised rows (dlib's SIMD columns compute the same f32 expression on
/// the same integer values), truncated to u8 as `resize_rgb` does, and the
/// few columns of dlib's scalar loop are recomputed with its f64 formula.
pub fn resize_channel_normalised(
    src: &RgbImage,
    c: usize,
    out_w: usize,
    out_h: usize,
    mean: f32,
) -> Vec<f32> {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let mut out = vec![0f32; out_w * out_h];
    if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 || c > 2 {
        return out;
    }
    let plane = channel_plane(src, c);
    let cols = ColumnPlan::new(in_w, out_w);
    let rows = row_plan(in_h, out_h);
    let kernel = RowKernel::new();
    let job = |(r, row): (usize, &mut [f32])| {
        let rp = rows[r];
        let (top, bot) = (
            &plane[rp.top * in_w..][..in_w],
            &plane[rp.bottom * in_w..][..in_w],
        );
        kernel.normalised_row(&cols, rp.frac, top, bot, row, mean);
    };
    for_each_row(&mut out, out_w, out_w * out_h, job);
    out
}

/// Channel `c` of an RGB image as an f32 plane of its 0-255 values.
pub(super) fn channel_plane(src: &RgbImage, c: usize) -> Vec<f32> {
    let mut out = vec![0f32; src.as_raw().len() / 3];
    channel_row(pulp::Arch::new(), src.as_raw(), c, &mut out);
    out
}

/// Channel `c` of the interleaved RGB pixels `rgb` as f32 values into
/// `dst` (as many as there are whole pixels in both), at `arch`'s SIMD
/// level.
pub(super) fn channel_row(arch: pulp::Arch, rgb: &[u8], c: usize, dst: &mut [f32]) {
    arch.dispatch(ChannelRow {
        rgb,
        c: c.min(2),
        dst,
    });
}

/// [`channel_row`] compiled for the CPU's best SIMD level: the chain's
/// whole-plane `step_by(3)` copy it replaced stayed scalar (with the plane's
/// write and reread, 4.5 ms of a 1 MP photo's three-channel chain).
struct ChannelRow<'a> {
    rgb: &'a [u8],
    c: usize,
    dst: &'a mut [f32],
}

impl pulp::WithSimd for ChannelRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let c = self.c;
        for (d, p) in self.dst.iter_mut().zip(self.rgb.chunks_exact(3)) {
            *d = f32::from(p[c]);
        }
    }
}

/// `resize_rgb`'s truncation to u8 and the detector's normalisation of a
/// row of dlib's SIMD columns: `(v as i32 as u8 - mean) / 256`. The values
/// are in `[0, 256)` (weights in `[0, 1]` summing to 1 within a few ulps,
/// taps at most 255), where that truncation is `trunc(v)`, which vectorises
/// (the saturating casts do not).
struct TruncateNormalise<'a> {
    row: &'a mut [f32],
    mean: f32,
}

impl pulp::WithSimd for TruncateNormalise<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for v in self.row.iter_mut() {
            *v = (v.trunc() - self.mean) / 256.0;
        }
    }
}

/// A rectangle of a plane, in pixels: `w x h` starting at column `x`, row `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneRect {
    /// Leftmost column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width in columns.
    pub w: usize,
    /// Height in rows.
    pub h: usize,
}

/// Resizes the `from` rectangle of a plane into its `to` rectangle (which
/// must not overlap `from`), as dlib builds the CNN pyramid inside one
/// tensor. The source rectangle is copied out first, so the two may share
/// rows.
///
/// # Panics
///
/// If either rectangle does not fit in the plane (`stride` columns, as many
/// rows as `plane.len() / stride`).
pub fn resize_plane_f32_within(plane: &mut [f32], stride: usize, from: PlaneRect, to: PlaneRect) {
    if from.w == 0 || from.h == 0 || to.w == 0 || to.h == 0 {
        return;
    }
    assert!(
        from.x + from.w <= stride && to.x + to.w <= stride,
        "rectangle wider than the plane"
    );
    let mut src = Vec::with_capacity(from.w * from.h);
    for r in 0..from.h {
        let s = (from.y + r) * stride + from.x;
        src.extend_from_slice(&plane[s..s + from.w]);
    }
    let start = to.y * stride + to.x;
    resize_plane_f32_strided(
        &src,
        from.w,
        from.w,
        from.h,
        &mut plane[start..],
        stride,
        to.w,
        to.h,
    );
}

/// One output row of [`resize_plane_f32_strided`], compiled for the CPU's
/// best SIMD level (`pulp`): the body is plain scalar code, but inside
/// AVX2/AVX-512 it vectorises with gathers. The operations and their order
/// are unchanged (Rust never fuses a multiply and an add on its own), so the
/// values stay dlib's bit for bit.
struct F32Row<'a> {
    cols: &'a ColumnPlan,
    fy: f64,
    top: &'a [f32],
    bot: &'a [f32],
    dst: &'a mut [f32],
}

impl pulp::WithSimd for F32Row<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        f32_row(self.cols, self.fy, self.top, self.bot, self.dst);
    }
}

#[inline(always)]
fn f32_row(cols: &ColumnPlan, fy: f64, top: &[f32], bot: &[f32], dst: &mut [f32]) {
    f32_simd_cols(cols, fy, top, bot, dst, 0..cols.simd_cols);
    f32_tail_cols(cols, fy, top, bot, dst);
}

/// The columns in `range` (all below `simd_cols`) of dlib's SIMD loop.
#[inline(always)]
fn f32_simd_cols(
    cols: &ColumnPlan,
    fy: f64,
    top: &[f32],
    bot: &[f32],
    dst: &mut [f32],
    range: std::ops::Range<usize>,
) {
    let tb = fy as f32;
    let inv_tb = (1.0 - fy) as f32;
    // Both rows hold the whole source width and the plan keeps `l + 1`
    // inside it, so clamping `l` to `len - 2` changes nothing but lets the
    // compiler drop the bounds checks, which would stop vectorisation.
    let n = top.len().min(bot.len());
    if n < 2 {
        return;
    }
    let (top, bot) = (&top[..n], &bot[..n]);
    let r = range.start..range.end.min(dst.len()).min(cols.simd_cols);
    let simd = cols.left[r.clone()]
        .iter()
        .zip(&cols.frac[r.clone()])
        .zip(&cols.inv_frac[r.clone()]);
    for (d, ((&l, &fx), &ifx)) in dst[r].iter_mut().zip(simd) {
        let l = (l as usize).min(n - 2);
        *d = inv_tb * ifx * top[l]
            + inv_tb * fx * top[l + 1]
            + tb * ifx * bot[l]
            + tb * fx * bot[l + 1];
    }
}

/// The columns of dlib's scalar loop (those after `simd_cols`).
#[inline(always)]
fn f32_tail_cols(cols: &ColumnPlan, fy: f64, top: &[f32], bot: &[f32], dst: &mut [f32]) {
    for (k, c) in (cols.simd_cols..cols.simd_cols + cols.s_left.len()).enumerate() {
        let fx = cols.s_frac[k] as f32;
        let (l, r) = (cols.s_left[k], cols.s_right[k]);
        let t = (1.0 - fx) * top[l] + fx * top[r];
        let b = (1.0 - fx) * bot[l] + fx * bot[r];
        dst[c] = ((1.0 - fy) * f64::from(t) + fy * f64::from(b)) as f32;
    }
}

/// AVX-512 rows: 16 columns at a time, their taps picked from 32 source
/// values with two-register permutes instead of gathers. Same operations in
/// the same order as [`f32_row`], so the same bits.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::{__m512, __m512i};

    use super::F32Row;

    /// [`F32Row`] run on the AVX-512 kernel.
    pub(super) struct Permuted<'a> {
        pub v4: pulp::x86::V4,
        pub op: F32Row<'a>,
    }

    impl pulp::WithSimd for Permuted<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            let Permuted { v4, op } = self;
            let F32Row {
                cols,
                fy,
                top,
                bot,
                dst,
            } = op;
            let f = v4.avx512f;
            let tb = f._mm512_set1_ps(fy as f32);
            let inv_tb = f._mm512_set1_ps((1.0 - fy) as f32);
            let one = f._mm512_set1_epi32(1);
            let load = |s: &[f32]| -> __m512 {
                let mut a = [0f32; 16];
                a.copy_from_slice(&s[..16]);
                pulp::cast(a)
            };
            for (i, chunk) in cols.chunks.iter().enumerate() {
                let c0 = 16 * i;
                let Some((base, idx)) = chunk else {
                    // Taps too far apart or at the row's right edge.
                    super::f32_simd_cols(cols, fy, top, bot, dst, c0..c0 + 16);
                    continue;
                };
                let (t0, t1) = (load(&top[*base..]), load(&top[base + 16..]));
                let (b0, b1) = (load(&bot[*base..]), load(&bot[base + 16..]));
                let il: __m512i = pulp::cast(*idx);
                let ir = f._mm512_add_epi32(il, one);
                let tl = f._mm512_permutex2var_ps(t0, il, t1);
                let tr = f._mm512_permutex2var_ps(t0, ir, t1);
                let bl = f._mm512_permutex2var_ps(b0, il, b1);
                let br = f._mm512_permutex2var_ps(b0, ir, b1);
                let fx = load(&cols.frac[c0..]);
                let ifx = load(&cols.inv_frac[c0..]);
                // inv_tb * ifx * tl + inv_tb * fx * tr + tb * ifx * bl + tb * fx * br,
                // left to right, as `f32_simd_cols`.
                let a = f._mm512_mul_ps(f._mm512_mul_ps(inv_tb, ifx), tl);
                let b = f._mm512_mul_ps(f._mm512_mul_ps(inv_tb, fx), tr);
                let c = f._mm512_mul_ps(f._mm512_mul_ps(tb, ifx), bl);
                let d = f._mm512_mul_ps(f._mm512_mul_ps(tb, fx), br);
                let v = f._mm512_add_ps(f._mm512_add_ps(f._mm512_add_ps(a, b), c), d);
                let out: [f32; 16] = pulp::cast(v);
                dst[c0..c0 + 16].copy_from_slice(&out);
            }
            let from = 16 * cols.chunks.len();
            super::f32_simd_cols(cols, fy, top, bot, dst, from..cols.simd_cols);
            super::f32_tail_cols(cols, fy, top, bot, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_sizes_resize_without_panicking(
            (w, h, ow, oh) in (1u32..24, 1u32..24, 1u32..40, 1u32..40)
        ) {
            let src = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 11) as u8, (y * 7) as u8, 9]));
            let out = resize_rgb(&src, ow, oh);
            proptest::prop_assert_eq!((out.width(), out.height()), (ow, oh));
            let plane: Vec<f32> = src.as_raw().iter().step_by(3).map(|&v| f32::from(v)).collect();
            let mut dst = vec![f32::NAN; (ow * oh) as usize];
            resize_plane_f32(&plane, w as usize, h as usize, &mut dst, ow as usize, oh as usize);
            proptest::prop_assert!(dst.iter().all(|v| (0.0..=255.0).contains(v)));
        }
    }

    /// dlib's formula for one plane, plain scalar code (not dispatched to a
    /// SIMD level), to check that the vectorised rows give the same bits.
    fn plane_reference(src: &[f32], w: usize, h: usize, ow: usize, oh: usize) -> Vec<f32> {
        let cols = ColumnPlan::new(w, ow);
        let rows = row_plan(h, oh);
        let mut out = vec![0f32; ow * oh];
        for (r, rp) in rows.iter().enumerate() {
            let (top, bot) = (&src[rp.top * w..][..w], &src[rp.bottom * w..][..w]);
            let (tb, inv_tb) = (rp.frac as f32, (1.0 - rp.frac) as f32);
            for c in 0..cols.simd_cols {
                let (l, fx, ifx) = (cols.left[c] as usize, cols.frac[c], cols.inv_frac[c]);
                out[r * ow + c] = inv_tb * ifx * top[l]
                    + inv_tb * fx * top[l + 1]
                    + tb * ifx * bot[l]
                    + tb * fx * bot[l + 1];
            }
            for (k, c) in (cols.simd_cols..ow).enumerate() {
                let fx = cols.s_frac[k] as f32;
                let (l, rr) = (cols.s_left[k], cols.s_right[k]);
                let t = (1.0 - fx) * top[l] + fx * top[rr];
                let b = (1.0 - fx) * bot[l] + fx * bot[rr];
                out[r * ow + c] = ((1.0 - rp.frac) * f64::from(t) + rp.frac * f64::from(b)) as f32;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn vectorised_rows_equal_the_scalar_formula(
            (w, h, ow, oh, seed) in (2usize..200, 2usize..30, 1usize..200, 1usize..30, 0u32..1000)
        ) {
            let src: Vec<f32> = (0..w * h)
                .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 997.0 - 0.5)
                .collect();
            let mut dst = vec![0f32; ow * oh];
            resize_plane_f32(&src, w, h, &mut dst, ow, oh);
            let expect = plane_reference(&src, w, h, ow, oh);
            proptest::prop_assert!(dst.iter().zip(&expect).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    proptest::proptest! {
        #[test]
        fn normalised_channel_equals_resize_rgb(
            (w, h, ow, oh, seed) in (1u32..120, 1u32..20, 1usize..260, 1usize..30, 0u32..1000)
        ) {
            let src = RgbImage::from_fn(w, h, |x, y| {
                let v = (x * 7919 + y * 104_729 + seed).wrapping_mul(2_654_435_761);
                image::Rgb([(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8])
            });
            let rgb = resize_rgb(&src, ow as u32, oh as u32);
            for c in 0..3 {
                let mean = [122.782, 117.001, 104.298][c];
                let got = resize_channel_normalised(&src, c, ow, oh, mean);
                let expect: Vec<f32> = rgb.as_raw()[c..]
                    .iter()
                    .step_by(3)
                    .map(|&v| (f32::from(v) - mean) / 256.0)
                    .collect();
                proptest::prop_assert!(got.iter().zip(&expect).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }

    #[test]
    fn identity_size_copies_the_image() {
        let src = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 200]));
        let out = resize_rgb(&src, 7, 5);
        assert_eq!(out, src);
    }

    #[test]
    fn constant_plane_stays_constant_up_to_truncation() {
        let src = vec![0.25f32; 13 * 9];
        let mut dst = vec![0.0f32; 31 * 20];
        resize_plane_f32(&src, 13, 9, &mut dst, 31, 20);
        assert!(dst.iter().all(|&v| (v - 0.25).abs() < 1e-6));
    }

    #[test]
    fn strided_resize_leaves_the_rest_untouched() {
        let src: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let mut dst = vec![-1.0f32; 10 * 10];
        resize_plane_f32_strided(&src, 8, 8, 5, &mut dst[12..], 10, 4, 3);
        for r in 0..10 {
            for c in 0..10 {
                let inside = (1..4).contains(&r) && (2..6).contains(&c);
                assert_eq!(dst[r * 10 + c] == -1.0, !inside, "({r}, {c})");
            }
        }
        // Corners are sampled exactly (align-corners convention).
        assert_eq!(dst[12], 0.0);
        assert_eq!(dst[3 * 10 + 5], 39.0);
    }

    #[test]
    fn within_plane_matches_separate_buffers() {
        let stride = 30;
        let mut plane: Vec<f32> = (0..stride * 20).map(|v| (v % 97) as f32 * 0.01).collect();
        let from = PlaneRect {
            x: 0,
            y: 0,
            w: 20,
            h: 12,
        };
        let to = PlaneRect {
            x: 21,
            y: 5,
            w: 8,
            h: 10,
        };
        let src: Vec<f32> = (0..from.h)
            .flat_map(|r| plane[r * stride..r * stride + from.w].to_vec())
            .collect();
        let mut expect = vec![0.0f32; to.w * to.h];
        resize_plane_f32(&src, from.w, from.h, &mut expect, to.w, to.h);
        resize_plane_f32_within(&mut plane, stride, from, to);
        for r in 0..to.h {
            let s = (to.y + r) * stride + to.x;
            assert_eq!(&plane[s..s + to.w], &expect[r * to.w..(r + 1) * to.w]);
        }
    }
}
