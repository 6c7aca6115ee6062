//! Reference decodes for bit-exactness tests.
//!
//! dlib's goldens were computed on images decoded by PIL, i.e. by
//! libjpeg-turbo. The `image` crate decodes JPEG with zune-jpeg, whose
//! pixels differ from libjpeg-turbo's by up to 2 levels (3 311 of 506 880
//! bytes on `angelina/img5.jpg`), which moves a landmark or a chip pixel now
//! and then. To test the engine itself bit for bit, the `*_on_libjpeg_decodes`
//! tests read libjpeg-turbo decodes from `$VERIFACE_LIBJPEG_DIR` as binary
//! PPM files, `<dir>/images/<identity>/<stem>.ppm`, made with any
//! libjpeg-turbo tool (e.g. `djpeg -rgb -outfile X.ppm X.jpg`). Files that
//! are not JPEG (one WebP in the set) have no PPM and are decoded with
//! `image` as usual.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use crate::common::{load_rgb_no_exif, Golden};

/// `$VERIFACE_LIBJPEG_DIR`, or a panic naming what to set.
pub fn libjpeg_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_LIBJPEG_DIR").map(PathBuf::from);
    match dir {
        Some(d) if d.is_dir() => d,
        _ => panic!(
            "set VERIFACE_LIBJPEG_DIR to a folder of libjpeg-turbo PPM decodes \
             (see tests/reference_decode/mod.rs)"
        ),
    }
}

/// The libjpeg-turbo decode of a golden image when there is one, else the
/// `image` crate's.
pub fn load_reference(g: &Golden) -> image::RgbImage {
    let ppm = libjpeg_dir().join(&g.file).with_extension("ppm");
    if !ppm.is_file() {
        return load_rgb_no_exif(&g.image_path);
    }
    read_ppm(&std::fs::read(&ppm).unwrap())
}

/// Parses a binary (P6, 8-bit) PPM.
pub fn read_ppm(b: &[u8]) -> image::RgbImage {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while b[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while !b[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(std::str::from_utf8(&b[s..i]).unwrap().to_string());
    }
    assert_eq!((fields[0].as_str(), fields[3].as_str()), ("P6", "255"));
    let w: u32 = fields[1].parse().unwrap();
    let h: u32 = fields[2].parse().unwrap();
    let start = i + 1;
    image::RgbImage::from_raw(w, h, b[start..start + (w * h * 3) as usize].to_vec()).unwrap()
}
