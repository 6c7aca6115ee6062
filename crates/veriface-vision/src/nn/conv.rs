//! 2-D convolution as blocked im2col + GEMM with a fused epilogue.
//!
//! The detector's convs go to the direct kernel of [`crate::nn::direct`]
//! instead (one filter always; with at least 8 filters, output rows of at
//! least 12 pixels at stride 1 or 32 at stride 2: [`crate::nn::direct::suits`]);
//! the ResNet calls that module's packed kernel itself. The rest of this
//! comment is about the GEMM route.
//!
//! The output is produced a panel of output pixels at a time (a range of the
//! flattened `H_out*W_out` plane, free to start and end mid-row): the im2col
//! matrix of one panel (`K = C*kh*kw` rows by at most a few hundred pixel
//! columns) is bounded to about [`BLOCK_FLOATS`] values, so memory stays
//! small even for the detector's multi-gigabyte inputs, and the panel is
//! still hot in cache when the epilogue (bias, per-channel affine, relu)
//! runs over it. The GEMM writes straight into the output tensor: channel
//! `f` of pixels `p0..p1` is a contiguous run of `plane[f]`, so the
//! destination is just a strided matrix with row stride `H_out*W_out`.
//!
//! **Strided, unpadded convs** (the detector's three 5x5 stride-2 layers on
//! narrow planes, the ResNet's downsampling convs when they come here) take
//! another route, because im2col is most of their cost: each input plane is
//! first split into its `stride_y * stride_x` phases (even/odd rows and
//! columns for stride 2). Tap `(ky, kx)` then reads phase `(ky % s, kx % s)`
//! at offset `(ky / s, kx / s)`, a contiguous run, so im2col is plain copies
//! instead of a strided gather (measured 13-34 GFLOP/s before on those
//! layers).
//!
//! The kernel itself is single-threaded; callers parallelise at a coarser
//! grain (image strips, batches), which keeps a 1-thread rayon pool truly
//! single-threaded and avoids fork/join overhead on the ResNet's tiny layers.

use crate::dlib::dnn::{Affine, Conv};
use crate::nn::tensor::Tensor;

/// Target size of one im2col block, in f32 values (1 MiB): small enough to
/// stay in the 2 MiB L2 with its output.
pub const BLOCK_FLOATS: usize = 1 << 18;

/// Most output pixels per im2col panel. gemm streams the im2col matrix
/// unpacked when its pixel axis is contiguous, reading 64 pixels from each
/// of the K rows per microkernel step; with rows thousands of floats apart
/// that touches K pages per step and thrashes the TLB and L1 sets (measured:
/// 25-35 GFLOP/s at 3000-4000 pixels per row vs 70-110 at 192-320 on the
/// detector's shapes). Panels of a few hundred pixels keep the rows close.
const MAX_PANEL_PIXELS: usize = 256;

/// Pixels per panel for a GEMM depth of `k`: at most [`MAX_PANEL_PIXELS`],
/// fewer for very deep convs so the panel stays within [`BLOCK_FLOATS`], and
/// a multiple of 16 (one AVX-512 register of pixels) so gemm's microkernel
/// has no ragged edge except at the image's last panel.
fn panel_pixels(k: usize) -> usize {
    (BLOCK_FLOATS / k.max(1)).clamp(16, MAX_PANEL_PIXELS) / 16 * 16
}

/// The im2col panel and the GEMM's result panel.
type Scratch = (Vec<f32>, Vec<f32>);

thread_local! {
    /// Per-thread scratch, reused across panels, layers and calls instead of
    /// allocating (and zero-filling) fresh buffers for every conv.
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// What to apply to each output value after the bias, in this order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Per-output-channel `v * gamma + beta`.
    pub affine: Option<&'a Affine>,
    /// `max(v, 0)` last.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// The same without the relu: what runs before a residual add, whose
    /// relu comes after it.
    pub fn without_relu(self) -> Self {
        Epilogue {
            relu: false,
            ..self
        }
    }
}

/// Output size of a valid/zero-padded window along one axis (0 when the
/// padded input is smaller than the window).
pub fn out_size(input: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    let padded = input + 2 * pad;
    if padded < kernel {
        0
    } else {
        1 + (padded - kernel) / stride
    }
}

/// `conv` (cross-correlation, zero padding, stride, + bias) followed by the
/// epilogue, as dlib's `con` + `affine` + `relu` layers.
///
/// # Panics
///
/// If `input.c != conv.in_channels` or the epilogue's affine does not have
/// `conv.filters` channels; the model loaders check both once at load time.
pub fn conv2d(input: &Tensor, conv: &Conv, epilogue: Epilogue<'_>) -> Tensor {
    assert_eq!(input.c, conv.in_channels, "conv input channels");
    if let Some(a) = epilogue.affine {
        assert_eq!(a.gamma.len(), conv.filters, "affine channels");
    }
    let ho = out_size(input.h, conv.kernel_h, conv.stride_y, conv.pad_y);
    let wo = out_size(input.w, conv.kernel_w, conv.stride_x, conv.pad_x);
    if ho == 0 || wo == 0 {
        return Tensor::zeros(conv.filters, ho, wo);
    }
    if crate::nn::direct::suits(conv, wo) {
        return crate::nn::direct::conv2d_direct(input, conv, epilogue, ho, wo);
    }
    let mut out = Tensor::zeros(conv.filters, ho, wo);
    let strided = conv.stride_x > 1 || conv.stride_y > 1;
    let unpadded = conv.pad_x == 0 && conv.pad_y == 0;
    let phases = (strided && unpadded).then(|| Phases::split(input, conv.stride_y, conv.stride_x));
    let k = conv.in_channels * conv.kernel_h * conv.kernel_w;
    let plane = ho * wo;
    let panel = panel_pixels(k).min(plane);
    SCRATCH.with_borrow_mut(|(col, acc)| {
        let mut p0 = 0;
        while p0 < plane {
            let p1 = (p0 + panel).min(plane);
            let n = p1 - p0;
            // Every value of both buffers is written before it is read, so
            // they are only grown, never cleared.
            if col.len() < k * n {
                col.resize(k * n, 0.0);
            }
            if acc.len() < conv.filters * n {
                acc.resize(conv.filters * n, 0.0);
            }
            let col = &mut col[..k * n];
            let acc = &mut acc[..conv.filters * n];
            match &phases {
                Some(ph) => ph.im2col(conv, p0..p1, wo, col),
                None => im2col(input, conv, p0..p1, wo, col),
            }
            let lhs = veriface_gemm::MatRef {
                data: &conv.weights,
                row_stride: k,
            };
            let rhs = veriface_gemm::MatRef {
                data: col,
                row_stride: n,
            };
            // The GEMM goes to a small cache-resident panel rather than
            // straight into the output: writing the output's rows, a whole
            // plane apart, from inside the microkernel costs a cache miss
            // per store (measured 2x slower on the detector's layers). The
            // epilogue then makes the one pass over the output.
            // The shapes were derived above from the same numbers the slices
            // were sized with, so a shape error is impossible; degrade to a
            // zero block rather than panic if it ever happened.
            let _ = veriface_gemm::matmul(acc, n, lhs, rhs, conv.filters, n, k);
            for (f, src) in acc.chunks_exact(n).enumerate() {
                let start = f * plane + p0;
                apply_epilogue(
                    src,
                    &mut out.data[start..start + n],
                    conv.biases[f],
                    epilogue,
                    f,
                );
            }
            p0 = p1;
        }
    });
    out
}

/// `dst = epilogue(src + bias)`: bias, then affine, then relu, in dlib's
/// layer order (no fusing of the bias into the affine shift, which would
/// change rounding).
#[inline(always)]
pub(crate) fn apply_epilogue(src: &[f32], dst: &mut [f32], bias: f32, e: Epilogue<'_>, f: usize) {
    let pairs = dst.iter_mut().zip(src);
    match (e.affine, e.relu) {
        (Some(a), relu) => {
            let (g, b) = (a.gamma[f], a.beta[f]);
            for (d, v) in pairs {
                let x = (*v + bias) * g + b;
                *d = if relu { x.max(0.0) } else { x };
            }
        }
        (None, true) => pairs.for_each(|(d, v)| *d = (*v + bias).max(0.0)),
        (None, false) => pairs.for_each(|(d, v)| *d = *v + bias),
    }
}

/// A strided conv's input split into its phases: plane `(c, py, px)` holds
/// `input[c][y * sy + py][x * sx + px]`, every plane padded with zeros to
/// the same `ceil(h / sy) x ceil(w / sx)` size.
struct Phases {
    sy: usize,
    sx: usize,
    ph: usize,
    pw: usize,
    data: Vec<f32>,
}

impl Phases {
    fn split(input: &Tensor, sy: usize, sx: usize) -> Phases {
        let (ph, pw) = (input.h.div_ceil(sy), input.w.div_ceil(sx));
        let mut data = vec![0f32; input.c * sy * sx * ph * pw];
        for c in 0..input.c {
            let plane = input.plane(c);
            for (y, row) in plane.chunks_exact(input.w.max(1)).enumerate() {
                let (py, r) = (y % sy, y / sy);
                if sx == 2 {
                    // Every strided conv here has stride 2: split the row
                    // into its even and odd columns in one pass (pairs
                    // vectorise; `step_by` did not, and was a sixth of a
                    // detection).
                    let s0 = (((c * sy + py) * 2) * ph + r) * pw;
                    let s1 = (((c * sy + py) * 2 + 1) * ph + r) * pw;
                    let (lo, hi) = data.split_at_mut(s1);
                    let (even, odd) = (&mut lo[s0..s0 + pw], &mut hi[..pw]);
                    let pairs = row.chunks_exact(2);
                    let last = pairs.remainder().first().copied();
                    let n = row.len() / 2;
                    for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                        *e = p[0];
                        *o = p[1];
                    }
                    if let (Some(v), Some(e)) = (last, even.get_mut(n)) {
                        *e = v;
                    }
                    continue;
                }
                for px in 0..sx {
                    let start = (((c * sy + py) * sx + px) * ph + r) * pw;
                    let dst = &mut data[start..start + pw];
                    for (d, v) in dst.iter_mut().zip(row.iter().skip(px).step_by(sx)) {
                        *d = *v;
                    }
                }
            }
        }
        Phases {
            sy,
            sx,
            ph,
            pw,
            data,
        }
    }

    /// [`im2col`] for an unpadded conv with this split's strides: every
    /// row segment is one contiguous copy out of a phase plane.
    fn im2col(&self, conv: &Conv, pixels: std::ops::Range<usize>, wo: usize, col: &mut [f32]) {
        let n = pixels.len();
        let (r_first, r_last) = (pixels.start / wo, (pixels.end - 1) / wo);
        let plane_len = self.ph * self.pw;
        let mut dst_rows = col.chunks_exact_mut(n.max(1));
        for c in 0..conv.in_channels {
            for ky in 0..conv.kernel_h {
                for kx in 0..conv.kernel_w {
                    let Some(dst) = dst_rows.next() else { return };
                    let p = (c * self.sy + ky % self.sy) * self.sx + kx % self.sx;
                    let plane = &self.data[p * plane_len..(p + 1) * plane_len];
                    let (oy, ox) = (ky / self.sy, kx / self.sx);
                    for r in r_first..=r_last {
                        let xs = pixels.start.saturating_sub(r * wo);
                        let xe = (pixels.end - r * wo).min(wo);
                        // Unpadded: (r * sy + ky) < h and (x * sx + kx) < w
                        // for every output pixel, so the run lies inside
                        // row r + oy of the phase plane.
                        let src = (r + oy) * self.pw + ox;
                        dst[r * wo + xs - pixels.start..r * wo + xe - pixels.start]
                            .copy_from_slice(&plane[src + xs..src + xe]);
                    }
                }
            }
        }
    }
}

/// Fills `col` (K rows of `pixels.len()` values) for the output pixels
/// `pixels` of the flattened `ho x wo` output; a range may start and end
/// mid-row.
fn im2col(input: &Tensor, conv: &Conv, pixels: std::ops::Range<usize>, wo: usize, col: &mut [f32]) {
    let n = pixels.len();
    let (h, w) = (input.h, input.w);
    let (sx, px) = (conv.stride_x, conv.pad_x);
    let (r_first, r_last) = (pixels.start / wo, (pixels.end - 1) / wo);
    let mut dst_rows = col.chunks_exact_mut(n.max(1));
    for c in 0..input.c {
        let plane = input.plane(c);
        for ky in 0..conv.kernel_h {
            for kx in 0..conv.kernel_w {
                let Some(dst) = dst_rows.next() else { return };
                // Output columns x whose input column x*sx + kx - px lies
                // inside the image; the rest read the zero padding.
                let x_lo = if kx >= px { 0 } else { (px - kx).div_ceil(sx) }.min(wo);
                let x_hi = if w + px > kx {
                    (w + px - kx).div_ceil(sx)
                } else {
                    0
                }
                .clamp(x_lo, wo);
                for r in r_first..=r_last {
                    // The part of output row r inside the pixel range.
                    let xs = pixels.start.saturating_sub(r * wo);
                    let xe = (pixels.end - r * wo).min(wo);
                    let d = &mut dst[r * wo + xs - pixels.start..r * wo + xe - pixels.start];
                    let iy = (r * conv.stride_y + ky).wrapping_sub(conv.pad_y);
                    let (lo, hi) = (x_lo.clamp(xs, xe), x_hi.clamp(xs, xe));
                    if iy >= h || lo == hi {
                        d.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy * w..(iy + 1) * w];
                    d[..lo - xs].fill(0.0);
                    d[hi - xs..].fill(0.0);
                    let first = lo * sx + kx - px;
                    let d = &mut d[lo - xs..hi - xs];
                    if sx == 1 {
                        d.copy_from_slice(&src[first..first + (hi - lo)]);
                    } else {
                        for (o, s) in d.iter_mut().zip(src[first..].iter().step_by(sx)) {
                            *o = *s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nn::test_util::{assert_close, random};

    pub(crate) fn naive(input: &Tensor, cv: &Conv) -> Tensor {
        let ho = out_size(input.h, cv.kernel_h, cv.stride_y, cv.pad_y);
        let wo = out_size(input.w, cv.kernel_w, cv.stride_x, cv.pad_x);
        let mut out = Tensor::zeros(cv.filters, ho, wo);
        for f in 0..cv.filters {
            for r in 0..ho {
                for x in 0..wo {
                    let mut s = 0f64;
                    for c in 0..cv.in_channels {
                        for ky in 0..cv.kernel_h {
                            for kx in 0..cv.kernel_w {
                                let iy = (r * cv.stride_y + ky) as isize - cv.pad_y as isize;
                                let ix = (x * cv.stride_x + kx) as isize - cv.pad_x as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= input.h as isize
                                    || ix >= input.w as isize
                                {
                                    continue;
                                }
                                let wi = ((f * cv.in_channels + c) * cv.kernel_h + ky)
                                    * cv.kernel_w
                                    + kx;
                                s += f64::from(
                                    cv.weights[wi] * input.at(c, iy as usize, ix as usize),
                                );
                            }
                        }
                    }
                    out.data[(f * ho + r) * wo + x] = s as f32 + cv.biases[f];
                }
            }
        }
        out
    }

    pub(crate) fn conv(
        seed: u64,
        f: usize,
        c: usize,
        k: (usize, usize),
        s: (usize, usize),
        p: (usize, usize),
    ) -> Conv {
        Conv {
            filters: f,
            in_channels: c,
            kernel_h: k.0,
            kernel_w: k.1,
            stride_y: s.0,
            stride_x: s.1,
            pad_y: p.0,
            pad_x: p.1,
            weights: random(seed, f * c * k.0 * k.1),
            biases: random(seed + 1, f),
        }
    }

    #[test]
    fn matches_naive_convolution_for_strides_and_padding() {
        let cases = [
            (3, 13, 11, 5, (3, 3), (1, 1), (1, 1)),
            (3, 20, 17, 4, (7, 7), (2, 2), (0, 0)),
            (2, 9, 12, 3, (5, 5), (1, 1), (2, 2)),
            (4, 15, 15, 6, (3, 3), (2, 2), (0, 0)),
            (1, 8, 9, 2, (9, 9), (1, 1), (4, 4)),
            (8, 4, 4, 70, (3, 3), (1, 1), (1, 1)),
            (9, 7, 7, 64, (3, 3), (2, 2), (0, 0)),
            (2, 7, 16, 3, (3, 5), (2, 3), (1, 2)),
            (2, 3, 3, 2, (5, 5), (1, 1), (0, 0)),
            // Phase-split route: unpadded strided convs, odd sizes, unequal strides.
            (3, 17, 19, 7, (5, 5), (3, 2), (0, 0)),
            (2, 6, 5, 3, (3, 3), (2, 2), (0, 0)),
            (16, 23, 21, 32, (5, 5), (2, 2), (0, 0)),
            // Direct single-filter route: the detector's last layer and
            // rows both shorter and longer than one SIMD pad.
            (45, 12, 11, 1, (9, 9), (1, 1), (4, 4)),
            (3, 9, 37, 1, (3, 5), (1, 1), (0, 2)),
            (2, 4, 3, 1, (1, 1), (1, 1), (0, 0)),
            // Direct route with several filters on narrow rows (from 12
            // columns at stride 1): partly empty tail vectors.
            (5, 14, 15, 9, (5, 5), (1, 1), (2, 2)),
            (4, 10, 13, 16, (3, 3), (1, 1), (1, 1)),
            // An empty input whose padding alone gives outputs.
            (2, 3, 0, 1, (1, 1), (1, 1), (1, 1)),
        ];
        check_against_naive(&cases, 0, |input, cv| {
            conv2d(input, cv, Epilogue::default())
        });
    }

    /// A conv test case: (channels, h, w, filters, kernel, stride, pad).
    pub(crate) type Case = (
        usize,
        usize,
        usize,
        usize,
        (usize, usize),
        (usize, usize),
        (usize, usize),
    );

    /// Runs `run` on random inputs and convs of each case's shape and
    /// checks it against [`naive`].
    pub(crate) fn check_against_naive(
        cases: &[Case],
        seed0: u64,
        run: impl Fn(&Tensor, &Conv) -> Tensor,
    ) {
        for (i, &(c, h, w, f, k, s, p)) in cases.iter().enumerate() {
            let seed = seed0 + i as u64 * 10;
            let input = Tensor {
                c,
                h,
                w,
                data: random(seed + 5, c * h * w),
            };
            let cv = conv(seed, f, c, k, s, p);
            // The reference sums in f64; f32 rounding error grows with the
            // square root of the number of terms (3645 for the 9x9x45 case).
            let terms = (c * k.0 * k.1) as f32;
            assert_close(
                &run(&input, &cv),
                &naive(&input, &cv),
                (5e-6 * terms.sqrt()).max(1e-5),
            );
        }
    }

    #[test]
    fn small_blocks_give_the_same_result_as_one_block() {
        // A large input forces several panels, most starting mid-row.
        let (c, h, w) = (8, 300, 200);
        let input = Tensor {
            c,
            h,
            w,
            data: random(3, c * h * w),
        };
        let cv = conv(4, 5, c, (3, 3), (1, 1), (1, 1));
        assert!(c * 9 * w * h > BLOCK_FLOATS);
        assert_close(
            &conv2d(&input, &cv, Epilogue::default()),
            &naive(&input, &cv),
            1e-5,
        );
    }

    #[test]
    fn fused_epilogue_equals_separate_layers() {
        let input = Tensor {
            c: 3,
            h: 10,
            w: 12,
            data: random(7, 360),
        };
        let cv = conv(8, 4, 3, (3, 3), (1, 1), (1, 1));
        let affine = Affine {
            gamma: random(9, 4),
            beta: random(10, 4),
        };
        let fused = conv2d(
            &input,
            &cv,
            Epilogue {
                affine: Some(&affine),
                relu: true,
            },
        );
        let mut want = naive(&input, &cv);
        let plane = want.h * want.w;
        for (i, v) in want.data.iter_mut().enumerate() {
            let f = i / plane;
            *v = (*v * affine.gamma[f] + affine.beta[f]).max(0.0);
        }
        assert_close(&fused, &want, 1e-5);
    }
}
