//! The engine's error type.

use std::path::PathBuf;

use crate::decode::ImageError;
use crate::dlib::serialize::FormatError;

/// Everything that can go wrong in the engine.
///
/// Variants split into the caller's input ([`Error::is_user_error`]) and the
/// installation (missing or corrupt models), so that a service can map them
/// to 4xx and 5xx without string matching.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file is not where it should be.
    #[error("model file {} is missing; install the models with `scripts/install-models.sh` (or set VERIFACE_MODELS_DIR)", path.display())]
    ModelMissing {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// A model file's bytes do not match the pinned hash.
    #[error("model file {} has sha256 {actual}, expected {expected}; reinstall with `scripts/install-models.sh`", path.display())]
    ModelChecksum {
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash of the bytes found.
        actual: String,
    },
    /// A model file could not be parsed.
    #[error("model {model} is malformed")]
    ModelFormat {
        /// Which model.
        model: &'static str,
        /// Where and why.
        #[source]
        source: FormatError,
    },
    /// Reading a file failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The caller's image could not be decoded or was refused.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A face chip given to the descriptor network has the wrong size.
    #[error(transparent)]
    Chip(#[from] crate::models::resnet::EmbedError),
}

impl Error {
    /// True when the error was caused by the caller's input rather than by
    /// the installation or a bug.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::ModelMissing { .. }
            | Error::ModelChecksum { .. }
            | Error::ModelFormat { .. }
            | Error::Io { .. } => false,
            Error::Image(_) | Error::Chip(_) => true,
        }
    }
}

/// Result alias for the engine.
pub type Result<T> = std::result::Result<T, Error>;
