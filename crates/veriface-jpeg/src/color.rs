//! Upsampling (jdsample.c) and colour conversion (jdcolor.c).

use crate::ColorSpace;

/// One decoded component: `dw x dh` valid samples in a buffer of `stride`
/// bytes per row (the rest is block padding).
pub(crate) struct Plane {
    pub data: Vec<u8>,
    pub stride: usize,
    /// libjpeg's `downsampled_width`.
    pub dw: usize,
    /// libjpeg's `downsampled_height`.
    pub dh: usize,
}

impl Plane {
    #[inline]
    fn row(&self, y: usize) -> &[u8] {
        let start = y * self.stride;
        self.data.get(start..start + self.dw).unwrap_or(&[])
    }
}

/// The upsampling method libjpeg's `jinit_upsampler` picks (with
/// `do_fancy_upsampling` on and no IDCT scaling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Full,
    H2V1Fancy,
    H1V2Fancy,
    H2V2Fancy,
    /// Pixel replication by integral factors (`int_upsample`,
    /// `h2v1_upsample`, `h2v2_upsample`).
    Box {
        hr: usize,
        vr: usize,
    },
}

impl Method {
    /// `hr`, `vr`: integral upsampling ratios; `dw`: downsampled width.
    pub fn select(hr: usize, vr: usize, dw: usize) -> Self {
        match (hr, vr) {
            (1, 1) => Method::Full,
            (2, 1) if dw > 2 => Method::H2V1Fancy,
            (1, 2) => Method::H1V2Fancy,
            (2, 2) if dw > 2 => Method::H2V2Fancy,
            _ => Method::Box { hr, vr },
        }
    }
}

/// Produces upsampled row `y` of `plane`; `buf` must hold at least
/// `max(width, 2 * dw)` bytes.
fn upsample_row<'a>(
    plane: &'a Plane,
    method: Method,
    y: usize,
    width: usize,
    buf: &'a mut [u8],
) -> &'a [u8] {
    let last = plane.dh.saturating_sub(1);
    match method {
        Method::Full => plane.row(y),
        Method::H2V1Fancy => {
            let inp = plane.row(y);
            h2v1_fancy(inp, buf);
            buf
        }
        Method::H1V2Fancy => {
            let cy = y / 2;
            let (nb, bias) = if y % 2 == 0 {
                (cy.saturating_sub(1), 1u16)
            } else {
                ((cy + 1).min(last), 2u16)
            };
            let r0 = plane.row(cy);
            let r1 = plane.row(nb);
            for ((o, &a), &b) in buf.iter_mut().zip(r0).zip(r1) {
                *o = ((u16::from(a) * 3 + u16::from(b) + bias) >> 2) as u8;
            }
            buf
        }
        Method::H2V2Fancy => {
            let cy = y / 2;
            let nb = if y % 2 == 0 {
                cy.saturating_sub(1)
            } else {
                (cy + 1).min(last)
            };
            h2v2_fancy(plane.row(cy), plane.row(nb), buf);
            buf
        }
        Method::Box { hr, vr } => {
            let inp = plane.row(y / vr);
            for (x, o) in buf.iter_mut().take(width).enumerate() {
                *o = inp.get(x / hr).copied().unwrap_or(0);
            }
            buf
        }
    }
}

/// `h2v1_fancy_upsample`: triangle filter, 3/4 nearer + 1/4 further, with
/// alternating +1/+2 rounding; the first and last columns are copied.
fn h2v1_fancy(inp: &[u8], out: &mut [u8]) {
    let n = inp.len();
    if n < 2 || out.len() < 2 * n {
        return;
    }
    let v = |i: usize| u16::from(inp[i]);
    out[0] = inp[0];
    out[1] = ((v(0) * 3 + v(1) + 2) >> 2) as u8;
    for i in 1..n - 1 {
        let t = v(i) * 3;
        out[2 * i] = ((t + v(i - 1) + 1) >> 2) as u8;
        out[2 * i + 1] = ((t + v(i + 1) + 2) >> 2) as u8;
    }
    out[2 * n - 2] = ((v(n - 1) * 3 + v(n - 2) + 1) >> 2) as u8;
    out[2 * n - 1] = inp[n - 1];
}

/// `h2v2_fancy_upsample` for one output row: `near` is the nearest input row,
/// `far` the next nearest (above for even output rows, below for odd ones).
fn h2v2_fancy(near: &[u8], far: &[u8], out: &mut [u8]) {
    let n = near.len().min(far.len());
    if n < 2 || out.len() < 2 * n {
        return;
    }
    let cs = |i: usize| u32::from(near[i]) * 3 + u32::from(far[i]);
    let mut this = cs(0);
    let mut next = cs(1);
    out[0] = ((this * 4 + 8) >> 4) as u8;
    out[1] = ((this * 3 + next + 7) >> 4) as u8;
    let mut lastc = this;
    this = next;
    for i in 1..n - 1 {
        next = cs(i + 1);
        out[2 * i] = ((this * 3 + lastc + 8) >> 4) as u8;
        out[2 * i + 1] = ((this * 3 + next + 7) >> 4) as u8;
        lastc = this;
        this = next;
    }
    out[2 * n - 2] = ((this * 3 + lastc + 8) >> 4) as u8;
    out[2 * n - 1] = ((this * 4 + 7) >> 4) as u8;
}

const SCALEBITS: i32 = 16;
const ONE_HALF: i32 = 1 << (SCALEBITS - 1);

/// libjpeg's YCbCr -> RGB of one pixel. libjpeg reads these terms from
/// tables (`build_ycc_rgb_table`) filled with exactly these expressions;
/// computed in place they vectorise (the table lookups did not: 15% of a
/// decode).
#[inline(always)]
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    [
        clamp(y + ((91881 * cr + ONE_HALF) >> SCALEBITS)), // FIX(1.40200)
        // -FIX(0.34414) * cb + ONE_HALF - FIX(0.71414) * cr
        clamp(y + ((-22554 * cb + ONE_HALF - 46802 * cr) >> SCALEBITS)),
        clamp(y + ((116130 * cb + ONE_HALF) >> SCALEBITS)), // FIX(1.77200)
    ]
}

/// One row of [`ycc_to_rgb`], compiled for the CPU's best SIMD level.
struct YccRow<'a> {
    y: &'a [u8],
    cb: &'a [u8],
    cr: &'a [u8],
    out: &'a mut [u8],
}

impl pulp::WithSimd for YccRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let px = self.out.chunks_exact_mut(3);
        for (o, ((&y, &cb), &cr)) in px.zip(self.y.iter().zip(self.cb).zip(self.cr)) {
            o.copy_from_slice(&ycc_to_rgb(y, cb, cr));
        }
    }
}

#[inline(always)]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Upsamples every component and converts to interleaved RGB.
pub(crate) fn to_rgb(
    planes: &[Plane],
    ratios: &[(usize, usize)],
    space: ColorSpace,
    width: usize,
    height: usize,
    out: &mut [u8],
) {
    let methods: Vec<Method> = planes
        .iter()
        .zip(ratios)
        .map(|(p, &(hr, vr))| Method::select(hr, vr, p.dw))
        .collect();
    let mut bufs: Vec<Vec<u8>> = planes
        .iter()
        .map(|p| vec![0u8; width.max(2 * p.dw)])
        .collect();
    let arch = pulp::Arch::new();
    for (y, orow) in out.chunks_exact_mut(width * 3).take(height).enumerate() {
        match (space, planes, bufs.as_mut_slice()) {
            (ColorSpace::Grayscale, [p], [b]) => {
                let g = upsample_row(p, methods[0], y, width, b);
                for (o, &v) in orow.chunks_exact_mut(3).zip(g) {
                    o.fill(v);
                }
            }
            (ColorSpace::YCbCr | ColorSpace::Rgb, [p0, p1, p2], [b0, b1, b2]) => {
                let c0 = upsample_row(p0, methods[0], y, width, b0);
                let c1 = upsample_row(p1, methods[1], y, width, b1);
                let c2 = upsample_row(p2, methods[2], y, width, b2);
                let px = orow.chunks_exact_mut(3).zip(c0.iter().zip(c1).zip(c2));
                if space == ColorSpace::Rgb {
                    for (o, ((&r, &g), &b)) in px {
                        o.copy_from_slice(&[r, g, b]);
                    }
                } else {
                    arch.dispatch(YccRow {
                        y: c0,
                        cb: c1,
                        cr: c2,
                        out: orow,
                    });
                }
            }
            _ => {}
        }
    }
}
