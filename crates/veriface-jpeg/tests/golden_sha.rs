//! Bit-exactness against libjpeg-turbo on the golden face images.
//!
//! `tests/fixtures/libjpeg_turbo_sha256.txt` holds the sha256 of libjpeg-turbo
//! 2.1.5's `djpeg -rgb` output for every JPEG under `shared/data/faces`. The
//! shared directory is `$VERIFACE_SHARED_DIR`, or `../../../shared` relative to
//! this crate (the worktree layout); a missing directory is a failure.

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use veriface_jpeg::{decode_rgb, read_header, Limits};

fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_SHARED_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    assert!(
        dir.join("data/faces").is_dir(),
        "shared data not found at {} (set VERIFACE_SHARED_DIR to the directory holding data/faces)",
        dir.display()
    );
    dir
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn golden_images_are_bit_identical_to_libjpeg_turbo() {
    let faces = shared_dir().join("data/faces");
    let list = include_str!("fixtures/libjpeg_turbo_sha256.txt");
    let filter = std::env::var("VERIFACE_JPEG_FILTER").unwrap_or_default();
    let mut total = 0;
    let mut failures = Vec::new();
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut it = line.split_whitespace();
        let (Some(sha), Some(dims), Some(rel)) = (it.next(), it.next(), it.next()) else {
            panic!("bad fixture line {line:?}");
        };
        if !rel.contains(&filter) {
            continue;
        }
        total += 1;
        let bytes = std::fs::read(faces.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let header = read_header(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(format!("{}x{}", header.width, header.height), dims, "{rel}");
        match decode_rgb(&bytes, &Limits::default()) {
            Ok(img) => {
                assert_eq!(
                    img.pixels.len(),
                    img.width as usize * img.height as usize * 3
                );
                let got = hex(&Sha256::digest(&img.pixels));
                if got != sha {
                    failures.push(format!("{rel}: sha mismatch"));
                    if let Ok(dir) = std::env::var("VERIFACE_JPEG_DUMP") {
                        let name = rel.replace('/', "_");
                        let mut ppm =
                            format!("P6\n{} {}\n255\n", img.width, img.height).into_bytes();
                        ppm.extend_from_slice(&img.pixels);
                        std::fs::write(PathBuf::from(dir).join(format!("{name}.ppm")), ppm)
                            .unwrap();
                    }
                }
            }
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
    }
    println!("{} of {total} bit-identical", total - failures.len());
    assert!(total > 0, "no golden files matched");
    assert!(
        failures.is_empty(),
        "{} of {total} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
