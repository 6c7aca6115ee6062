//! Direct convolution: output pixels accumulated in SIMD registers straight
//! from the input planes, with no im2col matrix and no GEMM packing.
//!
//! For the detector's layers (16-45 filters over 75-1125 taps, on planes of
//! hundreds of pixels a side) im2col + GEMM spends as long moving data as
//! multiplying: every panel copies `K x 256` input values into a matrix and
//! gemm repacks the `F x K` weights, then 45 x 256 outputs are computed from
//! them. Here a block of `FB` filters by `XB` vectors of neighbouring output
//! pixels of one row lives in registers (27 of the 32 on AVX-512); each tap
//! loads `XB` input vectors and broadcasts `FB` weights for `FB * XB` FMAs.
//!
//! Every conv is first rewritten as a stride-1 one over *source planes*: the
//! zero-padded input split into its `stride^2` phases (one phase, just the
//! padded input, for stride 1), so that tap `(c, ky, kx)` of output pixel
//! `(y, x)` reads source plane `(c, ky % s, kx % s)` at `(y + ky / s, x + kx
//! / s)`, a contiguous run along `x`. The planes are padded on the right so
//! the last vector block of a row never reads out of bounds.
//!
//! The sums run over taps in dlib's weight order (channel, row, column) with
//! one FMA each, so results differ from the GEMM route only by rounding.

use crate::dlib::dnn::Conv;
use crate::nn::conv::{apply_epilogue, out_size, Epilogue};
use crate::nn::ops;
use crate::nn::tensor::Tensor;

/// The input rewritten as stride-1 source planes, plus each tap's offset.
struct Source {
    data: Vec<f32>,
    /// Row length of every source plane.
    sw: usize,
    /// Per tap, in weight order: index of the value read by output (0, 0).
    taps: Vec<usize>,
}

impl Source {
    /// Builds the source planes of `input` for `conv`, wide enough for `wr`
    /// output columns.
    fn new(input: &Tensor, conv: &Conv, ho: usize, wr: usize) -> Source {
        let (sy, sx) = (conv.stride_y, conv.stride_x);
        let (oy_max, ox_max) = ((conv.kernel_h - 1) / sy, (conv.kernel_w - 1) / sx);
        let (sh, sw) = (ho + oy_max, wr + ox_max);
        let plane_len = sh * sw;
        let phases = sy * sx;
        if (sy, sx) == (1, 1) {
            return Source::stride_1(input, conv, sh, sw);
        }
        let mut data = vec![0f32; input.c * phases * plane_len];
        // Input value (iy, ix) sits at padded (Y, X) = (iy + pad_y, ix +
        // pad_x), i.e. in phase (Y % sy, X % sx) at (Y / sy, X / sx).
        for c in 0..input.c {
            let src = input.plane(c);
            for (iy, row) in src.chunks_exact(input.w.max(1)).enumerate() {
                let y = iy + conv.pad_y;
                let r = y / sy;
                if r >= sh {
                    break;
                }
                let phase_row = |px: usize| (c * phases + (y % sy) * sx + px) * plane_len + r * sw;
                if sx == 1 {
                    let n = row.len().min(sw.saturating_sub(conv.pad_x));
                    let at = phase_row(0) + conv.pad_x;
                    data[at..at + n].copy_from_slice(&row[..n]);
                    continue;
                }
                if sx == 2 && conv.pad_x % 2 == 0 {
                    // Even padding keeps input parity: split the row's
                    // column pairs into the two phases in one pass (this
                    // vectorises; the general loop below does not).
                    let q0 = conv.pad_x / 2;
                    let n = row.len().div_ceil(2).min(sw.saturating_sub(q0));
                    let (e0, o0) = (phase_row(0) + q0, phase_row(1) + q0);
                    let (lo, hi) = data.split_at_mut(o0);
                    let (even, odd) = (&mut lo[e0..e0 + n], &mut hi[..n]);
                    let pairs = row.chunks_exact(2);
                    let last = pairs.remainder().first().copied();
                    for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                        *e = p[0];
                        *o = p[1];
                    }
                    if let (Some(v), Some(e)) = (last, even.get_mut(row.len() / 2)) {
                        *e = v;
                    }
                    continue;
                }
                for (ix, &v) in row.iter().enumerate() {
                    let x = ix + conv.pad_x;
                    if x / sx >= sw {
                        break;
                    }
                    data[phase_row(x % sx) + x / sx] = v;
                }
            }
        }
        Source {
            data,
            sw,
            taps: Source::taps(conv, sh, sw),
        }
    }

    /// [`Source::new`] for stride 1: one plane per channel, the input with
    /// its zero border, `sh x sw`. Written row by row and in order, border
    /// included, so the buffer is not zero-filled first (zero-filling, then
    /// copying rows in, was 8% of an embedding).
    #[inline(always)]
    fn stride_1(input: &Tensor, conv: &Conv, sh: usize, sw: usize) -> Source {
        let mut data = Vec::with_capacity(input.c * sh * sw);
        let (left, w) = (conv.pad_x.min(sw), input.w);
        let n = w.min(sw - left);
        for c in 0..input.c {
            let src = input.plane(c);
            for r in 0..sh {
                match r.checked_sub(conv.pad_y).filter(|&iy| iy < input.h) {
                    Some(iy) => {
                        data.resize(data.len() + left, 0.0);
                        data.extend_from_slice(&src[iy * w..iy * w + n]);
                        data.resize(data.len() + (sw - left - n), 0.0);
                    }
                    None => data.resize(data.len() + sw, 0.0),
                }
            }
        }
        Source {
            data,
            sw,
            taps: Source::taps(conv, sh, sw),
        }
    }

    /// Per tap, in weight order, the index read by output (0, 0) in source
    /// planes `sh x sw`.
    fn taps(conv: &Conv, sh: usize, sw: usize) -> Vec<usize> {
        let (sy, sx) = (conv.stride_y, conv.stride_x);
        let (phases, plane_len) = (sy * sx, sh * sw);
        let mut taps = Vec::with_capacity(conv.in_channels * conv.kernel_h * conv.kernel_w);
        for c in 0..conv.in_channels {
            for ky in 0..conv.kernel_h {
                for kx in 0..conv.kernel_w {
                    let plane = c * phases + (ky % sy) * sx + kx % sx;
                    taps.push(plane * plane_len + (ky / sy) * sw + kx / sx);
                }
            }
        }
        taps
    }
}

/// Whether [`conv2d_direct`] suits `conv` on an output `wo` pixels wide: it
/// needs several filters to share each input load (or one filter, whose
/// accumulators it keeps in registers) and, with several filters, rows of
/// at least about a vector (narrower planes go to GEMM; the ResNet calls
/// [`conv2d_packed`] itself).
pub fn suits(conv: &Conv, wo: usize) -> bool {
    // Measured per layer on one core (`examples/conv_layers` at small
    // sides): with one filter the direct kernel beats the GEMM route at
    // every width (14 vs 7 GFLOP/s at 22 columns, 3.2 vs 2.0 at 6); with
    // stride 1 from 12 columns on (40 vs 30-34 GFLOP/s at 12, 60 vs 38 at
    // 26), its partly empty tail vectors costing less than im2col; with
    // stride 2 only from 32 (at 16-29 columns the two are within 10%).
    let min_width = match (conv.filters, conv.stride_x) {
        (1, _) => 1,
        (f, 1) if f >= 8 => 12,
        (f, _) if f >= 8 => 32,
        _ => return false,
    };
    wo >= min_width
}

/// `conv` followed by `epilogue`, computed directly (see the module docs).
pub fn conv2d_direct(
    input: &Tensor,
    conv: &Conv,
    epilogue: Epilogue<'_>,
    ho: usize,
    wo: usize,
) -> Tensor {
    pulp::Arch::new().dispatch(Direct {
        input,
        conv,
        epilogue,
        ho,
        wo,
    })
}

struct Direct<'a> {
    input: &'a Tensor,
    conv: &'a Conv,
    epilogue: Epilogue<'a>,
    ho: usize,
    wo: usize,
}

impl pulp::WithSimd for Direct<'_> {
    type Output = Tensor;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> Tensor {
        let lanes = core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>();
        // Accumulator blocks that fit the register file: 27 of AVX-512's 32
        // registers (plus 3 input vectors and a broadcast), 12 of AVX2's 16.
        let f = self.conv.filters;
        if f == 1 {
            // The detector's last layer (45 -> 1, 9x9): one weight and four
            // input vectors per tap, accumulators kept in registers over
            // all 3645 taps (the shifted-row kernel reloaded and stored its
            // accumulators every tap: 12 GFLOP/s).
            return run::<S, 1, 4>(simd, lanes, self);
        }
        if lanes >= 16 {
            if f % 9 == 0 {
                run::<S, 9, 3>(simd, lanes, self)
            } else {
                run::<S, 8, 3>(simd, lanes, self)
            }
        } else {
            run::<S, 4, 3>(simd, lanes, self)
        }
    }
}

#[inline(always)]
fn run<S: pulp::Simd, const FB: usize, const XB: usize>(
    simd: S,
    lanes: usize,
    d: Direct<'_>,
) -> Tensor {
    let Direct {
        input,
        conv,
        epilogue,
        ho,
        wo,
    } = d;
    let block = lanes * XB;
    // Whole blocks of XB vectors, then one block of as few vectors as the
    // row's remainder needs: padding every row to whole blocks wasted up to
    // a third of the work on the detector's narrow planes (a 97-pixel row
    // computed 144 outputs).
    let full = wo / block * block;
    let tail = (wo - full).div_ceil(lanes);
    let wr = full + tail * lanes;
    let src = Source::new(input, conv, ho, wr);
    let k = src.taps.len();
    let f = conv.filters;
    let blocks = f.div_ceil(FB);
    // One tap's FB broadcasts read one cache line or two.
    let packed = regroup(conv, FB);
    let mut out = Tensor::zeros(f, ho, wo);
    let plane = ho * wo;
    // Every filter block's sums of one output row; filter `fi` at `fi * wr`.
    let mut row = vec![0f32; blocks * FB * wr];
    for y in 0..ho {
        let y_off = y * src.sw;
        // Pixel blocks outside, filter blocks inside: a pixel block's taps
        // read ~40 KB of source rows (every channel and phase), which stay
        // in L1 for all the filter blocks, while the weights stream in order
        // (which the prefetcher follows; the source rows, a few hundred
        // separate streams, it does not).
        for x0 in (0..full).step_by(block) {
            for b in 0..blocks {
                let wb = &packed[b * k * FB..(b + 1) * k * FB];
                let rb = &mut row[b * FB * wr..(b + 1) * FB * wr];
                block_sums::<S, FB, XB>(simd, &src, wb, y_off + x0, rb, wr, x0);
            }
        }
        for b in 0..blocks {
            let wb = &packed[b * k * FB..(b + 1) * k * FB];
            let rb = &mut row[b * FB * wr..(b + 1) * FB * wr];
            match tail {
                0 => {}
                1 => block_sums::<S, FB, 1>(simd, &src, wb, y_off + full, rb, wr, full),
                2 => block_sums::<S, FB, 2>(simd, &src, wb, y_off + full, rb, wr, full),
                3 => block_sums::<S, FB, 3>(simd, &src, wb, y_off + full, rb, wr, full),
                // `tail <= XB`: only a 4-vector kernel gets here, with 4.
                _ => block_sums::<S, FB, XB>(simd, &src, wb, y_off + full, rb, wr, full),
            }
        }
        for fi in 0..f {
            let start = fi * plane + y * wo;
            apply_epilogue(
                &row[fi * wr..fi * wr + wo],
                &mut out.data[start..start + wo],
                conv.biases[fi],
                epilogue,
                fi,
            );
        }
    }
    out
}

/// The sums of `FB` filters (weights `wb`, `[tap][filter]`) over `XB`
/// vectors of output pixels whose first tap reads `src.data[tap + at]`,
/// stored at column `x0` of each filter's row of `row` (`wr` apart).
#[inline(always)]
fn block_sums<S: pulp::Simd, const FB: usize, const XB: usize>(
    simd: S,
    src: &Source,
    wb: &[f32],
    at: usize,
    row: &mut [f32],
    wr: usize,
    x0: usize,
) {
    let lanes = core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>();
    let block = lanes * XB;
    let mut acc = [[simd.splat_f32s(0.0); XB]; FB];
    for (&tap, w) in src.taps.iter().zip(wb.chunks_exact(FB)) {
        let at = tap + at;
        let (vs, _) = S::as_simd_f32s(&src.data[at..at + block]);
        let mut v = [simd.splat_f32s(0.0); XB];
        for (vj, s) in v.iter_mut().zip(vs) {
            *vj = *s;
        }
        for (accf, &wf) in acc.iter_mut().zip(w) {
            let wv = simd.splat_f32s(wf);
            for (a, vj) in accf.iter_mut().zip(&v) {
                *a = simd.mul_add_f32s(wv, *vj, *a);
            }
        }
    }
    for (fl, accf) in acc.iter().enumerate() {
        let dst = &mut row[fl * wr + x0..fl * wr + x0 + block];
        let (ds, _) = S::as_mut_simd_f32s(dst);
        for (dv, a) in ds.iter_mut().zip(accf) {
            *dv = *a;
        }
    }
}

/// How far ahead of its reads [`run_flat`] prefetches weights, in taps.
const PREFETCH_TAPS: usize = 16;

/// Weights per tap chunk of [`conv2d_packed`]: 32 KiB of f32.
const L1_WEIGHT_FLOATS: usize = 8192;

/// A conv's weights regrouped once, at model load, for
/// [`conv2d_packed`]: groups of `group` filters (64 or 32), each stored
/// `[tap][filter in group]`, so one tap's filters are contiguous vectors and
/// consecutive taps are consecutive in memory. (One `[tap][all filters]`
/// array put the taps of a 64-filter slice 512 B-1 KiB apart, so a chunk's
/// weights fell into a quarter of L1's sets and evicted each other.)
#[derive(Debug, Clone)]
pub struct PackedWeights {
    data: Vec<f32>,
    /// Filters per group; 0 when the filter count suits no group size.
    group: usize,
    /// The same weights in groups of 32 filters, for the flat kernel of
    /// planes of at most 9 pixels, made on first use: that kernel streams
    /// every weight once, 32 filters at a time, and reading 32 of each
    /// tap's 64 filters skipped through memory at a stride that left the
    /// ResNet's 3x3 layers ~15% slower.
    narrow: std::sync::OnceLock<Vec<f32>>,
}

impl PackedWeights {
    /// Regroups `conv`'s weights (dlib's `[filter][channel][row][col]`).
    pub fn new(conv: &Conv) -> PackedWeights {
        let Some(group) = [64, 32].into_iter().find(|g| conv.filters % g == 0) else {
            return PackedWeights {
                data: Vec::new(),
                group: 0,
                narrow: Default::default(),
            };
        };
        PackedWeights {
            data: regroup(conv, group),
            group,
            narrow: Default::default(),
        }
    }

    /// The weights in groups of 32 filters (`conv` is the conv these were
    /// packed from), regrouped on first use.
    fn narrow(&self, conv: &Conv) -> &[f32] {
        self.narrow.get_or_init(|| regroup(conv, 32))
    }
}

/// `conv`'s weights (dlib's `[filter][channel][row][col]`, i.e. `[filter]
/// [tap]`) as `[filter block][tap][filter in block]` for blocks of `group`
/// filters, the last block padded with zero filters.
fn regroup(conv: &Conv, group: usize) -> Vec<f32> {
    let k = conv.in_channels * conv.kernel_h * conv.kernel_w;
    let mut data = vec![0f32; conv.filters.div_ceil(group) * k * group];
    for (fi, w) in conv.weights.chunks_exact(k.max(1)).enumerate() {
        let (b, j) = (fi / group, fi % group);
        for (t, &v) in w.iter().enumerate() {
            data[(b * k + t) * group + j] = v;
        }
    }
    data
}

/// `conv` followed by `epilogue`, vectorised over filters: for the ResNet's
/// small planes (72 pixels a side down to 1) and many filters (32-256).
///
/// A block of `PB` output pixels of one row by `FV` vectors of filters lives
/// in registers; each tap broadcasts `PB` input values and loads `FV` weight
/// vectors from `packed` (made once at load, so unlike GEMM nothing is
/// repacked per call). Results go to a pixel-major scratch and are
/// transposed into the output planes with the epilogue. Falls back to
/// [`crate::nn::conv::conv2d`] when the filter count is not a multiple of 32.
pub fn conv2d_packed(
    input: &Tensor,
    conv: &Conv,
    packed: &PackedWeights,
    epilogue: Epilogue<'_>,
) -> Tensor {
    let ho = out_size(input.h, conv.kernel_h, conv.stride_y, conv.pad_y);
    let wo = out_size(input.w, conv.kernel_w, conv.stride_x, conv.pad_x);
    if ho == 0 || wo == 0 {
        return Tensor::zeros(conv.filters, ho, wo);
    }
    pulp::Arch::new().dispatch(FilterVec {
        input,
        conv,
        packed,
        epilogue,
        residual: None,
        ho,
        wo,
    })
}

/// [`conv2d_packed`] followed by dlib's residual add: `conv`, the bias and
/// `epilogue.affine`, plus `residual`, then `epilogue.relu`, exactly as
/// `conv2d_packed` without relu, [`ops::add_prev`] and [`ops::relu`]
/// compute it. Where `residual` has the output's height and width (and at
/// most its channels; the missing ones count as zero, as in `add_prev`)
/// the add and relu happen while the sums are transposed into planes,
/// saving two passes over the output; other shapes take the three steps.
pub fn conv2d_packed_residual(
    input: &Tensor,
    conv: &Conv,
    packed: &PackedWeights,
    epilogue: Epilogue<'_>,
    residual: &Tensor,
) -> Tensor {
    let ho = out_size(input.h, conv.kernel_h, conv.stride_y, conv.pad_y);
    let wo = out_size(input.w, conv.kernel_w, conv.stride_x, conv.pad_x);
    if ho == 0 || wo == 0 || (residual.h, residual.w) != (ho, wo) || residual.c > conv.filters {
        let y = conv2d_packed(input, conv, packed, epilogue.without_relu());
        return add_relu(y, residual, epilogue.relu);
    }
    pulp::Arch::new().dispatch(FilterVec {
        input,
        conv,
        packed,
        epilogue,
        residual: Some(residual),
        ho,
        wo,
    })
}

/// `add_prev(y, residual)`, then relu if asked.
fn add_relu(y: Tensor, residual: &Tensor, relu: bool) -> Tensor {
    let mut x = ops::add_prev(y, residual);
    if relu {
        ops::relu(&mut x);
    }
    x
}

struct FilterVec<'a> {
    input: &'a Tensor,
    conv: &'a Conv,
    packed: &'a PackedWeights,
    epilogue: Epilogue<'a>,
    /// Added before the relu (see [`conv2d_packed_residual`]); the output's
    /// height and width, at most its channels.
    residual: Option<&'a Tensor>,
    /// Output size, both at least 1.
    ho: usize,
    wo: usize,
}

impl FilterVec<'_> {
    /// The same through [`crate::nn::conv::conv2d`], for filter counts the
    /// packed kernels do not take.
    fn fallback(self) -> Tensor {
        let Some(residual) = self.residual else {
            return crate::nn::conv::conv2d(self.input, self.conv, self.epilogue);
        };
        let y = crate::nn::conv::conv2d(self.input, self.conv, self.epilogue.without_relu());
        add_relu(y, residual, self.epilogue.relu)
    }
}

impl pulp::WithSimd for FilterVec<'_> {
    type Output = Tensor;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> Tensor {
        let lanes = core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>();
        let g = self.packed.group;
        let pixels = self.ho * self.wo;
        // 24 accumulators of AVX-512's 32 registers, 12 of AVX2's 16.
        if g == 0 || g % lanes != 0 {
            self.fallback()
        } else if lanes >= 16 && g % (4 * lanes) == 0 && pixels <= 3 {
            let weights = &self.packed.data;
            run_flat::<S, 3, 4>(simd, lanes, self, weights, g)
        } else if lanes >= 16 && self.conv.filters % 32 == 0 && pixels <= 9 {
            let weights = self.packed.narrow(self.conv);
            run_flat::<S, 9, 2>(simd, lanes, self, weights, 32)
        } else if lanes >= 16 && g % (4 * lanes) == 0 {
            // Pixel blocks of 6, 4 or 3, whichever pads the row least (the
            // ResNet's 64-256 filter stages are 17, 8 and 4 pixels wide).
            let wo = self.wo;
            let padded = |pb: usize| wo.div_ceil(pb) * pb;
            match [6, 4, 3].into_iter().min_by_key(|&pb| padded(pb)) {
                Some(4) => run_filter_vec::<S, 4, 4>(simd, lanes, self),
                Some(3) => run_filter_vec::<S, 3, 4>(simd, lanes, self),
                _ => run_filter_vec::<S, 6, 4>(simd, lanes, self),
            }
        } else if lanes >= 16 && g % (2 * lanes) == 0 {
            run_filter_vec::<S, 12, 2>(simd, lanes, self)
        } else if g % (4 * lanes) == 0 {
            run_filter_vec::<S, 3, 4>(simd, lanes, self)
        } else {
            self.fallback()
        }
    }
}

/// [`run_filter_vec`] for tiny planes (the ResNet's 3x3 and 1x1 conv
/// outputs): the output pixels in blocks of `PB` regardless of rows, the
/// input values each tap needs gathered into one contiguous run per block
/// first, and each weight read once per block. Row blocks of 3 left a 3x3
/// layer at a third of the machine's peak, bound by per-tap overhead and by
/// streaming its 2.4 MB of weights once per row.
#[inline(always)]
fn run_flat<S: pulp::Simd, const PB: usize, const FV: usize>(
    simd: S,
    lanes: usize,
    d: FilterVec<'_>,
    packed: &[f32],
    group: usize,
) -> Tensor {
    let FilterVec {
        input,
        conv,
        epilogue,
        residual,
        ho,
        wo,
        ..
    } = d;
    let (f, n) = (conv.filters, ho * wo);
    let blocks = n.div_ceil(PB);
    let src = Source::new(input, conv, ho, wo);
    let k = src.taps.len();
    // cols[(b * k + t) * PB + p]: tap t's input value for pixel b * PB + p
    // (zero past the last pixel).
    let mut cols = vec![0f32; blocks * k * PB];
    for (b, block) in cols.chunks_exact_mut(k * PB).enumerate() {
        for (col, &tap) in block.chunks_exact_mut(PB).zip(&src.taps) {
            for (p, c) in (b * PB..n).zip(col.iter_mut()) {
                *c = src.data[tap + (p / wo) * src.sw + p % wo];
            }
        }
    }
    let width = FV * lanes;
    let prefetch = Prefetch::new();
    // sums[p * f + filter]
    let mut sums = vec![0f32; blocks * PB * f];
    for gi in 0..f / group {
        let base = gi * k * group;
        let weights = &packed[base..base + k * group];
        for sub in (0..group).step_by(width) {
            for (b, block) in cols.chunks_exact(k * PB).enumerate() {
                let mut acc = [[simd.splat_f32s(0.0); FV]; PB];
                for (t, (w, xs)) in weights
                    .chunks_exact(group)
                    .zip(block.chunks_exact(PB))
                    .enumerate()
                {
                    // Each weight is read once per block, straight from
                    // L3: ask for the lines PREFETCH_TAPS taps ahead.
                    let ahead = base + (t + PREFETCH_TAPS) * group + sub;
                    for line in (0..width).step_by(16) {
                        prefetch.l2(packed, ahead + line);
                    }
                    let (wv, _) = S::as_simd_f32s(&w[sub..sub + width]);
                    for (accp, &xv) in acc.iter_mut().zip(xs) {
                        let xv = simd.splat_f32s(xv);
                        for (a, w) in accp.iter_mut().zip(wv) {
                            *a = simd.mul_add_f32s(xv, *w, *a);
                        }
                    }
                }
                for (p, accp) in acc.iter().enumerate() {
                    let at = (b * PB + p) * f + gi * group + sub;
                    let (ds, _) = S::as_mut_simd_f32s(&mut sums[at..at + width]);
                    for (dv, a) in ds.iter_mut().zip(accp) {
                        *dv = *a;
                    }
                }
            }
        }
    }
    // Pixel p = y * wo + x, so the rows are `wo` pixels apart.
    planar(simd, &mut sums, conv, epilogue, residual, ho, wo, wo)
}

/// The output planes from pixel-major sums (`sums[(y * pitch + x) * f +
/// filter]`, `f = conv.filters`), with the bias and `epilogue` applied
/// (and `residual` added before its relu, see [`conv2d_packed_residual`]).
///
/// The epilogue runs first, in place and vectorised along the filters
/// (every pixel's `f` sums are contiguous); the transposition into planes
/// then goes through tiles of 16 pixels, so each output row's stores are
/// contiguous and each tile's loads stay in L1. (Gathering one filter's
/// row at a time and applying the epilogue per row was a tenth of an
/// embedding: a thousand calls on rows of 4 pixels for a 4x4 layer.)
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn planar<S: pulp::Simd>(
    simd: S,
    sums: &mut [f32],
    conv: &Conv,
    epilogue: Epilogue<'_>,
    residual: Option<&Tensor>,
    ho: usize,
    wo: usize,
    pitch: usize,
) -> Tensor {
    let f = conv.filters;
    // With a residual, the relu comes after the add (in the transposition).
    let before = if residual.is_some() {
        epilogue.without_relu()
    } else {
        epilogue
    };
    for y in 0..ho {
        let row = &mut sums[y * pitch * f..(y * pitch + wo) * f];
        for px in row.chunks_exact_mut(f) {
            apply_epilogue_simd(simd, px, &conv.biases, before);
        }
    }
    let plane = ho * wo;
    let mut data = vec![0f32; f * plane];
    const TILE: usize = 16;
    #[cfg(target_arch = "x86_64")]
    let v4 = pulp::x86::V4::try_new().filter(|_| f % TILE == 0);
    for p0 in (0..plane).step_by(TILE) {
        let n = TILE.min(plane - p0);
        let mut at = [0usize; TILE];
        for (j, a) in at.iter_mut().enumerate().take(n) {
            let p = p0 + j;
            *a = ((p / wo) * pitch + p % wo) * f;
        }
        #[cfg(target_arch = "x86_64")]
        if let (Some(v4), TILE) = (v4, n) {
            tiles_avx512(v4, sums, &at, &mut data, p0, plane, residual, epilogue.relu);
            continue;
        }
        for (fi, out) in data.chunks_exact_mut(plane).enumerate() {
            let out = &mut out[p0..p0 + n];
            match residual {
                Some(r) => {
                    // Channels the residual lacks add zero, as in add_prev.
                    let zeros = [0f32; TILE];
                    let res = if fi < r.c {
                        &r.plane(fi)[p0..p0 + n]
                    } else {
                        &zeros[..n]
                    };
                    for ((o, &a), &v) in out.iter_mut().zip(&at).zip(res) {
                        let x = sums[a + fi] + v;
                        *o = if epilogue.relu { x.max(0.0) } else { x };
                    }
                }
                None => {
                    for (o, &a) in out.iter_mut().zip(&at) {
                        *o = sums[a + fi];
                    }
                }
            }
        }
    }
    Tensor {
        c: f,
        h: ho,
        w: wo,
        data,
    }
}

/// [`planar`]'s transposition of one tile of 16 pixels (`at[j]`: where
/// pixel `p0 + j`'s sums start) for every filter, 16x16 blocks at a time in
/// AVX-512 registers (four rounds of shuffles) instead of element by
/// element, with the residual and relu of [`conv2d_packed_residual`]. The
/// scalar loop was 5-7% of a ResNet layer.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tiles_avx512(
    v4: pulp::x86::V4,
    sums: &[f32],
    at: &[usize; 16],
    data: &mut [f32],
    p0: usize,
    plane: usize,
    residual: Option<&Tensor>,
    relu: bool,
) {
    use core::arch::x86_64::__m512;
    let a = v4.avx512f;
    let load = |s: &[f32]| -> __m512 {
        let mut v = [0f32; 16];
        v.copy_from_slice(&s[..16]);
        pulp::cast(v)
    };
    let f = data.len() / plane;
    for fi0 in (0..f).step_by(16) {
        let mut rows = [a._mm512_setzero_ps(); 16];
        for (row, &p) in rows.iter_mut().zip(at) {
            *row = load(&sums[p + fi0..]);
        }
        let cols = transpose16(v4, rows);
        for (i, col) in cols.into_iter().enumerate() {
            let fi = fi0 + i;
            let mut v = col;
            if let Some(r) = residual {
                // Channels the residual lacks add zero, as in add_prev.
                let res = if fi < r.c {
                    load(&r.plane(fi)[p0..])
                } else {
                    a._mm512_setzero_ps()
                };
                v = a._mm512_add_ps(v, res);
                if relu {
                    v = a._mm512_max_ps(v, a._mm512_setzero_ps());
                }
            }
            let out: [f32; 16] = pulp::cast(v);
            data[fi * plane + p0..fi * plane + p0 + 16].copy_from_slice(&out);
        }
    }
}

/// Transposes 16 rows of 16 floats: `result[c]` lane `r` is `rows[r]` lane
/// `c`. Interleaves 32-bit, then 64-bit elements within 128-bit lanes, then
/// moves 128-bit lanes twice.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose16(
    v4: pulp::x86::V4,
    r: [core::arch::x86_64::__m512; 16],
) -> [core::arch::x86_64::__m512; 16] {
    let a = v4.avx512f;
    // t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved, low and high halves
    // of each 128-bit lane.
    let mut t = r;
    for i in 0..8 {
        t[2 * i] = a._mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = a._mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + k], 128-bit lane L: column 4L + k of rows 4g..4g + 3.
    let (pd, ps) = (|x| a._mm512_castps_pd(x), |x| a._mm512_castpd_ps(x));
    let mut u = t;
    for b in (0..16).step_by(4) {
        u[b] = ps(a._mm512_unpacklo_pd(pd(t[b]), pd(t[b + 2])));
        u[b + 1] = ps(a._mm512_unpackhi_pd(pd(t[b]), pd(t[b + 2])));
        u[b + 2] = ps(a._mm512_unpacklo_pd(pd(t[b + 1]), pd(t[b + 3])));
        u[b + 3] = ps(a._mm512_unpackhi_pd(pd(t[b + 1]), pd(t[b + 3])));
    }
    // Gather each column's four 128-bit pieces: lanes (0, 2) then (1, 3)
    // of row groups (0, 1) and (2, 3), then across the two halves.
    let mut v = u;
    for b in [0, 8] {
        for k in 0..4 {
            v[b + k] = a._mm512_shuffle_f32x4::<0x88>(u[b + k], u[b + 4 + k]);
            v[b + 4 + k] = a._mm512_shuffle_f32x4::<0xdd>(u[b + k], u[b + 4 + k]);
        }
    }
    let mut w = v;
    for k in 0..8 {
        w[k] = a._mm512_shuffle_f32x4::<0x88>(v[k], v[8 + k]);
        w[8 + k] = a._mm512_shuffle_f32x4::<0xdd>(v[k], v[8 + k]);
    }
    w
}

/// `(v + bias) * gamma + beta` then `max(v, 0)`, as `epilogue` says, for
/// one pixel's values of every filter, `f32` lanes at a time; the same
/// operations in the same order as [`apply_epilogue`].
#[inline(always)]
fn apply_epilogue_simd<S: pulp::Simd>(simd: S, px: &mut [f32], bias: &[f32], e: Epilogue<'_>) {
    let (pv, pt) = S::as_mut_simd_f32s(px);
    let (bv, bt) = S::as_simd_f32s(bias);
    let zero = simd.splat_f32s(0.0);
    match e.affine {
        Some(a) => {
            let (gv, gt) = S::as_simd_f32s(&a.gamma);
            let (ev, et) = S::as_simd_f32s(&a.beta);
            for (((v, b), g), be) in pv.iter_mut().zip(bv).zip(gv).zip(ev) {
                let x = simd.add_f32s(simd.mul_f32s(simd.add_f32s(*v, *b), *g), *be);
                *v = if e.relu { simd.max_f32s(x, zero) } else { x };
            }
            for (((v, b), g), be) in pt.iter_mut().zip(bt).zip(gt).zip(et) {
                let x = (*v + b) * g + be;
                *v = if e.relu { x.max(0.0) } else { x };
            }
        }
        None => {
            for (v, b) in pv.iter_mut().zip(bv) {
                let x = simd.add_f32s(*v, *b);
                *v = if e.relu { simd.max_f32s(x, zero) } else { x };
            }
            for (v, b) in pt.iter_mut().zip(bt) {
                let x = *v + b;
                *v = if e.relu { x.max(0.0) } else { x };
            }
        }
    }
}

#[inline(always)]
fn run_filter_vec<S: pulp::Simd, const PB: usize, const FV: usize>(
    simd: S,
    lanes: usize,
    d: FilterVec<'_>,
) -> Tensor {
    let FilterVec {
        input,
        conv,
        packed,
        epilogue,
        residual,
        ho,
        wo,
    } = d;
    let f = conv.filters;
    let wr = wo.div_ceil(PB) * PB;
    let src = Source::new(input, conv, ho, wr);
    let k = src.taps.len();
    let (group, width) = (packed.group, FV * lanes);
    // scratch[(y * wr + x) * f + filter]; every value is stored (chunk 0)
    // before it is read, so the per-thread buffer is only grown, never
    // cleared (zero-filling fresh buffers was a twentieth of an embedding).
    // (Taken out of the thread-local rather than used inside `with`: code
    // in a closure does not get the SIMD target features and ran 40x
    // slower.)
    let mut buffer = SCRATCH.take();
    if buffer.len() < ho * wr * f {
        buffer.resize(ho * wr * f, 0.0);
    }
    let scratch = &mut buffer[..ho * wr * f];
    // Taps are taken in chunks whose weights fit in L1 (32 KiB) and every
    // pixel block runs through a chunk before the next: streaming a deep
    // layer's weights (590 KB for 64 of 256 filters) from L2 once per pixel
    // block stalled on the loads; the partial sums' round trip through the
    // scratch costs one load and store per accumulator per chunk.
    // Equal chunks: a short last chunk pays the round trip for few taps.
    let chunks = (k * group).div_ceil(L1_WEIGHT_FLOATS).max(1);
    let chunk = k.div_ceil(chunks).max(1);
    for gi in 0..f / group {
        let weights = &packed.data[gi * k * group..(gi + 1) * k * group];
        for sub in (0..group).step_by(width) {
            let g = gi * group + sub;
            for t0 in (0..k).step_by(chunk) {
                let t1 = (t0 + chunk).min(k);
                let taps = &src.taps[t0..t1];
                let ws = &weights[t0 * group..t1 * group];
                for y in 0..ho {
                    let y_off = y * src.sw;
                    for x0 in (0..wr).step_by(PB) {
                        let mut acc = [[simd.splat_f32s(0.0); FV]; PB];
                        if t0 > 0 {
                            for (p, accp) in acc.iter_mut().enumerate() {
                                let at = (y * wr + x0 + p) * f + g;
                                let (ss, _) = S::as_simd_f32s(&scratch[at..at + width]);
                                for (a, s) in accp.iter_mut().zip(ss) {
                                    *a = *s;
                                }
                            }
                        }
                        for (&tap, w) in taps.iter().zip(ws.chunks_exact(group)) {
                            let (wv, _) = S::as_simd_f32s(&w[sub..sub + width]);
                            let at = tap + y_off + x0;
                            let xs = &src.data[at..at + PB];
                            for (accp, &xv) in acc.iter_mut().zip(xs) {
                                let xv = simd.splat_f32s(xv);
                                for (a, w) in accp.iter_mut().zip(wv) {
                                    *a = simd.mul_add_f32s(xv, *w, *a);
                                }
                            }
                        }
                        for (p, accp) in acc.iter().enumerate() {
                            let at = (y * wr + x0 + p) * f + g;
                            let (ds, _) = S::as_mut_simd_f32s(&mut scratch[at..at + width]);
                            for (dv, a) in ds.iter_mut().zip(accp) {
                                *dv = *a;
                            }
                        }
                    }
                }
            }
        }
    }
    let out = planar(simd, scratch, conv, epilogue, residual, ho, wo, wr);
    SCRATCH.set(buffer);
    out
}

/// Software prefetch of weights into L2 where the CPU has it (x86's SSE,
/// through `pulp`'s safe wrapper): the ResNet's deeper layers read their
/// weights from L3 on every call, and the hardware prefetcher alone left
/// those layers at half the rate L3 can deliver.
#[derive(Clone, Copy)]
struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    sse: Option<pulp::core_arch::x86::Sse>,
}

impl Prefetch {
    fn new() -> Prefetch {
        Prefetch {
            #[cfg(target_arch = "x86_64")]
            sse: pulp::core_arch::x86::Sse::try_new(),
        }
    }

    /// Hints that `data[at]` (if it exists) will be read soon.
    #[inline(always)]
    fn l2(self, data: &[f32], at: usize) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(sse), Some(v)) = (self.sse, data.get(at)) {
            sse._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>((v as *const f32).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (data, at);
    }
}

thread_local! {
    /// [`conv2d_packed`]'s pixel-major partial sums, reused across calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::conv::tests::{check_against_naive, conv, naive};
    use crate::nn::test_util::{assert_close, random};

    #[test]
    fn matches_naive_convolution_for_the_detectors_shapes_and_edges() {
        // (channels, h, w, filters, kernel, stride, pad): the detector's
        // layers (smaller), filter counts that leave a partial block, rows
        // shorter than one vector block, odd padding (the general phase
        // split) and unequal strides.
        let cases: [crate::nn::conv::tests::Case; 9] = [
            (3, 41, 67, 16, (5, 5), (2, 2), (0, 0)),
            (16, 30, 53, 32, (5, 5), (2, 2), (0, 0)),
            (32, 19, 70, 45, (5, 5), (1, 1), (2, 2)),
            (45, 12, 49, 45, (5, 5), (1, 1), (2, 2)),
            (5, 9, 7, 10, (3, 3), (1, 1), (1, 1)),
            (4, 16, 21, 9, (3, 3), (2, 2), (1, 1)),
            (3, 23, 31, 12, (7, 7), (2, 2), (3, 3)),
            (2, 14, 17, 8, (3, 5), (2, 3), (1, 2)),
            (3, 4, 4, 8, (5, 5), (1, 1), (2, 2)),
        ];
        check_against_naive(&cases, 1000, |input, cv| {
            let ho = out_size(input.h, cv.kernel_h, cv.stride_y, cv.pad_y);
            let wo = out_size(input.w, cv.kernel_w, cv.stride_x, cv.pad_x);
            conv2d_direct(input, cv, Epilogue::default(), ho, wo)
        });
    }

    #[test]
    fn packed_route_matches_naive_convolution_for_the_resnets_shapes() {
        // The ResNet's conv kinds (smaller planes), rows shorter and longer
        // than a pixel block, and a filter count that falls back to GEMM.
        let cases: [crate::nn::conv::tests::Case; 10] = [
            (3, 30, 30, 32, (7, 7), (2, 2), (0, 0)),
            (32, 13, 13, 32, (3, 3), (1, 1), (1, 1)),
            (32, 13, 14, 64, (3, 3), (2, 2), (0, 0)),
            (64, 9, 9, 64, (3, 3), (1, 1), (1, 1)),
            (64, 5, 5, 128, (3, 3), (1, 1), (1, 1)),
            (128, 3, 3, 256, (3, 3), (1, 1), (1, 1)),
            (16, 7, 8, 20, (3, 3), (1, 1), (1, 1)),
            (64, 3, 3, 64, (3, 3), (1, 1), (1, 1)),
            (32, 5, 4, 96, (3, 3), (2, 2), (0, 0)),
            (64, 1, 1, 64, (3, 3), (1, 1), (1, 1)),
        ];
        check_against_naive(&cases, 2000, |input, cv| {
            conv2d_packed(input, cv, &PackedWeights::new(cv), Epilogue::default())
        });
    }

    #[test]
    fn fused_residual_equals_add_prev_then_relu() {
        // (channels, side, filters, stride, residual channels, residual
        // side): equal shapes (a Same unit), fewer residual channels (a
        // Down unit), a residual larger than the output (the 256-filter
        // Down unit: add_prev zero-extends the conv output), and a 3x3
        // output on the flat kernel.
        let cases = [
            (16, 9, 32, 1, 32, 9),
            (16, 11, 64, 2, 16, 5),
            (32, 8, 64, 2, 32, 4),
            (32, 3, 64, 1, 64, 3),
        ];
        for (i, &(c, side, f, stride, rc, rside)) in cases.iter().enumerate() {
            let seed = 90 + 4 * i as u64;
            let input = Tensor {
                c,
                h: side,
                w: side,
                data: random(seed, c * side * side),
            };
            let pad = if stride == 1 { 1 } else { 0 };
            let cv = conv(seed + 1, f, c, (3, 3), (stride, stride), (pad, pad));
            let affine = crate::dlib::dnn::Affine {
                gamma: random(seed + 2, f),
                beta: random(seed + 3, f),
            };
            let residual = Tensor {
                c: rc,
                h: rside,
                w: rside,
                data: random(seed + 4, rc * rside * rside),
            };
            let packed = PackedWeights::new(&cv);
            let e = Epilogue {
                affine: Some(&affine),
                relu: true,
            };
            let fused = conv2d_packed_residual(&input, &cv, &packed, e, &residual);
            let before = Epilogue {
                affine: Some(&affine),
                relu: false,
            };
            let mut want = ops::add_prev(conv2d_packed(&input, &cv, &packed, before), &residual);
            ops::relu(&mut want);
            assert_eq!(
                (fused.c, fused.h, fused.w),
                (want.c, want.h, want.w),
                "case {i}"
            );
            assert_eq!(fused.data, want.data, "case {i}");
            assert!(fused.data.iter().any(|&v| v > 0.0) && fused.data.contains(&0.0));
        }
    }

    #[test]
    fn fused_epilogue_equals_separate_layers() {
        let input = Tensor {
            c: 6,
            h: 20,
            w: 40,
            data: random(77, 6 * 20 * 40),
        };
        let cv = conv(78, 18, 6, (5, 5), (1, 1), (2, 2));
        let affine = crate::dlib::dnn::Affine {
            gamma: random(79, 18),
            beta: random(80, 18),
        };
        let e = Epilogue {
            affine: Some(&affine),
            relu: true,
        };
        let direct = conv2d_direct(&input, &cv, e, 20, 40);
        let mut want = naive(&input, &cv);
        let plane = 20 * 40;
        for (i, v) in want.data.iter_mut().enumerate() {
            let f = i / plane;
            *v = (*v * affine.gamma[f] + affine.beta[f]).max(0.0);
        }
        assert_close(&direct, &want, 1e-5);
        assert!(direct.data.iter().any(|&v| v > 0.0) && direct.data.contains(&0.0));
    }
}
