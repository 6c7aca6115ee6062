//! The cheap layers: pooling, the zero-extending residual add, relu, affine
//! and fully connected (spec: `dlib-models.md` section 3).

use crate::dlib::dnn::{Affine, Fc, Pool};
use crate::nn::conv::out_size;
use crate::nn::tensor::Tensor;

/// `max(x, 0)` in place.
pub fn relu(t: &mut Tensor) {
    t.data.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// Per-channel `x * gamma + beta` in place.
///
/// # Panics
///
/// If the affine's channel count differs from the tensor's.
pub fn affine(t: &mut Tensor, a: &Affine) {
    assert_eq!(a.gamma.len(), t.c, "affine channels");
    for c in 0..t.c {
        let (g, b) = (a.gamma[c], a.beta[c]);
        t.plane_mut(c).iter_mut().for_each(|v| *v = *v * g + b);
    }
}

/// Window size, resolving dlib's 0 = "the whole axis".
fn window(p: &Pool, h: usize, w: usize) -> (usize, usize) {
    let kh = if p.kernel_h == 0 { h } else { p.kernel_h };
    let kw = if p.kernel_w == 0 { w } else { p.kernel_w };
    (kh, kw)
}

/// Max pooling (padding 0; the parser rejects padded pools).
pub fn max_pool(t: &Tensor, p: &Pool) -> Tensor {
    pulp::Arch::new().dispatch(Pooling { t, p, max: true })
}

/// Average pooling: the window sum times `1 / (kh * kw)`, as dlib computes
/// it; a 0x0 window averages each whole channel to `(C, 1, 1)`.
pub fn avg_pool(t: &Tensor, p: &Pool) -> Tensor {
    pulp::Arch::new().dispatch(Pooling { t, p, max: false })
}

/// Either pool, run at the CPU's best SIMD level (the crate is built for
/// baseline x86-64, so loops outside a dispatch get 4-lane SSE at most;
/// the two pools were a twentieth of an embedding that way).
struct Pooling<'a> {
    t: &'a Tensor,
    p: &'a Pool,
    max: bool,
}

impl pulp::WithSimd for Pooling<'_> {
    type Output = Tensor;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> Tensor {
        let Pooling { t, p, max } = self;
        let (kh, kw) = window(p, t.h, t.w);
        let ho = out_size(t.h, kh, p.stride_y, 0);
        let wo = out_size(t.w, kw, p.stride_x, 0);
        let mut out = Tensor::zeros(t.c, ho, wo);
        if ho == 0 || wo == 0 {
            return out;
        }
        // The maximum does not depend on the order it is taken in, so each
        // output row takes the column maxima of its window rows first (one
        // vector pass over whole rows), then the windows along that row.
        // The average keeps dlib's order (each window's values row by row,
        // left to right), so its sums round as dlib's do.
        let mut cols = vec![0f32; t.w];
        for c in 0..t.c {
            let src = t.plane(c);
            let dst = out.plane_mut(c);
            for (r, dst_row) in dst.chunks_exact_mut(wo).enumerate() {
                let rows = (0..kh).map(|dy| &src[(r * p.stride_y + dy) * t.w..][..t.w]);
                if max {
                    cols.fill(f32::NEG_INFINITY);
                    for row in rows {
                        let (cv, ct) = S::as_mut_simd_f32s(&mut cols);
                        let (rv, rt) = S::as_simd_f32s(row);
                        for (m, v) in cv.iter_mut().zip(rv) {
                            *m = simd.max_f32s(*m, *v);
                        }
                        for (m, v) in ct.iter_mut().zip(rt) {
                            *m = m.max(*v);
                        }
                    }
                    // The ResNet's stem pool is 3 wide: unrolled, since a
                    // 3-step loop per output was most of the pool's time.
                    if kw == 3 {
                        for (x, d) in dst_row.iter_mut().enumerate() {
                            let w = &cols[x * p.stride_x..][..3];
                            *d = f32::NEG_INFINITY.max(w[0]).max(w[1]).max(w[2]);
                        }
                    } else {
                        for (x, d) in dst_row.iter_mut().enumerate() {
                            let start = x * p.stride_x;
                            *d = cols[start..start + kw]
                                .iter()
                                .fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                        }
                    }
                } else {
                    let scale = 1.0 / (kh * kw).max(1) as f32;
                    dst_row.fill(0.0);
                    for row in rows {
                        // The residual units' shortcut pools are 2 wide.
                        if kw == 2 {
                            for (x, d) in dst_row.iter_mut().enumerate() {
                                let w = &row[x * p.stride_x..][..2];
                                *d = *d + w[0] + w[1];
                            }
                        } else {
                            for (x, d) in dst_row.iter_mut().enumerate() {
                                let start = x * p.stride_x;
                                *d = row[start..start + kw].iter().fold(*d, |a, &v| a + v);
                            }
                        }
                    }
                    dst_row.iter_mut().for_each(|d| *d *= scale);
                }
            }
        }
        out
    }
}

/// dlib's `add_prev`: `a + b` where the result takes the larger size on each
/// axis and each operand counts as zero outside its own extent (extra
/// channels at the end, rows at the bottom, columns at the right).
pub fn add_prev(a: Tensor, b: &Tensor) -> Tensor {
    if (a.c, a.h, a.w) == (b.c, b.h, b.w) {
        let mut a = a;
        a.data.iter_mut().zip(&b.data).for_each(|(x, y)| *x += y);
        return a;
    }
    let mut out = Tensor::zeros(a.c.max(b.c), a.h.max(b.h), a.w.max(b.w));
    for t in [&a, b] {
        for c in 0..t.c {
            for y in 0..t.h {
                let src = &t.data[(c * t.h + y) * t.w..][..t.w];
                let start = (c * out.h + y) * out.w;
                let dst = &mut out.data[start..start + t.w];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            }
        }
    }
    out
}

/// Fully connected: flattens `t` in (channel, row, col) order.
///
/// # Panics
///
/// If the flattened length differs from `fc.inputs`.
pub fn fc(t: &Tensor, fc: &Fc) -> Vec<f32> {
    assert_eq!(t.data.len(), fc.inputs, "fc inputs");
    let mut out = vec![0f32; fc.outputs];
    // Row-by-row axpy: streams the weights once, in storage order.
    for (x, row) in t.data.iter().zip(fc.weights.chunks_exact(fc.outputs)) {
        out.iter_mut().zip(row).for_each(|(o, w)| *o += x * w);
    }
    if let Some(b) = &fc.biases {
        out.iter_mut().zip(b).for_each(|(o, b)| *o += b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::test_util::{assert_close, random};

    fn tensor(seed: u64, c: usize, h: usize, w: usize) -> Tensor {
        Tensor {
            c,
            h,
            w,
            data: random(seed, c * h * w),
        }
    }

    fn pool_spec(k: usize, s: usize) -> Pool {
        Pool {
            kernel_h: k,
            kernel_w: k,
            stride_y: s,
            stride_x: s,
            pad_y: 0,
            pad_x: 0,
        }
    }

    #[test]
    fn pools_match_naive_windows() {
        let t = tensor(1, 3, 9, 8);
        let p = pool_spec(3, 2);
        let (mx, av) = (max_pool(&t, &p), avg_pool(&t, &p));
        assert_eq!((mx.c, mx.h, mx.w), (3, 4, 3));
        for c in 0..3 {
            for r in 0..4 {
                for x in 0..3 {
                    let vals: Vec<f32> = (0..9)
                        .map(|i| t.at(c, r * 2 + i / 3, x * 2 + i % 3))
                        .collect();
                    let m = vals.iter().copied().fold(f32::MIN, f32::max);
                    let a: f32 = vals.iter().sum::<f32>() / 9.0;
                    assert_eq!(mx.at(c, r, x), m);
                    assert!((av.at(c, r, x) - a).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    fn global_average_pool_gives_channel_means() {
        let t = tensor(2, 4, 2, 2);
        let g = avg_pool(&t, &pool_spec(0, 1));
        assert_eq!((g.c, g.h, g.w), (4, 1, 1));
        for c in 0..4 {
            let m: f32 = t.plane(c).iter().sum::<f32>() / 4.0;
            assert!((g.data[c] - m).abs() < 1e-7);
        }
    }

    #[test]
    fn add_prev_zero_extends_the_smaller_operand() {
        let block = tensor(3, 4, 3, 3);
        let pooled = tensor(4, 2, 4, 4);
        let sum = add_prev(block.clone(), &pooled);
        let mut want = Tensor::zeros(4, 4, 4);
        for c in 0..4 {
            for y in 0..4 {
                for x in 0..4 {
                    let a = if y < 3 && x < 3 {
                        block.at(c, y, x)
                    } else {
                        0.0
                    };
                    let b = if c < 2 { pooled.at(c, y, x) } else { 0.0 };
                    want.data[(c * 4 + y) * 4 + x] = a + b;
                }
            }
        }
        assert_close(&sum, &want, 0.0);
        assert_close(&add_prev(pooled.clone(), &block), &want, 0.0);
    }

    #[test]
    fn fc_and_pointwise_layers_match_definitions() {
        let t = tensor(5, 2, 2, 3);
        let f = Fc {
            inputs: 12,
            outputs: 5,
            weights: random(6, 60),
            biases: Some(random(7, 5)),
        };
        let out = fc(&t, &f);
        for (j, o) in out.iter().enumerate() {
            let s: f32 = (0..12)
                .map(|i| t.data[i] * f.weights[i * 5 + j])
                .sum::<f32>()
                + f.biases.as_ref().unwrap()[j];
            assert!((o - s).abs() < 1e-5);
        }
        let mut a = t.clone();
        affine(
            &mut a,
            &Affine {
                gamma: vec![2.0, -1.0],
                beta: vec![0.5, 0.0],
            },
        );
        relu(&mut a);
        for (i, v) in a.data.iter().enumerate() {
            let x = if i < 6 {
                t.data[i] * 2.0 + 0.5
            } else {
                -t.data[i]
            };
            assert_eq!(*v, x.max(0.0));
        }
    }
}
