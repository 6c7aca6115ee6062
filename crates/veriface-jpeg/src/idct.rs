//! libjpeg's `jpeg_idct_islow` (jidctint.c), bit-exact, including the
//! post-IDCT range-limit table and its modulo-1024 wrap-around.

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;

const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

/// libjpeg's post-IDCT range-limit table (`sample_range_limit + CENTERJSAMPLE`
/// indexed with `& RANGE_MASK`): `x` in `[-384, 384)` maps to
/// `clamp(x + 128, 0, 255)`, everything else wraps modulo 1024.
const fn build_range_limit() -> [u8; 1024] {
    let mut t = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = if i < 128 {
            (i + 128) as u8
        } else if i < 512 {
            255
        } else if i < 896 {
            0
        } else {
            (i - 896) as u8
        };
        i += 1;
    }
    t
}

pub(crate) static RANGE_LIMIT: [u8; 1024] = build_range_limit();

#[inline(always)]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1i64 << (n - 1))) >> n
}

#[inline(always)]
fn limit(x: i64) -> u8 {
    RANGE_LIMIT[(x & 1023) as usize]
}

/// The shared even/odd butterfly of both passes. `c` holds the eight inputs
/// `in[0..8]` (already dequantised / scaled); returns the eight outputs
/// before descaling, in order 0..8.
#[inline(always)]
fn butterfly(c: [i64; 8]) -> [i64; 8] {
    // Even part.
    let z2 = c[2];
    let z3 = c[6];
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 + z3 * -FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;

    let tmp0 = (c[0] + c[4]) << CONST_BITS;
    let tmp1 = (c[0] - c[4]) << CONST_BITS;

    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;

    // Odd part.
    let mut t0 = c[7];
    let mut t1 = c[5];
    let mut t2 = c[3];
    let mut t3 = c[1];

    let mut z1 = t0 + t3;
    let mut z2 = t1 + t2;
    let mut z3 = t0 + t2;
    let mut z4 = t1 + t3;
    let z5 = (z3 + z4) * FIX_1_175875602;

    t0 *= FIX_0_298631336;
    t1 *= FIX_2_053119869;
    t2 *= FIX_3_072711026;
    t3 *= FIX_1_501321110;
    z1 *= -FIX_0_899976223;
    z2 *= -FIX_2_562915447;
    z3 *= -FIX_1_961570560;
    z4 *= -FIX_0_390180644;

    z3 += z5;
    z4 += z5;

    t0 += z1 + z3;
    t1 += z2 + z4;
    t2 += z2 + z3;
    t3 += z1 + z4;

    [
        tmp10 + t3,
        tmp11 + t2,
        tmp12 + t1,
        tmp13 + t0,
        tmp13 - t0,
        tmp12 - t1,
        tmp11 - t2,
        tmp10 - t3,
    ]
}

/// Dequantises and inverse-transforms one block into 8x8 samples.
///
/// `coef` is in natural order; `quant` holds the quantisation table already
/// truncated to 16 bits the way libjpeg-turbo's SIMD build stores it
/// (`ISLOW_MULT_TYPE` is `short`).  All arithmetic is done in 64 bits (libjpeg's
/// `JLONG`) with the work array truncated to 32 bits, so the result is
/// identical to libjpeg's for any input, including corrupt extremes.
pub(crate) fn idct_islow(coef: &[i16; 64], quant: &[i16; 64], out: &mut [u8; 64]) {
    let mut ws = [0i32; 64];

    // Pass 1: columns.
    for col in 0..8 {
        let dq = |row: usize| {
            i64::from(i32::from(coef[row * 8 + col]) * i32::from(quant[row * 8 + col]))
        };
        if (1..8).all(|row| coef[row * 8 + col] == 0) {
            let dc = (dq(0) << PASS1_BITS) as i32;
            for row in 0..8 {
                ws[row * 8 + col] = dc;
            }
            continue;
        }
        let c = [dq(0), dq(1), dq(2), dq(3), dq(4), dq(5), dq(6), dq(7)];
        let o = butterfly(c);
        for row in 0..8 {
            ws[row * 8 + col] = descale(o[row], CONST_BITS - PASS1_BITS) as i32;
        }
    }

    // Pass 2: rows.
    for row in 0..8 {
        let w = &ws[row * 8..row * 8 + 8];
        let dst = &mut out[row * 8..row * 8 + 8];
        if w[1..].iter().all(|&v| v == 0) {
            let v = limit(descale(i64::from(w[0]), PASS1_BITS + 3));
            dst.fill(v);
            continue;
        }
        let c = [
            i64::from(w[0]),
            i64::from(w[1]),
            i64::from(w[2]),
            i64::from(w[3]),
            i64::from(w[4]),
            i64::from(w[5]),
            i64::from(w[6]),
            i64::from(w[7]),
        ];
        let o = butterfly(c);
        for (d, &v) in dst.iter_mut().zip(o.iter()) {
            *d = limit(descale(v, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A literal transcription of jidctint.c (no shared helpers), used as the
    /// reference.
    fn reference(coef: &[i16; 64], quant: &[i16; 64]) -> [u8; 64] {
        let mut ws = [0i32; 64];
        for c in 0..8 {
            let q = |r: usize| -> i64 {
                (i32::from(coef[r * 8 + c]) * i32::from(quant[r * 8 + c])) as i64
            };
            if (1..8).all(|r| coef[r * 8 + c] == 0) {
                let dcval = (q(0) << 2) as i32;
                for r in 0..8 {
                    ws[r * 8 + c] = dcval;
                }
                continue;
            }
            let z2 = q(2);
            let z3 = q(6);
            let z1 = (z2 + z3) * 4433;
            let tmp2 = z1 + z3 * -15137;
            let tmp3 = z1 + z2 * 6270;
            let z2 = q(0);
            let z3 = q(4);
            let tmp0 = (z2 + z3) << 13;
            let tmp1 = (z2 - z3) << 13;
            let tmp10 = tmp0 + tmp3;
            let tmp13 = tmp0 - tmp3;
            let tmp11 = tmp1 + tmp2;
            let tmp12 = tmp1 - tmp2;
            let (mut t0, mut t1, mut t2, mut t3) = (q(7), q(5), q(3), q(1));
            let z1 = t0 + t3;
            let z2 = t1 + t2;
            let z3 = t0 + t2;
            let z4 = t1 + t3;
            let z5 = (z3 + z4) * 9633;
            t0 *= 2446;
            t1 *= 16819;
            t2 *= 25172;
            t3 *= 12299;
            let z1 = z1 * -7373;
            let z2 = z2 * -20995;
            let z3 = z3 * -16069 + z5;
            let z4 = z4 * -3196 + z5;
            t0 += z1 + z3;
            t1 += z2 + z4;
            t2 += z2 + z3;
            t3 += z1 + z4;
            let d = |x: i64| ((x + (1 << 10)) >> 11) as i32;
            ws[c] = d(tmp10 + t3);
            ws[56 + c] = d(tmp10 - t3);
            ws[8 + c] = d(tmp11 + t2);
            ws[48 + c] = d(tmp11 - t2);
            ws[16 + c] = d(tmp12 + t1);
            ws[40 + c] = d(tmp12 - t1);
            ws[24 + c] = d(tmp13 + t0);
            ws[32 + c] = d(tmp13 - t0);
        }
        let mut out = [0u8; 64];
        // Literal range_limit table construction from jdmaster.c.
        let mut table = vec![0u8; 5 * 256 + 128];
        let base = 256;
        for i in 0..256 {
            table[base + i] = i as u8;
        }
        let post = base + 128;
        for i in 128..512 {
            table[post + i] = 255;
        }
        for i in 0..(512 - 128) {
            table[post + 512 + i] = 0;
        }
        for i in 0..128 {
            table[post + 1024 - 128 + i] = table[base + i];
        }
        let rl = |x: i64| table[post + ((x as i32) & 1023) as usize];
        for r in 0..8 {
            let w: Vec<i64> = (0..8).map(|k| i64::from(ws[r * 8 + k])).collect();
            if w[1..].iter().all(|&v| v == 0) {
                let v = rl((w[0] + 16) >> 5);
                out[r * 8..r * 8 + 8].fill(v);
                continue;
            }
            let z2 = w[2];
            let z3 = w[6];
            let z1 = (z2 + z3) * 4433;
            let tmp2 = z1 + z3 * -15137;
            let tmp3 = z1 + z2 * 6270;
            let tmp0 = (w[0] + w[4]) << 13;
            let tmp1 = (w[0] - w[4]) << 13;
            let tmp10 = tmp0 + tmp3;
            let tmp13 = tmp0 - tmp3;
            let tmp11 = tmp1 + tmp2;
            let tmp12 = tmp1 - tmp2;
            let (mut t0, mut t1, mut t2, mut t3) = (w[7], w[5], w[3], w[1]);
            let z1 = t0 + t3;
            let z2 = t1 + t2;
            let z3 = t0 + t2;
            let z4 = t1 + t3;
            let z5 = (z3 + z4) * 9633;
            t0 *= 2446;
            t1 *= 16819;
            t2 *= 25172;
            t3 *= 12299;
            let z1 = z1 * -7373;
            let z2 = z2 * -20995;
            let z3 = z3 * -16069 + z5;
            let z4 = z4 * -3196 + z5;
            t0 += z1 + z3;
            t1 += z2 + z4;
            t2 += z2 + z3;
            t3 += z1 + z4;
            let d = |x: i64| (x + (1 << 17)) >> 18;
            let o = &mut out[r * 8..r * 8 + 8];
            o[0] = rl(d(tmp10 + t3));
            o[7] = rl(d(tmp10 - t3));
            o[1] = rl(d(tmp11 + t2));
            o[6] = rl(d(tmp11 - t2));
            o[2] = rl(d(tmp12 + t1));
            o[5] = rl(d(tmp12 - t1));
            o[3] = rl(d(tmp13 + t0));
            o[4] = rl(d(tmp13 - t0));
        }
        out
    }

    /// xorshift64* so the test needs no RNG dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn matches_reference_on_random_blocks() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for iter in 0..200_000 {
            let mut coef = [0i16; 64];
            let mut quant = [0i16; 64];
            let mode = iter % 5;
            for k in 0..64 {
                let r = rng.next();
                quant[k] = match mode {
                    0 | 1 => (1 + r % 64) as i16,
                    2 => (r >> 16) as i16, // any 16-bit value, incl. negative
                    3 => 255,
                    _ => 1 + (r % 8) as i16,
                };
                let sparse = (r >> 40) % 4 == 0 || k == 0;
                coef[k] = match mode {
                    0 => {
                        if sparse {
                            ((r >> 20) % 256) as i16 - 128
                        } else {
                            0
                        }
                    }
                    1 => ((r >> 20) % 2048) as i16 - 1024,
                    2 | 3 => (r >> 24) as i16, // extremes
                    _ => {
                        if sparse {
                            ((r >> 20) % 64) as i16 - 32
                        } else {
                            0
                        }
                    }
                };
            }
            let mut got = [0u8; 64];
            idct_islow(&coef, &quant, &mut got);
            assert_eq!(got, reference(&coef, &quant), "iteration {iter}");
        }
    }

    #[test]
    fn range_limit_layout() {
        assert_eq!(RANGE_LIMIT[0], 128);
        assert_eq!(RANGE_LIMIT[127], 255);
        assert_eq!(RANGE_LIMIT[383], 255);
        assert_eq!(RANGE_LIMIT[1023], 127);
        assert_eq!(RANGE_LIMIT[1024 - 128], 0);
        assert_eq!(RANGE_LIMIT[600], 0);
    }
}
