//! Reading the MRZ from a document image: find the band
//! ([`locate::find_bands`]), OCR it with Tesseract restricted to the MRZ
//! alphabet `A-Z0-9<`, then let the parser and the check digits choose and
//! correct ([`crate::mrz::ParseOptions::correct_ocr_confusions`]).
//!
//! Tesseract is Debian's `libtesseract5` with the `eng` LSTM model from
//! `tesseract-ocr-eng` (no MRZ-specific model is packaged); the tessdata
//! directory is `$VERIFACE_TESSDATA_DIR` when set, else the library's
//! compiled-in default (`/usr/share/tesseract-ocr/5/tessdata` on Debian).

mod fit;
pub mod locate;

use std::ffi::CString;

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};
use serde::Serialize;
use tesseract_plumbing::tesseract_sys::TessPageSegMode_PSM_SINGLE_BLOCK;
use tesseract_plumbing::TessBaseApi;

use crate::date::Date;
use crate::mrz::Mrz;
use locate::{find_bands, Rect};

/// The MRZ alphabet, the only characters Tesseract may answer with.
const WHITELIST: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<";

/// Bands OCR'd per orientation at most: each costs a Tesseract call.
const MAX_BANDS: usize = 3;

/// Why the OCR engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// Tesseract could not load its `eng` model.
    #[error("tesseract could not load the eng model from {datapath}: install tesseract-ocr-eng (scripts/deps/20-tesseract.sh) or set VERIFACE_TESSDATA_DIR")]
    Init {
        /// Where it looked.
        datapath: String,
    },
    /// A Tesseract setting was refused (a bug).
    #[error("tesseract refused setting {name}")]
    Setting {
        /// Which one.
        name: &'static str,
    },
}

impl OcrError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            OcrError::Init { .. } => "ocr_unavailable",
            OcrError::Setting { .. } => "internal",
        }
    }
}

/// An MRZ found by OCR, with where it was found.
#[derive(Debug, Clone, Serialize)]
pub struct OcrMrz {
    /// The parsed (and possibly corrected) MRZ.
    pub mrz: Mrz,
    /// Tesseract's raw lines for the band the MRZ came from.
    pub raw_lines: Vec<String>,
    /// Clockwise rotation, in degrees, that made the document upright.
    pub rotation: u16,
    /// Tesseract calls made.
    pub ocr_calls: usize,
}

/// A Tesseract instance set up for MRZ lines. Loading the model takes
/// ~100 ms, so keep one per thread and reuse it.
pub struct MrzOcr {
    api: TessBaseApi,
}

impl std::fmt::Debug for MrzOcr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MrzOcr").finish_non_exhaustive()
    }
}

fn cstring(s: &str) -> CString {
    // Our constants and paths never contain NUL; an env var that does is
    // cut there.
    CString::new(s.split('\0').next().unwrap_or_default()).unwrap_or_default()
}

impl MrzOcr {
    /// Loads Tesseract's `eng` model.
    ///
    /// # Errors
    ///
    /// [`OcrError::Init`] when the model is not installed.
    pub fn new() -> Result<MrzOcr, OcrError> {
        let datapath = std::env::var("VERIFACE_TESSDATA_DIR").ok();
        let mut api = TessBaseApi::create();
        let dp = datapath.as_deref().map(cstring);
        // Debian's eng model (tessdata_fast) holds only the LSTM network.
        let oem = tesseract_plumbing::tesseract_sys::TessOcrEngineMode_OEM_LSTM_ONLY;
        api.init_4(dp.as_deref(), Some(&cstring("eng")), oem)
            .map_err(|_| OcrError::Init {
                datapath: datapath.unwrap_or_else(|| "the default tessdata directory".into()),
            })?;
        let set = |api: &mut TessBaseApi, name: &'static str, value: &str| {
            api.set_variable(&cstring(name), &cstring(value))
                .map_err(|_| OcrError::Setting { name })
        };
        set(&mut api, "tessedit_char_whitelist", WHITELIST)?;
        // Dictionary words only hurt on MRZ lines.
        set(&mut api, "load_system_dawg", "0")?;
        set(&mut api, "load_freq_dawg", "0")?;
        api.set_page_seg_mode(TessPageSegMode_PSM_SINGLE_BLOCK);
        Ok(MrzOcr { api })
    }

    /// The text lines Tesseract reads in a grayscale image, spaces removed.
    pub fn read_lines(&mut self, g: &GrayImage) -> Vec<String> {
        let (Ok(w), Ok(h)) = (i32::try_from(g.width()), i32::try_from(g.height())) else {
            return Vec::new();
        };
        if self.api.set_image(g.as_raw(), w, h, 1, w).is_err() {
            return Vec::new();
        }
        // Tesseract warns about (and guesses) a missing resolution; the
        // scale we feed it is about that of a 300 dpi scan.
        self.api.set_source_resolution(300);
        let Ok(text) = self.api.get_utf8_text() else {
            return Vec::new();
        };
        String::from_utf8_lossy(text.as_ref().to_bytes())
            .lines()
            .map(|l| l.chars().filter(|c| !c.is_whitespace()).collect::<String>())
            .filter(|l| l.len() >= 10)
            .collect()
    }

    /// Finds, reads and parses the MRZ of a document photo; `None` when no
    /// band yields anything MRZ-shaped. Tries the upright image first, then
    /// the other three orientations, and stops at the first valid MRZ.
    pub fn read_mrz(&mut self, img: &RgbImage, today: Date) -> Option<OcrMrz> {
        let gray = imageops::grayscale(img);
        let mut best: Option<OcrMrz> = None;
        let mut calls = 0;
        for rotation in [0u16, 90, 270, 180] {
            let g = match rotation {
                90 => imageops::rotate90(&gray),
                180 => imageops::rotate180(&gray),
                270 => imageops::rotate270(&gray),
                _ => gray.clone(),
            };
            // Localise on a copy 800 px wide (up- or downscaled), the size
            // the filters are tuned for.
            let s = 800.0 / g.width() as f32;
            let small = imageops::resize(
                &g,
                800,
                ((g.height() as f32 * s) as u32).max(1),
                FilterType::Triangle,
            );
            let mut rects: Vec<(Rect, f32)> = find_bands(&small)
                .into_iter()
                .take(MAX_BANDS)
                .map(|band| {
                    let lh = band.line_height / s;
                    // A lone line may be half of an MRZ whose other line did
                    // not pass as a line: take in its neighbours.
                    let my = if band.lines == 1 { lh * 3.5 } else { lh * 0.8 };
                    let rect = band
                        .rect
                        .scaled_grown(1.0 / s, lh * 1.5, my, g.width(), g.height());
                    (rect, lh)
                })
                .collect();
            if rotation == 0 {
                // Last resort for the upright image: the bottom 45 %, where
                // ICAO puts the MRZ, with capitals assumed ~1/40 of the width
                // (between TD1's 1/33 and TD3's 1/49).
                let top = g.height() * 55 / 100;
                let rect = Rect {
                    x: 0,
                    y: top,
                    w: g.width(),
                    h: g.height() - top,
                };
                rects.push((rect, g.width() as f32 / 40.0));
            }
            for (rect, lh) in rects {
                if rect.w < 20 || rect.h < 8 {
                    continue;
                }
                let crop = imageops::crop_imm(&g, rect.x, rect.y, rect.w, rect.h).to_image();
                // Tesseract reads best with capitals ~30 px tall.
                let zoom = (30.0 / lh).clamp(0.5, 4.0);
                let crop = if (zoom - 1.0).abs() > 0.1 {
                    imageops::resize(
                        &crop,
                        (crop.width() as f32 * zoom) as u32,
                        (crop.height() as f32 * zoom) as u32,
                        FilterType::CatmullRom,
                    )
                } else {
                    crop
                };
                let lines = self.read_lines(&crop);
                calls += 1;
                if let Some(mrz) = fit::best_mrz(&lines, today) {
                    let better = best
                        .as_ref()
                        .is_none_or(|b| fit::score(&mrz) > fit::score(&b.mrz));
                    if better {
                        best = Some(OcrMrz {
                            mrz,
                            raw_lines: lines,
                            rotation,
                            ocr_calls: 0,
                        });
                    }
                }
                if best.as_ref().is_some_and(|b| b.mrz.is_valid()) {
                    break;
                }
            }
            if best.as_ref().is_some_and(|b| b.mrz.is_valid()) {
                break;
            }
        }
        best.map(|mut b| {
            b.ocr_calls = calls;
            b
        })
    }
}
