//! Where test inputs live: the small photos checked in under
//! `tests/fixtures/` at the workspace root, the shared data set and the
//! models.

use std::path::PathBuf;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/` at the workspace root.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/fixtures")
}

/// The path of a checked-in fixture.
///
/// # Panics
/// When it does not exist (a test cannot run without its input).
pub fn fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    assert!(p.is_file(), "missing test fixture {}", p.display());
    p
}

/// The bytes of a checked-in fixture.
///
/// # Panics
/// When it cannot be read.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let p = fixture(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The shared data set: `$VERIFACE_SHARED_DIR`, else `../shared` beside the
/// checkout.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("VERIFACE_SHARED_DIR")
        .map_or_else(|| workspace_root().join("../shared"), PathBuf::from)
}

/// The model files: `$VERIFACE_MODELS_DIR`, else `models/` at the
/// workspace root.
///
/// # Panics
/// When the detector model is not there, naming the install command
/// (tests fail rather than skip without models).
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_MODELS_DIR")
        .map_or_else(|| workspace_root().join("models"), PathBuf::from);
    assert!(
        dir.join("mmod_human_face_detector.dat").is_file(),
        "models are missing in {}: run `scripts/install-models.sh`",
        dir.display()
    );
    dir
}

/// The pairs the API tests use, all from `../shared/data/faces` (see
/// `tests/fixtures/README.md` for how they were made).
pub mod photos {
    /// person02 (img53, 400x300).
    pub const PERSON02_A: &str = "person02_a.jpg";
    /// person02 again (img56, 420x280): same person as [`PERSON02_A`].
    pub const PERSON02_B: &str = "person02_b.jpg";
    /// angelina (img5, 330x512, original bytes): a different person.
    pub const ANGELINA: &str = "angelina.jpg";
    /// Two faces of different sizes (couple.jpg, 570x397).
    pub const COUPLE: &str = "couple.jpg";
    /// A crop of a photo with no face in it (220x400).
    pub const NO_FACE: &str = "no_face.jpg";
}
