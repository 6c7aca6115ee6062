//! Decoding untrusted uploads: formats, limits, errors and EXIF orientation.
//!
//! Every fixture is generated here with the `image` crate's encoders (plus
//! hand-built headers and EXIF segments), so the test data is visible in the
//! code and nothing binary is checked in.

// Helpers outside #[test] fns are not covered by clippy.toml's
// allow-unwrap-in-tests; a failed fixture build should panic loudly here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::{ImageEncoder, Rgb, RgbImage};
use proptest::prelude::*;
use veriface_vision::decode::{
    decode, decode_no_orientation, DecodeLimits, ImageError, ImageFormat,
};

const RED: Rgb<u8> = Rgb([255, 0, 0]);
const GREEN: Rgb<u8> = Rgb([0, 255, 0]);
const BLUE: Rgb<u8> = Rgb([0, 0, 255]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// A 32x16 image in four flat quadrants, red green over blue white, so that
/// every flip and rotation gives a different corner pattern.
fn quadrants() -> RgbImage {
    RgbImage::from_fn(32, 16, |x, y| match (x < 16, y < 8) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => WHITE,
    })
}

fn encode(img: &RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(
            img,
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// A big-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT.
fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2A\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // count
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]); // value padding
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// Splices an APP1 Exif segment right after the JPEG's SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(exif_tiff(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The colour class of a pixel, tolerant of JPEG's lossy edges.
fn nearest(p: Rgb<u8>) -> Rgb<u8> {
    let d = |q: Rgb<u8>| -> i32 {
        (0..3)
            .map(|i| (i32::from(p[i]) - i32::from(q[i])).pow(2))
            .sum()
    };
    *[RED, GREEN, BLUE, WHITE]
        .iter()
        .min_by_key(|&&q| d(q))
        .unwrap()
}

/// Colours at the centres of the four quadrants: TL, TR, BL, BR.
fn corners(img: &RgbImage) -> [Rgb<u8>; 4] {
    let (w, h) = img.dimensions();
    let at = |x, y| nearest(*img.get_pixel(x, y));
    [
        at(w / 4, h / 4),
        at(3 * w / 4, h / 4),
        at(w / 4, 3 * h / 4),
        at(3 * w / 4, 3 * h / 4),
    ]
}

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

#[test]
fn rejects_empty_input() {
    let err = decode(&[], &limits()).unwrap_err();
    assert!(matches!(err, ImageError::Empty));
    assert_eq!(err.code(), "empty_image");
}

#[test]
fn rejects_input_over_the_byte_limit_before_sniffing() {
    let small = DecodeLimits {
        max_bytes: 100,
        ..limits()
    };
    let err = decode(&[0u8; 101], &small).unwrap_err();
    assert!(matches!(
        err,
        ImageError::TooLarge {
            bytes: 101,
            max: 100
        }
    ));
    assert_eq!(err.code(), "image_too_large");
}

#[test]
fn decodes_each_supported_format() {
    let img = quadrants();
    let cases = [
        (jpeg(&img), ImageFormat::Jpeg),
        (encode(&img, image::ImageFormat::Png), ImageFormat::Png),
        (encode(&img, image::ImageFormat::Bmp), ImageFormat::Bmp),
        (encode(&img, image::ImageFormat::Gif), ImageFormat::Gif),
        (encode(&img, image::ImageFormat::WebP), ImageFormat::Webp),
    ];
    for (bytes, format) in cases {
        let d = decode(&bytes, &limits()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(d.format, format);
        assert_eq!(d.image.dimensions(), (32, 16), "{format}");
        assert_eq!((d.original_width, d.original_height), (32, 16));
        assert_eq!(d.orientation, 1);
        assert_eq!(corners(&d.image), [RED, GREEN, BLUE, WHITE], "{format}");
    }
}

#[test]
fn sniffs_content_not_file_names() {
    // A PNG saved as "selfie.jpg": decode never sees a name, only bytes.
    let dir = std::env::temp_dir().join(format!("veriface-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("selfie.jpg");
    std::fs::write(&path, encode(&quadrants(), image::ImageFormat::Png)).unwrap();
    let d = decode(&std::fs::read(&path).unwrap(), &limits()).unwrap();
    assert_eq!(d.format, ImageFormat::Png);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn names_the_unsupported_format_it_recognises() {
    let cases: [(&[u8], Option<&str>); 5] = [
        (b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n1 0 obj", Some("pdf")),
        (b"II*\0\x08\0\0\0\x01\0\0\x01\x03\0", Some("tiff")),
        (b"MM\0*\0\0\0\x08", Some("tiff")),
        (b"\0\0\0\x18ftypheic\0\0\0\0", Some("heic")),
        (b"Dear customer, please find my passport attached.", None),
    ];
    for (bytes, detected) in cases {
        let err = decode(bytes, &limits()).unwrap_err();
        match err {
            ImageError::UnsupportedFormat { detected: got } => assert_eq!(got, detected),
            other => panic!("expected UnsupportedFormat, got {other:?}"),
        }
        assert_eq!(err.code(), "unsupported_image_format");
    }
}

#[test]
fn random_bytes_are_unsupported() {
    // Deterministic noise (xorshift) that happens to start with no signature.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let err = decode(&bytes, &limits()).unwrap_err();
    assert_eq!(err.code(), "unsupported_image_format");
}

#[test]
fn truncated_png_is_invalid() {
    let bytes = encode(&quadrants(), image::ImageFormat::Png);
    for cut in [20, 40, bytes.len() / 2, bytes.len() - 13] {
        let err = decode(&bytes[..cut], &limits()).unwrap_err();
        assert_eq!(err.code(), "invalid_image", "cut at {cut}: {err:?}");
    }
}

#[test]
fn truncated_jpeg_is_invalid() {
    let bytes = jpeg(&quadrants());
    for cut in [4, 100, bytes.len() / 2] {
        let err = decode(&bytes[..cut], &limits()).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::Truncated {
                    format: ImageFormat::Jpeg,
                    ..
                }
            ),
            "cut at {cut}: {err:?}"
        );
        assert_eq!(err.code(), "invalid_image");
    }
}

#[test]
fn corrupt_png_is_invalid() {
    let mut bytes = encode(&quadrants(), image::ImageFormat::Png);
    // Flip bits inside IHDR, which its CRC catches.
    bytes[18] ^= 0xFF;
    let err = decode(&bytes, &limits()).unwrap_err();
    assert_eq!(err.code(), "invalid_image", "{err:?}");
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let mut chunk = kind.to_vec();
    chunk.extend_from_slice(data);
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
}

/// A well-formed PNG declaring `w`x`h` RGB whose only IDAT is an empty zlib
/// stream: 61 bytes that claim any size.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1A\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A BITMAPFILEHEADER + BITMAPINFOHEADER declaring `w`x`h` 24-bit, no pixels.
fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&54u32.to_le_bytes()); // file size (a lie)
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    out
}

#[test]
fn huge_declared_dimensions_are_refused_before_decoding() {
    for (bytes, format) in [
        (png_header(30_000, 30_000), "png"),
        (bmp_header(30_000, 30_000), "bmp"),
    ] {
        let start = Instant::now();
        let err = decode(&bytes, &limits()).unwrap_err();
        // 30000x30000 RGB is 2.7 GB: only a header check can be this fast.
        assert!(start.elapsed() < Duration::from_millis(500), "{format}");
        match err {
            ImageError::DimensionsTooLarge { width, height, .. } => {
                assert_eq!((width, height), (30_000, 30_000), "{format}");
            }
            other => panic!("{format}: expected DimensionsTooLarge, got {other:?}"),
        }
    }
}

#[test]
fn each_dimension_limit_applies_on_its_own() {
    let bytes = encode(&quadrants(), image::ImageFormat::Png);
    for tight in [
        DecodeLimits {
            max_width: 31,
            ..limits()
        },
        DecodeLimits {
            max_height: 15,
            ..limits()
        },
        DecodeLimits {
            max_pixels: 511,
            ..limits()
        },
    ] {
        let err = decode(&bytes, &tight).unwrap_err();
        assert_eq!(err.code(), "image_dimensions_too_large", "{tight:?}");
    }
    let exact = DecodeLimits {
        max_width: 32,
        max_height: 16,
        max_pixels: 512,
        ..limits()
    };
    assert!(decode(&bytes, &exact).is_ok());
}

#[test]
fn empty_canvas_is_refused() {
    // The BMP decoder refuses it itself (as an unsupported feature); decode
    // also checks zero sizes for decoders that would accept them.
    for bytes in [bmp_header(0, 16), bmp_header(16, 0)] {
        assert!(decode(&bytes, &limits()).is_err());
    }
}

#[test]
fn header_within_limits_but_missing_pixels_is_invalid() {
    let err = decode(&png_header(1000, 1000), &limits()).unwrap_err();
    assert_eq!(err.code(), "invalid_image", "{err:?}");
}

#[test]
fn applies_every_exif_orientation() {
    // Where the stored TL/TR/BL/BR quadrants appear once displayed, from the
    // EXIF 2.3 definitions of tag 0x0112 ("0th row is the visual ..., 0th
    // column is the visual ...").
    let expected: [(u16, [Rgb<u8>; 4]); 8] = [
        (1, [RED, GREEN, BLUE, WHITE]),
        (2, [GREEN, RED, WHITE, BLUE]),
        (3, [WHITE, BLUE, GREEN, RED]),
        (4, [BLUE, WHITE, RED, GREEN]),
        (5, [RED, BLUE, GREEN, WHITE]),
        (6, [BLUE, RED, WHITE, GREEN]),
        (7, [WHITE, GREEN, BLUE, RED]),
        (8, [GREEN, WHITE, RED, BLUE]),
    ];
    let plain = jpeg(&quadrants());
    for (orientation, want) in expected {
        let bytes = with_exif_orientation(&plain, orientation);
        let d = decode(&bytes, &limits()).unwrap();
        assert_eq!(d.orientation, orientation);
        assert!(d.orientation_applied);
        assert_eq!((d.original_width, d.original_height), (32, 16));
        let dims = if orientation >= 5 { (16, 32) } else { (32, 16) };
        assert_eq!(d.image.dimensions(), dims, "orientation {orientation}");
        assert_eq!(corners(&d.image), want, "orientation {orientation}");

        // The parity loader reports the tag but leaves pixels as stored.
        let raw = decode_no_orientation(&bytes, &limits()).unwrap();
        assert_eq!(raw.orientation, orientation);
        assert!(!raw.orientation_applied);
        assert_eq!(corners(&raw.image), [RED, GREEN, BLUE, WHITE]);
    }
}

#[test]
fn applies_png_exif_orientation() {
    let img = quadrants();
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut out);
    enc.set_exif_metadata(exif_tiff(6)).unwrap();
    enc.write_image(&img, 32, 16, image::ExtendedColorType::Rgb8)
        .unwrap();
    let d = decode(&out, &limits()).unwrap();
    assert_eq!(d.orientation, 6);
    assert_eq!(corners(&d.image), [BLUE, RED, WHITE, GREEN]);
}

#[test]
fn invalid_orientation_values_are_ignored() {
    let bytes = with_exif_orientation(&jpeg(&quadrants()), 9);
    let d = decode(&bytes, &limits()).unwrap();
    assert_eq!(d.orientation, 1);
    assert_eq!(corners(&d.image), [RED, GREEN, BLUE, WHITE]);
}

fn valid_samples() -> Vec<Vec<u8>> {
    let img = RgbImage::from_fn(9, 7, |x, y| Rgb([(x * 28) as u8, (y * 36) as u8, 77]));
    vec![
        with_exif_orientation(&jpeg(&img), 6),
        encode(&img, image::ImageFormat::Png),
        encode(&img, image::ImageFormat::Bmp),
        encode(&img, image::ImageFormat::Gif),
        encode(&img, image::ImageFormat::WebP),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes, &limits());
    }

    #[test]
    fn mutated_images_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
        cut in any::<usize>(),
    ) {
        // Random bytes rarely get past the signature; mutating real files
        // drives every decoder deep into its parsing.
        let mut bytes = valid_samples().swap_remove(which);
        for (at, value) in edits {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        let tight = DecodeLimits { max_pixels: 10_000, ..limits() };
        match decode(&bytes, &tight) {
            Ok(d) => prop_assert!(u64::from(d.image.width()) * u64::from(d.image.height()) <= 10_000),
            Err(e) => prop_assert!(!e.code().is_empty()),
        }
    }
}
