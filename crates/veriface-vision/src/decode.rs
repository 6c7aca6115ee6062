//! Turning untrusted upload bytes into upright RGB pixels.
//!
//! Every check that can reject an image cheaply runs before the expensive
//! one: byte size, then the magic-byte signature, then the dimensions the
//! header declares. Only then are pixels decoded, with the `image` crate's
//! own allocation limit set as a second fence in case the header lies.
//!
//! ```
//! use veriface_vision::decode::{decode, DecodeLimits, ImageError};
//!
//! let err = decode(b"%PDF-1.7 ...", &DecodeLimits::default()).unwrap_err();
//! assert!(matches!(err, ImageError::UnsupportedFormat { detected: Some("pdf") }));
//! assert_eq!(err.code(), "unsupported_image_format");
//! ```

mod error;
mod format;

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

pub use error::ImageError;
pub use format::ImageFormat;
use format::{sniff, Sniffed};

/// Bounds on what [`decode`] accepts.
///
/// The defaults fit identity-document and selfie photos from phones
/// (12-50 MP sensors save 2-12 MB JPEGs) with headroom, while keeping the
/// worst case of one decode near 40 Mpx x 4 bytes = 160 MB of pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted encoded size in bytes. Default 20 MiB.
    pub max_bytes: usize,
    /// Largest accepted width in pixels, as stored in the file (before EXIF
    /// rotation). Default 16384, the WebP and common JPEG-encoder maximum.
    pub max_width: u32,
    /// Largest accepted height in pixels, as stored. Default 16384.
    pub max_height: u32,
    /// Largest accepted width x height. Default 40 000 000 (40 Mpx).
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 20 * 1024 * 1024,
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 40_000_000,
        }
    }
}

impl DecodeLimits {
    /// The `image` crate limits that back ours up inside the decoders.
    ///
    /// The allocation budget allows the largest accepted image at 8 bytes
    /// per pixel (16-bit RGBA, the widest layout our formats decode to) plus
    /// 64 MiB for decoder side buffers; a header that understates the real
    /// size cannot make a decoder allocate past it.
    fn to_image_limits(self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(
            self.max_pixels
                .saturating_mul(8)
                .saturating_add(64 * 1024 * 1024),
        );
        limits
    }
}

/// A decoded image and what was learnt about it on the way.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// The pixels, 8-bit RGB. Alpha is dropped, not composited, exactly as
    /// PIL's `convert("RGB")` in the reference pipeline does.
    pub image: image::RgbImage,
    /// The format sniffed from the magic bytes.
    pub format: ImageFormat,
    /// The EXIF orientation tag the file declares, 1..=8 (1 when absent or
    /// invalid).
    pub orientation: u16,
    /// Whether `orientation` was applied to `image` (false for
    /// [`decode_no_orientation`]).
    pub orientation_applied: bool,
    /// Width as stored in the file, before any rotation.
    pub original_width: u32,
    /// Height as stored in the file, before any rotation.
    pub original_height: u32,
}

/// Decodes an image and applies its EXIF orientation, so that the returned
/// pixels are upright as a person would view the photo.
///
/// Phone cameras store pixels in sensor order and record the rotation in
/// EXIF; without applying it a portrait selfie arrives lying on its side and
/// the face detector (trained on upright faces) finds nothing.
///
/// # Errors
///
/// [`ImageError::Empty`] and [`ImageError::TooLarge`] for the byte size,
/// [`ImageError::UnsupportedFormat`] when the signature is not JPEG, PNG,
/// BMP, GIF or WebP, [`ImageError::DimensionsTooLarge`] when the header
/// exceeds `limits` (checked before any pixel is decoded), and
/// [`ImageError::Truncated`], [`ImageError::Corrupt`],
/// [`ImageError::UnsupportedFeature`] or [`ImageError::MemoryLimit`] when
/// decoding fails.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, ImageError> {
    decode_with(bytes, limits, true)
}

/// Decodes an image like [`decode`] but leaves the pixels in stored order,
/// ignoring EXIF orientation.
///
/// This is how dlib's and face_recognition's loaders read files, so parity
/// tests against their golden outputs must use it.
///
/// # Errors
///
/// As [`decode`].
pub fn decode_no_orientation(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<DecodedImage, ImageError> {
    decode_with(bytes, limits, false)
}

fn decode_with(
    bytes: &[u8],
    limits: &DecodeLimits,
    apply_orientation: bool,
) -> Result<DecodedImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = match sniff(bytes) {
        Sniffed::Supported(f) => f,
        Sniffed::Known(name) => {
            return Err(ImageError::UnsupportedFormat {
                detected: Some(name),
            })
        }
        Sniffed::Unknown => return Err(ImageError::UnsupportedFormat { detected: None }),
    };
    let fail = |e| ImageError::from_decoder(format, e);

    // The reader only carries the allocation budget: width/height limits set
    // here would make the header parse fail with the crate's generic limit
    // error, and we want our own error naming the declared size.
    let image_limits = limits.to_image_limits();
    let mut header_limits = Limits::default();
    header_limits.max_alloc = image_limits.max_alloc;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image_format());
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(fail)?;

    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    if width == 0 || height == 0 {
        // Some headers (BMP, GIF) can declare an empty canvas; there is no
        // face in zero pixels, and callers should not have to check.
        return Err(fail(image::ImageError::Decoding(
            image::error::DecodingError::new(
                format.to_image_format().into(),
                "the image has zero width or height",
            ),
        )));
    }
    let mut image_limits = image_limits;
    image_limits.reserve(decoder.total_bytes()).map_err(fail)?;
    decoder.set_limits(image_limits).map_err(fail)?;

    // Broken metadata is not a reason to refuse a photo whose pixels are
    // fine: an unreadable EXIF block counts as "no orientation".
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut dynamic = match jpeg_exact(format, bytes, limits)? {
        Some(rgb) => DynamicImage::ImageRgb8(rgb),
        None => DynamicImage::from_decoder(decoder).map_err(fail)?,
    };
    if apply_orientation {
        dynamic.apply_orientation(orientation);
    }
    Ok(DecodedImage {
        image: dynamic.into_rgb8(),
        format,
        orientation: u16::from(orientation.to_exif()),
        orientation_applied: apply_orientation,
        original_width: width,
        original_height: height,
    })
}

fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), ImageError> {
    let pixels = u64::from(width) * u64::from(height);
    if width > limits.max_width || height > limits.max_height || pixels > limits.max_pixels {
        return Err(ImageError::DimensionsTooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// Decodes a JPEG with veriface-jpeg, whose pixels are bit-identical to
/// libjpeg-turbo's (and so to PIL's, which the dlib reference pipeline and
/// face_recognition use): other decoders round differently by a level or
/// two, which is enough to move dlib's landmarks by several pixels.
///
/// Returns `None` for anything else it does not decode (not a JPEG, a
/// feature it does not support such as arithmetic coding or CMYK, or damage
/// it does not tolerate), so the caller falls back to the `image` crate and a
/// photo that any decoder can read is never refused.
///
/// # Errors
///
/// [`ImageError::Truncated`] when the entropy-coded data ends mid-scan. The
/// fallback decoder would accept such a file (a progressive JPEG cut in half
/// decodes to a blurred or half-grey picture), but PIL, and so the reference
/// pipeline, refuses it, and a client should be told to upload again.
fn jpeg_exact(
    format: ImageFormat,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<image::RgbImage>, ImageError> {
    if format != ImageFormat::Jpeg {
        return Ok(None);
    }
    let jpeg_limits = veriface_jpeg::Limits {
        max_pixels: limits.max_pixels,
    };
    match veriface_jpeg::decode_rgb(bytes, &jpeg_limits) {
        Ok(out) => Ok(image::RgbImage::from_raw(out.width, out.height, out.pixels)),
        Err(e @ veriface_jpeg::JpegError::Truncated) => Err(ImageError::Truncated {
            format,
            source: image::ImageError::Decoding(image::error::DecodingError::new(
                image::ImageFormat::Jpeg.into(),
                e,
            )),
        }),
        Err(_) => Ok(None),
    }
}
