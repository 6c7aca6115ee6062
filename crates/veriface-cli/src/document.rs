//! `veriface document IMAGE...`: reads the MRZ and PDF417 barcodes of
//! identity-document images without the server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use veriface_document::date::Date;
use veriface_document::{DocumentReader, DocumentReading};
use veriface_vision::decode::{decode, DecodeLimits};

use crate::output::{self, CliError};

/// The JSON of one read document: `{"file", "mrz", "barcodes", ...}`.
fn reading_json(file: &str, r: &DocumentReading) -> Value {
    let mrz = r.mrz.as_ref().map(|o| {
        let m = &o.mrz;
        let checks: Map<String, Value> = m
            .checks
            .iter()
            .map(|c| {
                (
                    c.field.as_str().to_string(),
                    json!({"found": c.found.to_string(), "computed": c.computed, "valid": c.valid}),
                )
            })
            .collect();
        json!({
            "format": m.format.as_str(),
            "lines": m.lines,
            "fields": m.fields,
            "valid": m.is_valid(),
            "checks": checks,
            "corrections": m.corrections,
            "rotation": o.rotation,
        })
    });
    json!({
        "file": file,
        "mrz": mrz,
        "barcodes": r.barcodes,
        "aamva": r.aamva.as_ref().map(|a| a.fields()),
        "timings_ms": r.timings,
    })
}

fn read_one(
    reader: &mut DocumentReader,
    path: &Path,
    today: Date,
) -> Result<DocumentReading, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, &e))?;
    let img = decode(&bytes, &DecodeLimits::default())
        .map_err(|e| CliError::image(path, &e))?
        .image;
    Ok(reader.read(&img, today))
}

/// Runs the subcommand: one JSON object per image, in argument order.
/// Exit 0 when every image was read (whether or not it had an MRZ), 2 when
/// any failed (each failure also goes to stderr as a JSON error).
///
/// # Errors
///
/// `ocr_unavailable` when Tesseract or its model is missing.
pub fn run(images: &[PathBuf], human: bool) -> Result<ExitCode, CliError> {
    let mut reader = DocumentReader::new().map_err(|e| CliError::new(e.code(), e.to_string()))?;
    let today = Date::today_utc();
    let mut out = Vec::with_capacity(images.len());
    let mut failed = false;
    for path in images {
        let file = path.display().to_string();
        match read_one(&mut reader, path, today) {
            Ok(r) => {
                if human {
                    print_human(&file, &r)?;
                }
                out.push(reading_json(&file, &r));
            }
            Err(e) => {
                failed = true;
                if human {
                    output::print_line(&format!("{file}: error {}: {}", e.code, e.message))?;
                }
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "{}",
                    json!({"error": {"code": e.code, "message": e.message, "file": file}})
                );
                out.push(json!({"file": file, "error": {"code": e.code, "message": e.message}, "mrz": null, "barcodes": []}));
            }
        }
    }
    if !human {
        output::print_json(&Value::Array(out))?;
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_human(file: &str, r: &DocumentReading) -> Result<(), CliError> {
    match &r.mrz {
        Some(o) => {
            let m = &o.mrz;
            output::print_line(&format!(
                "{file}  MRZ {}  {}",
                m.format.as_str(),
                if m.is_valid() { "valid" } else { "INVALID" }
            ))?;
            for l in &m.lines {
                output::print_line(&format!("  {l}"))?;
            }
        }
        None => output::print_line(&format!("{file}  no MRZ"))?,
    }
    for b in &r.barcodes {
        output::print_line(&format!("  {} barcode, {} bytes", b.format, b.text.len()))?;
    }
    Ok(())
}
