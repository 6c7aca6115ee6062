//! Helpers shared by the integration tests: the shared document data set.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$VERIFACE_SHARED_DIR`, else `../shared` beside the checkout; fails with
/// the fix when the document data set is not there.
pub fn documents_dir() -> PathBuf {
    let shared = std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("data/documents");
    assert!(
        dir.join("manifest.csv").is_file(),
        "the shared document data set is missing at {}: clone it beside the checkout or set VERIFACE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// One row of `manifest.csv`: the file (relative to the documents dir) and
/// its kind.
pub struct Specimen {
    /// e.g. `mrz/passporteye__100_pass-uto.jpg`.
    pub file: String,
    /// `mrz_td1`, `mrz_td2`, `mrz_td3`, `mrz_mrva`, `mrz_mrvb`, `pdf417`, `other`.
    pub kind: String,
}

/// The manifest's rows (only the first two columns are needed, and neither
/// holds a quoted comma).
pub fn manifest() -> Vec<Specimen> {
    let text = std::fs::read_to_string(documents_dir().join("manifest.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.splitn(3, ',');
            Specimen {
                file: cols.next().unwrap().to_string(),
                kind: cols.next().unwrap().to_string(),
            }
        })
        .collect()
}

/// The sidecar text of a specimen, byte for byte.
pub fn sidecar(file: &str) -> Vec<u8> {
    let p = documents_dir().join(format!("{file}.txt"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The specimen's expected MRZ lines.
pub fn sidecar_lines(file: &str) -> Vec<String> {
    String::from_utf8(sidecar(file))
        .unwrap()
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The image's decoded upright RGB pixels (through veriface's decoder, as
/// the service would see them).
pub fn image(file: &str) -> image::RgbImage {
    let bytes = std::fs::read(documents_dir().join(file)).unwrap();
    veriface_vision::decode::decode(&bytes, &veriface_vision::decode::DecodeLimits::default())
        .unwrap()
        .image
}
