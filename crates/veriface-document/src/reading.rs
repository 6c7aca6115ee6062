//! One call that reads everything a document image holds: what the session
//! processing calls on the ID front and back.

use std::time::Instant;

use image::{imageops, RgbImage};
use serde::Serialize;

use crate::aamva::{parse_aamva, AamvaRecord};
use crate::barcode::{decode_pdf417, Barcode};
use crate::date::Date;
use crate::ocr::{MrzOcr, OcrError, OcrMrz};

/// Why a document could not be read at all (as opposed to a document
/// without an MRZ or barcode, which reads to an empty [`DocumentReading`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The OCR engine is not installed or could not start.
    #[error(transparent)]
    Ocr(#[from] OcrError),
}

impl ReadError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::Ocr(e) => e.code(),
        }
    }
}

/// Milliseconds spent on each part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Finding and OCR'ing the MRZ.
    pub mrz_ms: f64,
    /// Finding and decoding barcodes.
    pub barcode_ms: f64,
}

/// Everything read from one document image.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentReading {
    /// The MRZ, if one was found (valid or not: see `mrz.mrz.is_valid()`).
    pub mrz: Option<OcrMrz>,
    /// Decoded barcodes.
    pub barcodes: Vec<Barcode>,
    /// The first barcode that is AAMVA driver-licence data, parsed.
    #[serde(skip)]
    pub aamva: Option<AamvaRecord>,
    /// Time spent.
    pub timings: Timings,
}

/// Reads documents; holds the OCR engine, so keep one per thread.
#[derive(Debug)]
pub struct DocumentReader {
    ocr: MrzOcr,
}

impl DocumentReader {
    /// Starts the OCR engine.
    ///
    /// # Errors
    ///
    /// [`ReadError::Ocr`] when Tesseract or its model is missing.
    pub fn new() -> Result<DocumentReader, ReadError> {
        Ok(DocumentReader {
            ocr: MrzOcr::new()?,
        })
    }

    /// Reads the MRZ and any PDF417 barcode of an upright-or-rotated
    /// document photo (as decoded by `veriface_vision::decode`). Two-digit
    /// MRZ years are resolved against `today`.
    pub fn read(&mut self, img: &RgbImage, today: Date) -> DocumentReading {
        let t0 = Instant::now();
        let mrz = self.ocr.read_mrz(img, today);
        let t1 = Instant::now();
        let barcodes: Vec<Barcode> = decode_pdf417(&imageops::grayscale(img))
            .into_iter()
            .collect();
        let aamva = barcodes.iter().find_map(|b| parse_aamva(&b.text).ok());
        DocumentReading {
            mrz,
            barcodes,
            aamva,
            timings: Timings {
                mrz_ms: ms(t1 - t0),
                barcode_ms: ms(t1.elapsed()),
            },
        }
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Reads one document with a fresh [`DocumentReader`] and today's UTC
/// date; for one-off use (a server keeps readers instead).
///
/// # Errors
///
/// As [`DocumentReader::new`].
pub fn read_document(img: &RgbImage) -> Result<DocumentReading, ReadError> {
    Ok(DocumentReader::new()?.read(img, Date::today_utc()))
}
