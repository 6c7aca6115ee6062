//! The domain error: what went wrong, split into the caller's fault and
//! ours, with a stable machine code for every variant.

use veriface_vision::decode::ImageError;

/// Broad classes of failure. The HTTP layer maps each to a status family;
/// the worker uses them to choose retry or dead-letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or message itself is malformed (400).
    InvalidInput,
    /// The image format is not one veriface decodes (415).
    UnsupportedMedia,
    /// The input is too large (413).
    TooLarge,
    /// Well-formed input that cannot be processed, e.g. no face (422).
    Unprocessable,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The request conflicts with the current state (409).
    Conflict,
    /// A dependency is down or the server is saturated; retry later (503).
    Unavailable,
    /// Our fault: a bug or a broken installation (500).
    Internal,
}

/// Everything the use-cases can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image was refused or could not be decoded.
    #[error("{label}: {source}")]
    Image {
        /// Which input (`"passport"`, `"reference_image"`, `"image"`, ...).
        label: String,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// No face was found in an image.
    #[error("no face detected in {label}")]
    NoFace {
        /// Which input.
        label: String,
    },
    /// Input that is malformed in a way not covered above.
    #[error("{message}")]
    InvalidInput {
        /// Stable snake_case code.
        code: &'static str,
        /// Human-readable explanation (never contains personal data).
        message: String,
    },
    /// A named resource does not exist.
    #[error("{what} not found")]
    NotFound {
        /// Stable code, e.g. `image_not_found`, `subject_not_found`.
        code: &'static str,
        /// What was looked for (a kind, never a personal value).
        what: &'static str,
    },
    /// The operation is not allowed in the current state.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// A dependency (database, store, broker) failed or is unreachable.
    #[error("{what} is unavailable")]
    Unavailable {
        /// Which dependency.
        what: &'static str,
        /// The cause, for logs only.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The inference pool and its wait queue are full: the server sheds
    /// this request instead of queueing without bound.
    #[error("the server is overloaded; retry in {retry_after_secs} s")]
    Overloaded {
        /// A hint for the client's `Retry-After`, in whole seconds (>= 1).
        retry_after_secs: u64,
    },
    /// The face engine failed for a reason that is not the caller's.
    #[error("face engine failure")]
    Engine(#[source] veriface_vision::Error),
    /// Anything else that is our fault.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The broad class of the failure.
    pub fn kind(&self) -> ErrorKind {
        // Exhaustive on purpose: a new variant must choose its kind.
        match self {
            Error::Image { source, .. } => match source {
                ImageError::UnsupportedFormat { .. } | ImageError::UnsupportedFeature { .. } => {
                    ErrorKind::UnsupportedMedia
                }
                ImageError::TooLarge { .. }
                | ImageError::DimensionsTooLarge { .. }
                | ImageError::MemoryLimit { .. } => ErrorKind::TooLarge,
                ImageError::Empty | ImageError::Truncated { .. } | ImageError::Corrupt { .. } => {
                    ErrorKind::InvalidInput
                }
            },
            Error::NoFace { .. } => ErrorKind::Unprocessable,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Unavailable { .. } | Error::Overloaded { .. } => ErrorKind::Unavailable,
            Error::Engine(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The stable snake_case machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Image { source, .. } => source.code(),
            Error::NoFace { .. } => "no_face_detected",
            Error::InvalidInput { code, .. }
            | Error::NotFound { code, .. }
            | Error::Conflict { code, .. } => code,
            Error::Unavailable { .. } => "unavailable",
            Error::Overloaded { .. } => "overloaded",
            Error::Engine(_) | Error::Internal(_) => "internal",
        }
    }

    /// True when retrying the same input later may succeed (the worker
    /// retries these instead of dead-lettering).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unavailable | ErrorKind::Internal)
    }

    /// Wraps an engine error, keeping user errors (bad images) as such.
    pub fn from_engine(label: impl Into<String>, e: veriface_vision::Error) -> Self {
        match e {
            veriface_vision::Error::Image(source) => Error::Image {
                label: label.into(),
                source,
            },
            other => Error::Engine(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_errors_keep_their_engine_codes() {
        let e = Error::Image {
            label: "face".into(),
            source: ImageError::Empty,
        };
        assert_eq!(e.code(), "empty_image");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.is_retryable());
        let e = Error::Image {
            label: "face".into(),
            source: ImageError::UnsupportedFormat { detected: None },
        };
        assert_eq!(e.kind(), ErrorKind::UnsupportedMedia);
    }

    #[test]
    fn no_face_is_unprocessable_and_names_the_image() {
        let e = Error::NoFace {
            label: "passport".into(),
        };
        assert_eq!(e.code(), "no_face_detected");
        assert_eq!(e.kind(), ErrorKind::Unprocessable);
        assert!(e.to_string().contains("passport"));
    }
}
