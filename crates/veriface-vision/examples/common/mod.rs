//! Paths the examples share: the `shared/` data folder beside the checkout
//! and the installed models, each overridable by its environment variable.

use std::path::PathBuf;

/// `$VERIFACE_SHARED_DIR`, else `../shared` beside the repository.
#[allow(dead_code)] // not every example reads the shared data
pub fn shared_dir() -> PathBuf {
    std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// `$VERIFACE_MODELS_DIR`, else the repository's `models/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}
