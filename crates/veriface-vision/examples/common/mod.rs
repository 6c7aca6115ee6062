//! What the examples share: the `shared/` data folder beside the checkout
//! and the installed models (each overridable by its environment variable),
//! and deterministic pseudo-random values for synthetic inputs.

use std::path::PathBuf;

/// `$VERIFACE_SHARED_DIR`, else `../shared` beside the repository.
#[allow(dead_code)] // not every example reads the shared data
pub fn shared_dir() -> PathBuf {
    std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// `$VERIFACE_MODELS_DIR`, else the repository's `models/`.
#[allow(dead_code)] // the kernel timings use no model
pub fn models_dir() -> PathBuf {
    std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// `n` values in `[-1, 1)` from an xorshift generator seeded with `seed`.
#[allow(dead_code)] // only the kernel timings build synthetic inputs
pub fn pseudo(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// A square conv with pseudo-random weights and biases (seeds from `seed`).
#[allow(dead_code)] // only the kernel timings build synthetic convs
pub fn square_conv(
    in_channels: usize,
    filters: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    seed: u32,
) -> veriface_vision::dlib::dnn::Conv {
    veriface_vision::dlib::dnn::Conv {
        filters,
        in_channels,
        kernel_h: kernel,
        kernel_w: kernel,
        stride_y: stride,
        stride_x: stride,
        pad_y: pad,
        pad_x: pad,
        weights: pseudo(filters * in_channels * kernel * kernel, seed + 7),
        biases: pseudo(filters, seed + 99),
    }
}
