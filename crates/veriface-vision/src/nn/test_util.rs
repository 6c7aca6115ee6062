//! Helpers for the kernel unit tests.

use super::tensor::Tensor;

/// Deterministic pseudo-random values in [-1, 1) (SplitMix64).
pub fn random(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Asserts equal shapes and every value within `tol` (absolute, scaled up
/// for large values).
pub fn assert_close(got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!((got.c, got.h, got.w), (want.c, want.h, want.w), "shape");
    for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "index {i}: got {g}, want {w}"
        );
    }
}
