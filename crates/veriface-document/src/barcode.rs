//! PDF417 barcodes (the back of North American driving licences), read and
//! written with `rxing`, a Rust port of ZXing.

use image::{GrayImage, Luma};
use rxing::common::HybridBinarizer;
use rxing::pdf417::{PDF417Reader, PDF417Writer};
use rxing::{
    BarcodeFormat, BinaryBitmap, DecodeHints, EncodeHints, Luma8LuminanceSource, Reader, Writer,
};
use serde::Serialize;

/// One decoded barcode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Barcode {
    /// The symbology; always `PDF417` for now.
    pub format: &'static str,
    /// The decoded text (control characters such as AAMVA's 0x1E kept).
    pub text: String,
}

/// Why a barcode could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a PDF417 barcode: {0}")]
pub struct EncodeError(String);

/// Finds and decodes a PDF417 barcode in a grayscale image; `None` when
/// there is none (or none that decodes).
///
/// Tries the image as given, then rotated by 90 degrees (a licence
/// photographed in portrait), with ZXing's "try harder" search.
pub fn decode_pdf417(gray: &GrayImage) -> Option<Barcode> {
    let hints = DecodeHints {
        TryHarder: Some(true),
        ..DecodeHints::default()
    };
    let attempt = |img: &GrayImage| {
        let source =
            Luma8LuminanceSource::new(img.as_raw().clone(), img.width(), img.height()).ok()?;
        let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
        PDF417Reader
            .decode_with_hints(&mut bitmap, &hints)
            .ok()
            .map(|r| Barcode {
                format: "PDF417",
                text: r.getText().to_string(),
            })
    };
    attempt(gray).or_else(|| attempt(&image::imageops::rotate90(gray)))
}

/// Renders `text` as a PDF417 symbol, `module` pixels per module (at
/// least 1) with the standard quiet zone; byte compaction keeps control
/// characters intact.
///
/// For test fixtures: veriface reads barcodes, it does not issue them.
///
/// # Errors
///
/// [`EncodeError`] when the text does not fit a PDF417 symbol.
pub fn encode_pdf417(text: &str, module: u32) -> Result<GrayImage, EncodeError> {
    let hints = EncodeHints {
        Margin: Some("2".into()),
        ErrorCorrection: Some("5".into()),
        ..EncodeHints::default()
    };
    let matrix = PDF417Writer::new()
        .encode_with_hints(text, &BarcodeFormat::PDF_417, 0, 0, &hints)
        .map_err(|e| EncodeError(e.to_string()))?;
    let module = module.max(1);
    let (w, h) = (matrix.getWidth(), matrix.getHeight());
    // PDF417 rows are taller than modules are wide (ZXing's writer already
    // stretches rows 1:4 in the matrix), so each matrix cell is square.
    Ok(GrayImage::from_fn(w * module, h * module, |x, y| {
        if matrix.get(x / module, y / module) {
            Luma([0])
        } else {
            Luma([255])
        }
    }))
}
