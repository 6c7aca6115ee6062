//! The decoder must never panic, whatever the input.

use proptest::prelude::*;
use std::path::PathBuf;
use veriface_jpeg::{decode_rgb, read_header, Limits};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/synthetic")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const FILES: [&str; 6] = [
    "s420_17x13.jpg",
    "prog420_33x29.jpg",
    "rst2_prog420_61x47.jpg",
    "mixed_33x29.jpg",
    "gray_prog_33x29.jpg",
    "s411_33x29.jpg",
];

const LIMITS: Limits = Limits {
    max_pixels: 1 << 22,
};

#[test]
fn every_truncation_is_handled() {
    for name in FILES {
        let bytes = fixture(name);
        for cut in 0..bytes.len() {
            let _ = read_header(&bytes[..cut]);
            let _ = decode_rgb(&bytes[..cut], &LIMITS);
        }
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    for name in ["s420_17x13.jpg", "prog420_33x29.jpg"] {
        let bytes = fixture(name);
        for i in 0..bytes.len() {
            for v in [0x00, 0xFF, bytes[i] ^ 0x5A] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = decode_rgb(&b, &LIMITS);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_header(&data);
        let _ = decode_rgb(&data, &LIMITS);
        let mut with_soi = vec![0xFF, 0xD8];
        with_soi.extend_from_slice(&data);
        let _ = decode_rgb(&with_soi, &LIMITS);
    }

    #[test]
    fn mutated_files_never_panic(
        file in 0..FILES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fixture(FILES[file]);
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        let len = cut.index(bytes.len() + 1);
        let _ = decode_rgb(&bytes[..len], &LIMITS);
        let _ = decode_rgb(&bytes, &LIMITS);
    }
}
