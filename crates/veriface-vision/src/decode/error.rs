//! Why an upload could not be turned into pixels.

use super::format::ImageFormat;

/// A rejected or undecodable image. Every variant is the caller's fault
/// (bad input), never the installation's.
///
/// Each variant has a stable machine code ([`ImageError::code`]) that the
/// HTTP layer and the CLI put in their error bodies; codes are API and are
/// never renamed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Zero bytes were given.
    #[error("the image is empty")]
    Empty,
    /// The encoded file is bigger than allowed.
    #[error("the image is {bytes} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Size of the upload.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not one of the formats veriface decodes.
    #[error("unsupported image format{}; send jpeg, png, webp, gif or bmp", detected.map(|d| format!(" ({d})")).unwrap_or_default())]
    UnsupportedFormat {
        /// What the magic bytes look like (`"tiff"`, `"pdf"`, `"heic"`, ...),
        /// or `None` when nothing was recognised.
        detected: Option<&'static str>,
    },
    /// A supported format using a feature its decoder lacks (for example
    /// arithmetic-coded or 12-bit JPEG).
    #[error("this {format} image uses a feature that is not supported")]
    UnsupportedFeature {
        /// The sniffed format.
        format: ImageFormat,
        /// The decoder's explanation.
        #[source]
        source: image::ImageError,
    },
    /// The header declares dimensions over the limits; nothing was decoded.
    #[error("the image is {width}x{height} pixels, over the limits of {max_width}x{max_height} and {max_pixels} pixels")]
    DimensionsTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Allowed width.
        max_width: u32,
        /// Allowed height.
        max_height: u32,
        /// Allowed width x height.
        max_pixels: u64,
    },
    /// The decoder needed more memory than the limits allow, even though the
    /// header passed the checks (a header that lies, or a format whose
    /// decoding needs large side buffers).
    #[error("decoding this {format} image would need more memory than allowed")]
    MemoryLimit {
        /// The sniffed format.
        format: ImageFormat,
        /// The decoder's limit error.
        #[source]
        source: image::ImageError,
    },
    /// The file ends before the image data does.
    #[error("the {format} image is truncated")]
    Truncated {
        /// The sniffed format.
        format: ImageFormat,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The file is damaged or not really in the format its signature claims.
    #[error("the {format} image is corrupt")]
    Corrupt {
        /// The sniffed format.
        format: ImageFormat,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
}

impl ImageError {
    /// The stable snake_case code for API and CLI error bodies.
    pub const fn code(&self) -> &'static str {
        // Exhaustive on purpose: a new variant must choose its code.
        match self {
            ImageError::Empty => "empty_image",
            ImageError::TooLarge { .. } => "image_too_large",
            ImageError::UnsupportedFormat { .. } | ImageError::UnsupportedFeature { .. } => {
                "unsupported_image_format"
            }
            ImageError::DimensionsTooLarge { .. } | ImageError::MemoryLimit { .. } => {
                "image_dimensions_too_large"
            }
            ImageError::Truncated { .. } | ImageError::Corrupt { .. } => "invalid_image",
        }
    }

    /// Classifies an error from the `image` crate raised while decoding a
    /// file whose signature said `format`.
    pub(crate) fn from_decoder(format: ImageFormat, source: image::ImageError) -> Self {
        match &source {
            image::ImageError::Limits(_) => ImageError::MemoryLimit { format, source },
            image::ImageError::Unsupported(_) => ImageError::UnsupportedFeature { format, source },
            image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                ImageError::Truncated { format, source }
            }
            _ if looks_truncated(&source) => ImageError::Truncated { format, source },
            _ => ImageError::Corrupt { format, source },
        }
    }
}

/// Decoders report running out of input in different ways: an `io` EOF
/// error, or a decoding error whose message (or cause) says so. Truncation
/// gets its own variant because "the upload was cut off" is actionable for
/// a client (retry) where "corrupt" is not.
fn looks_truncated(e: &image::ImageError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return true;
            }
        }
        let msg = err.to_string().to_ascii_lowercase();
        if [
            "eof",
            "end of file",
            "unexpected end",
            "truncated",
            "no more bytes",
            "not enough",
        ]
        .iter()
        .any(|needle| msg.contains(needle))
        {
            return true;
        }
        cur = err.source();
    }
    false
}
