//! 2-D convolution as blocked im2col + GEMM with a fused epilogue.
//!
//! The output is produced a block of output rows at a time: the im2col
//! matrix of one block (`K = C*kh*kw` rows by `rows*W_out` columns) is
//! bounded to about [`BLOCK_FLOATS`] values, so memory stays small even for
//! the detector's multi-gigabyte inputs, and the block is still hot in cache
//! when the epilogue (bias, per-channel affine, relu) runs over it. The GEMM
//! writes straight into the output tensor: channel `f` of rows `r0..r1` is a
//! contiguous run of `plane[f]`, so the destination is just a strided matrix
//! with row stride `H_out*W_out`.
//!
//! The kernel itself is single-threaded; callers parallelise at a coarser
//! grain (image strips, batches), which keeps a 1-thread rayon pool truly
//! single-threaded and avoids fork/join overhead on the ResNet's tiny layers.

use crate::dlib::dnn::{Affine, Conv};
use crate::nn::tensor::Tensor;

/// Target size of one im2col block, in f32 values (1 MiB): large enough for
/// GEMM efficiency, small enough to stay in the 2 MiB L2 with its output.
pub const BLOCK_FLOATS: usize = 1 << 18;

/// What to apply to each output value after the bias, in this order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Per-output-channel `v * gamma + beta`.
    pub affine: Option<&'a Affine>,
    /// `max(v, 0)` last.
    pub relu: bool,
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
    let mut out = Tensor::zeros(conv.filters, ho, wo);
    if ho == 0 || wo == 0 {
        return out;
    }
    let k = conv.in_channels * conv.kernel_h * conv.kernel_w;
    let rows_per_block = (BLOCK_FLOATS / (k * wo).max(1)).clamp(1, ho);
    let mut col = Vec::new();
    let mut r0 = 0;
    while r0 < ho {
        let r1 = (r0 + rows_per_block).min(ho);
        let n = (r1 - r0) * wo;
        col.resize(k * n, 0.0);
        im2col(input, conv, r0..r1, wo, &mut col);
        let lhs = veriface_gemm::MatRef {
            data: &conv.weights,
            row_stride: k,
        };
        let rhs = veriface_gemm::MatRef {
            data: &col,
            row_stride: n,
        };
        let plane = ho * wo;
        // The shapes were derived above from the same numbers the slices
        // were sized with, so a shape error is impossible; degrade to a
        // zero block rather than panic if it ever happened.
        let _ = veriface_gemm::matmul(
            &mut out.data[r0 * wo..],
            plane,
            lhs,
            rhs,
            conv.filters,
            n,
            k,
        );
        for f in 0..conv.filters {
            let start = f * plane + r0 * wo;
            apply_epilogue(&mut out.data[start..start + n], conv.biases[f], epilogue, f);
        }
        r0 = r1;
    }
    out
}

/// Bias, then affine, then relu, in dlib's layer order (no fusing of the
/// bias into the affine shift, which would change rounding).
fn apply_epilogue(values: &mut [f32], bias: f32, e: Epilogue<'_>, f: usize) {
    match (e.affine, e.relu) {
        (Some(a), relu) => {
            let (g, b) = (a.gamma[f], a.beta[f]);
            for v in values {
                let x = (*v + bias) * g + b;
                *v = if relu { x.max(0.0) } else { x };
            }
        }
        (None, true) => values.iter_mut().for_each(|v| *v = (*v + bias).max(0.0)),
        (None, false) => values.iter_mut().for_each(|v| *v += bias),
    }
}

/// Fills `col` (K rows of `(rows.len()) * wo` values) for output rows `rows`.
fn im2col(input: &Tensor, conv: &Conv, rows: std::ops::Range<usize>, wo: usize, col: &mut [f32]) {
    let n = rows.len() * wo;
    let (h, w) = (input.h, input.w);
    let (sx, px) = (conv.stride_x, conv.pad_x);
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
                for (i, r) in rows.clone().enumerate() {
                    let d = &mut dst[i * wo..(i + 1) * wo];
                    let iy = (r * conv.stride_y + ky).wrapping_sub(conv.pad_y);
                    if iy >= h {
                        d.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy * w..(iy + 1) * w];
                    d[..x_lo].fill(0.0);
                    d[x_hi..].fill(0.0);
                    if x_lo == x_hi {
                        continue;
                    }
                    let first = x_lo * sx + kx - px;
                    if sx == 1 {
                        d[x_lo..x_hi].copy_from_slice(&src[first..first + (x_hi - x_lo)]);
                    } else {
                        for (o, s) in d[x_lo..x_hi]
                            .iter_mut()
                            .zip(src[first..].iter().step_by(sx))
                        {
                            *o = *s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::test_util::{assert_close, random};

    fn naive(input: &Tensor, cv: &Conv) -> Tensor {
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

    fn conv(
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
        ];
        for (i, &(c, h, w, f, k, s, p)) in cases.iter().enumerate() {
            let seed = i as u64 * 10;
            let input = Tensor {
                c,
                h,
                w,
                data: random(seed + 5, c * h * w),
            };
            let cv = conv(seed, f, c, k, s, p);
            assert_close(
                &conv2d(&input, &cv, Epilogue::default()),
                &naive(&input, &cv),
                1e-5,
            );
        }
    }

    #[test]
    fn small_blocks_give_the_same_result_as_one_block() {
        // A large input forces several row blocks.
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
