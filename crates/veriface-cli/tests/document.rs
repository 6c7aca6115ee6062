//! End-to-end tests of `veriface document`: the real binary on specimen
//! images of the shared data set (`data/documents/`), checking the JSON
//! contract (one object per image, in argument order), the MRZ read by OCR,
//! the PDF417 text, and the error contract (exit 2, JSON on stderr).
//!
//! Images come from `$VERIFACE_SHARED_DIR`, else `../shared` beside the
//! checkout; Tesseract from `scripts/deps/20-tesseract.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn documents_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data/documents");
    assert!(
        dir.join("manifest.csv").is_file(),
        "the shared document data set is missing at {}: clone it beside the checkout or set VERIFACE_SHARED_DIR",
        dir.display()
    );
    dir
}

fn run(args: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veriface"))
        .arg("document")
        .args(args)
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn document_reads_mrz_and_barcode_per_image_in_argument_order() {
    let dir = documents_dir();
    let card = dir.join("mrz/passporteye__100_id-usa.jpg");
    let barcode = dir.join("pdf417/zxing__pdf417-1_01.png");
    let landscape = dir.join("negative/passporteye__pacman.jpg");
    let out = run(&[card.clone(), barcode.clone(), landscape.clone()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3);

    let c = &items[0];
    assert_eq!(c["file"], card.display().to_string());
    let mrz = &c["mrz"];
    assert_eq!(mrz["format"], "TD1");
    let expected: Vec<String> =
        std::fs::read_to_string(dir.join("mrz/passporteye__100_id-usa.jpg.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    let lines: Vec<String> = mrz["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(lines, expected);
    assert_eq!(mrz["valid"], true);
    assert_eq!(mrz["fields"]["document_code"], "IA");
    assert_eq!(mrz["fields"]["document_number"], "000000003");
    assert_eq!(mrz["fields"]["surname"], "SPECIMEN");
    assert_eq!(mrz["fields"]["given_names"], "TEST VOID");
    assert_eq!(mrz["fields"]["birth_date"], "1958-08-17");
    assert_eq!(mrz["fields"]["expiry_date"], "2010-04-02");
    assert_eq!(mrz["fields"]["sex"], "F");
    let checks = mrz["checks"].as_object().unwrap();
    let mut names: Vec<&str> = checks.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["birth_date", "composite", "document_number", "expiry_date"]
    );
    assert!(checks.values().all(|c| c["valid"] == true));
    assert_eq!(c["barcodes"], serde_json::json!([]));

    let b = &items[1];
    assert_eq!(b["file"], barcode.display().to_string());
    assert_eq!(b["mrz"], Value::Null);
    assert_eq!(
        b["barcodes"],
        serde_json::json!([{"format": "PDF417", "text": "This is PDF417"}])
    );

    let n = &items[2];
    assert_eq!(n["mrz"], Value::Null);
    assert_eq!(n["barcodes"], serde_json::json!([]));
}

#[test]
fn document_reports_unreadable_files_with_stable_codes_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("veriface-cli-document-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("not-an-image.jpg");
    std::fs::write(&text, b"hello, not an image").unwrap();
    let missing = dir.join("missing.png");
    let barcode = documents_dir().join("pdf417/zxing__pdf417-1_04.png");
    let out = run(&[missing.clone(), text.clone(), barcode]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v = stdout_json(&out);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3, "every image gets its object");
    assert_eq!(items[0]["error"]["code"], "file_not_found");
    assert_eq!(items[1]["error"]["code"], "unsupported_image_format");
    assert_eq!(
        items[2]["barcodes"][0]["text"],
        "-ActiveBarcode-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    );
    let errors: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(errors.len(), 2, "one JSON error per failed image on stderr");
    assert_eq!(errors[0]["error"]["file"], missing.display().to_string());
}
