//! A pure-Rust JPEG decoder whose RGB output is bit-identical to
//! libjpeg-turbo's default decode (`djpeg -rgb`, or PIL's
//! `Image.open(p).convert("RGB")`).
//!
//! dlib's reference outputs were computed on pixels decoded by libjpeg-turbo,
//! so the face models only reproduce them when the input pixels match exactly.
//! This crate reproduces libjpeg-turbo's default decompression parameters:
//!
//! * `JDCT_ISLOW` integer inverse DCT (`jidctint.c`), including its range-limit
//!   table and wrap-around behaviour on extreme coefficients;
//! * "fancy" (triangle-filter) upsampling for h2v1, h1v2 and h2v2 chroma, box
//!   replication for other integral ratios (`jdsample.c`), never merged
//!   upsampling;
//! * fixed-point YCbCr to RGB conversion (`jdcolor.c`);
//! * libjpeg's colour-space guessing (JFIF, Adobe APP14 transform, component
//!   ids).
//!
//! Supported: 8-bit Huffman-coded baseline (SOF0), extended sequential (SOF1)
//! and progressive (SOF2) JPEGs with 1 (grayscale) or 3 (YCbCr or RGB)
//! components, any integral sampling factors, restart markers.
//!
//! Not supported (reported as [`JpegError::Unsupported`] so a caller can fall
//! back to another decoder): arithmetic coding, lossless and hierarchical
//! JPEG, 12/16-bit precision, CMYK/YCCK and other component counts, fractional
//! sampling ratios, images relying on a DNL marker for their height, and
//! progressive images that are missing low-frequency refinement scans (for
//! which libjpeg would apply its inter-block smoothing).
//!
//! Truncation policy: if the entropy-coded data of a scan ends (end of input or
//! an unexpected marker) before all of its MCUs are decoded, [`decode_rgb`]
//! returns [`JpegError::Truncated`] (libjpeg would warn and fill the rest with
//! zeros). A progressive file that ends cleanly *between* scans is decoded with
//! the coefficients received so far, as libjpeg does, and a file missing only
//! its final EOI marker is accepted.
//!
//! The decoder never panics on any input: every index is bounds-checked and all
//! input-controlled arithmetic is checked or wrapping.

#![forbid(unsafe_code)]

mod bitreader;
mod color;
mod decoder;
mod huffman;
mod idct;
mod markers;

use thiserror::Error;

/// Resource limits checked before any image-sized allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum `width * height` accepted; larger images fail with
    /// [`JpegError::TooLarge`] before any pixel buffer is allocated.
    pub max_pixels: u64,
}

impl Default for Limits {
    /// 100 megapixels.
    fn default() -> Self {
        Self {
            max_pixels: 100_000_000,
        }
    }
}

/// A decoded image: 8-bit RGB, row-major, no padding between rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbOutput {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, R, G, B per pixel, rows top to bottom.
    pub pixels: Vec<u8>,
}

/// The colour space libjpeg would assume for the encoded components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorSpace {
    /// One component: luminance only.
    Grayscale,
    /// Three components, YCbCr (JFIF, Adobe transform 1, or the default guess).
    YCbCr,
    /// Three components stored as RGB (Adobe transform 0 or ids 'R','G','B').
    Rgb,
    /// Four components, Adobe transform 2 (not supported for decoding).
    Ycck,
    /// Four components without a YCCK transform (not supported for decoding).
    Cmyk,
    /// Any other component count (not supported for decoding).
    Unknown,
}

/// Frame information gathered from the markers up to and including the SOF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels (0 if the file defers it to a DNL marker).
    pub height: u32,
    /// Number of colour components in the frame.
    pub components: u8,
    /// Whether the frame is progressive (SOF2).
    pub progressive: bool,
    /// Sample precision in bits (only 8 is decodable).
    pub precision: u8,
    /// `(horizontal, vertical)` sampling factors per component, in frame order.
    pub sampling_factors: Vec<(u8, u8)>,
    /// The colour space libjpeg would assume, from JFIF/Adobe markers seen
    /// before the SOF and the component ids.
    pub color_space: ColorSpace,
}

/// A JPEG feature this decoder does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Unsupported {
    /// Arithmetic entropy coding (SOF9..SOF11, SOF13..SOF15).
    #[error("arithmetic coding")]
    ArithmeticCoding,
    /// Lossless JPEG (SOF3, SOF7, SOF11, SOF15).
    #[error("lossless JPEG")]
    Lossless,
    /// Hierarchical JPEG (SOF5..SOF7, DHP/EXP markers).
    #[error("hierarchical JPEG")]
    Hierarchical,
    /// A sample precision other than 8 bits.
    #[error("{0}-bit sample precision")]
    Precision(u8),
    /// A component count / colour space other than grayscale, YCbCr or RGB
    /// (CMYK, YCCK, two-component files, ...).
    #[error("{0} colour components")]
    ColorComponents(u8),
    /// Sampling factors whose ratio to the maximum is not an integer.
    #[error("non-integral sampling ratio")]
    FractionalSampling,
    /// Image height given only by a DNL marker.
    #[error("image height defined by a DNL marker")]
    DnlHeight,
    /// A progressive image whose low-frequency AC coefficients were never
    /// fully refined, for which libjpeg applies inter-block smoothing.
    #[error("progressive block smoothing")]
    BlockSmoothing,
}

/// Why a JPEG could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JpegError {
    /// The input ended before the image data was complete.
    #[error("JPEG data is truncated")]
    Truncated,
    /// The input is not a well-formed JPEG.
    #[error("corrupt JPEG data: {0}")]
    Corrupt(&'static str),
    /// A valid JPEG using a feature this decoder does not implement; another
    /// decoder may handle it.
    #[error("unsupported JPEG feature: {0}")]
    Unsupported(Unsupported),
    /// The image has more pixels than [`Limits::max_pixels`].
    #[error("image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")]
    TooLarge {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// The configured limit.
        max_pixels: u64,
    },
}

impl From<Unsupported> for JpegError {
    fn from(u: Unsupported) -> Self {
        JpegError::Unsupported(u)
    }
}

/// Parses the markers up to and including the start-of-frame marker, without
/// decoding any image data, so callers can check dimensions before decoding.
///
/// # Errors
/// [`JpegError::Corrupt`] / [`JpegError::Truncated`] for malformed input,
/// [`JpegError::Unsupported`] for arithmetic-coded, lossless, hierarchical or
/// non-8-bit frames.
pub fn read_header(bytes: &[u8]) -> Result<Header, JpegError> {
    markers::read_header(bytes)
}

/// Decodes a JPEG to 8-bit RGB exactly as libjpeg-turbo does with its default
/// settings (`JDCT_ISLOW`, fancy upsampling, `JCS_RGB` output).
///
/// # Errors
/// See [`JpegError`]; [`JpegError::TooLarge`] is returned before any
/// image-sized allocation.
pub fn decode_rgb(bytes: &[u8], limits: &Limits) -> Result<RgbOutput, JpegError> {
    decoder::decode(bytes, limits)
}
