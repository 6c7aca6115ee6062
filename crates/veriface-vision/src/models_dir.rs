//! Locating, verifying and reading the pinned model files.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The pinned hashes, one `sha256  file` per line (the same file
/// `scripts/install-models.sh` checks, so the pins live in one place).
const PINS: &str = include_str!("../../../models.sha256");

/// File name of the 128-D face descriptor ResNet.
pub const RESNET_FILE: &str = "dlib_face_recognition_resnet_model_v1.dat";
/// File name of the MMOD CNN face detector.
pub const DETECTOR_FILE: &str = "mmod_human_face_detector.dat";
/// File name of the 5-point landmark model.
pub const SHAPE_FILE: &str = "shape_predictor_5_face_landmarks.dat";

/// The pinned sha256 of a model file, if it is one of ours.
pub fn pinned_sha256(file: &str) -> Option<&'static str> {
    PINS.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .find(|(_, name)| name.trim() == file)
        .map(|(hash, _)| hash)
}

/// `$VERIFACE_MODELS_DIR`, else `./models`.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// Reads a model file and checks its sha256 against the pin.
///
/// # Errors
/// [`Error::ModelMissing`] if absent, [`Error::ModelChecksum`] if the bytes
/// differ from the pin, [`Error::Io`] on other read failures.
pub fn read_verified(dir: &Path, file: &str) -> Result<Vec<u8>> {
    let path = dir.join(file);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ModelMissing { path })
        }
        Err(source) => return Err(Error::Io { path, source }),
    };
    let actual = hex(&Sha256::digest(&bytes));
    let expected = pinned_sha256(file).unwrap_or_default();
    if actual != expected {
        return Err(Error::ModelChecksum {
            path,
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// Status of one model file, for `veriface models check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelStatus {
    /// File name.
    pub file: &'static str,
    /// Full path looked at.
    pub path: PathBuf,
    /// The pinned hash.
    pub expected_sha256: &'static str,
    /// `ok`, `missing` or `checksum_mismatch` (or `unreadable`).
    pub status: &'static str,
}

/// Checks every model file without parsing it.
pub fn check_all(dir: &Path) -> Vec<ModelStatus> {
    [RESNET_FILE, DETECTOR_FILE, SHAPE_FILE]
        .into_iter()
        .map(|file| {
            let status = match read_verified(dir, file) {
                Ok(_) => "ok",
                Err(Error::ModelMissing { .. }) => "missing",
                Err(Error::ModelChecksum { .. }) => "checksum_mismatch",
                Err(_) => "unreadable",
            };
            ModelStatus {
                file,
                path: dir.join(file),
                expected_sha256: pinned_sha256(file).unwrap_or_default(),
                status,
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_a_pin() {
        for f in [RESNET_FILE, DETECTOR_FILE, SHAPE_FILE] {
            assert_eq!(pinned_sha256(f).map(str::len), Some(64), "{f}");
        }
        assert_eq!(pinned_sha256("shape_predictor_68_face_landmarks.dat"), None);
    }

    #[test]
    fn missing_model_names_the_install_command() {
        let dir = std::env::temp_dir().join("veriface-no-models-here");
        let e = read_verified(&dir, DETECTOR_FILE).unwrap_err();
        assert!(matches!(e, Error::ModelMissing { .. }));
        assert!(e.to_string().contains("scripts/install-models.sh"), "{e}");
    }

    #[test]
    fn corrupt_model_is_a_checksum_error() {
        let dir = std::env::temp_dir().join(format!("veriface-bad-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(SHAPE_FILE), b"not a model").unwrap();
        let e = read_verified(&dir, SHAPE_FILE).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(e, Error::ModelChecksum { .. }), "{e}");
    }
}
