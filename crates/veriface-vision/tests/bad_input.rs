//! Bad and awkward uploads through the whole engine path a service runs:
//! `decode` then `FaceEngine::analyze`. Each must give a typed error or a
//! (possibly empty) list of faces, never a panic.
//!
//! The engine is loaded once and always runs the fast detector on small
//! images, to keep this suite quick on a shared machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::sync::OnceLock;
use std::time::Instant;

use image::{ImageEncoder, Rgb, RgbImage};
use veriface_vision::decode::{decode, DecodeLimits, ImageError};
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::engine::{AnalyzeOptions, DetectOptions, Face, FaceEngine};

fn engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| FaceEngine::load(&common::models_dir()).unwrap())
}

fn photo_bytes(rel: &str) -> Vec<u8> {
    let p = common::shared_dir().join("data/faces/images").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

/// Decodes and analyses with the fast detector and descriptors.
fn analyze(bytes: &[u8]) -> Result<Vec<Face>, ImageError> {
    let img = decode(bytes, &limits())?.image;
    let opts = AnalyzeOptions {
        detect: DetectOptions::fast(),
        embed: true,
        num_jitters: 1,
    };
    Ok(engine().analyze(&img, &opts).unwrap())
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
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

/// Splices an APP1 Exif segment with one Orientation entry after SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut payload = b"Exif\0\0MM\0\x2A\0\0\0\x08".to_vec();
    payload.extend_from_slice(&1u16.to_be_bytes());
    payload.extend_from_slice(&0x0112u16.to_be_bytes());
    payload.extend_from_slice(&3u16.to_be_bytes());
    payload.extend_from_slice(&1u32.to_be_bytes());
    payload.extend_from_slice(&orientation.to_be_bytes());
    payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn empty_input_is_refused() {
    let err = analyze(b"").unwrap_err();
    assert!(matches!(err, ImageError::Empty), "{err:?}");
    assert_eq!(err.code(), "empty_image");
}

#[test]
fn truncated_photo_is_invalid() {
    let bytes = photo_bytes("person02/img12.jpg");
    for cut in [3, 200, bytes.len() / 3, bytes.len() - 100] {
        let err = analyze(&bytes[..cut]).unwrap_err();
        assert_eq!(err.code(), "invalid_image", "cut at {cut}: {err:?}");
    }
}

#[test]
fn corrupt_photo_never_panics() {
    // Overwrite a run of entropy-coded bytes and the quantisation tables:
    // the decoder may give garbage pixels or an error, but the engine must
    // get through either without panicking.
    let bytes = photo_bytes("person02/img12.jpg");
    for (start, len) in [(20, 40), (bytes.len() / 2, 64)] {
        let mut bad = bytes.clone();
        for (i, b) in bad[start..start + len].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0xA5;
        }
        match analyze(&bad) {
            Ok(faces) => assert!(faces.len() <= 1),
            Err(e) => assert!(
                ["invalid_image", "unsupported_image_format"].contains(&e.code()),
                "{e:?}"
            ),
        }
    }
    // A valid signature followed by nonsense (zero-length chunks of type
    // 0, which no PNG has).
    let mut fake = b"\x89PNG\r\n\x1A\n".to_vec();
    fake.extend_from_slice(&[0; 64]);
    assert_eq!(analyze(&fake).unwrap_err().code(), "invalid_image");
}

#[test]
fn non_images_are_unsupported() {
    for bytes in [
        &b"%PDF-1.7\n1 0 obj\n"[..],
        b"hello, this is plain text\n",
        b"\x7FELF\x02\x01\x01\0\0\0\0\0",
    ] {
        let err = analyze(bytes).unwrap_err();
        assert_eq!(err.code(), "unsupported_image_format", "{err:?}");
    }
}

#[test]
fn wrong_extension_does_not_matter() {
    // The engine never sees a name: a PNG stored as "photo.jpg" arrives as
    // bytes and is sniffed as PNG.
    let img = RgbImage::from_pixel(64, 48, Rgb([10, 200, 30]));
    let d = decode(&png(&img), &limits()).unwrap();
    assert_eq!(d.format.as_str(), "png");
    assert_eq!(d.image.dimensions(), (64, 48));
}

/// A well-formed PNG header declaring `w`x`h` RGB with no real pixel data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
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
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1A\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A real JPEG whose frame header (SOF0) is patched to declare `w`x`h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = jpeg(&RgbImage::from_pixel(16, 16, Rgb([1, 2, 3])));
    let sof = bytes
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

#[test]
fn huge_declared_dimensions_are_refused_before_allocating() {
    for bytes in [png_header(30_000, 30_000), jpeg_claiming(30_000, 30_000)] {
        let start = Instant::now();
        let err = analyze(&bytes).unwrap_err();
        // 30000x30000 RGB is 2.7 GB; refusing it this fast means nothing
        // that size was allocated or filled.
        assert!(start.elapsed().as_millis() < 500, "{:?}", start.elapsed());
        match err {
            ImageError::DimensionsTooLarge { width, height, .. } => {
                assert_eq!((width, height), (30_000, 30_000));
            }
            other => panic!("expected DimensionsTooLarge, got {other:?}"),
        }
    }
}

#[test]
fn no_face_gives_an_empty_list() {
    let img = RgbImage::from_fn(320, 240, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    assert!(analyze(&png(&img)).unwrap().is_empty());
}

#[test]
fn no_face_and_tiny_images_have_no_largest_face() {
    let e = engine();
    let img = RgbImage::from_fn(320, 240, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    assert!(e.detect_largest(&img, &DetectOptions::fast()).is_none());
    assert!(e
        .detect_largest(&img, &DetectOptions::reference())
        .is_none());
    for (w, h) in [(1, 1), (0, 0), (3, 500), (500, 3)] {
        let img = RgbImage::new(w, h);
        assert!(e.detect_largest(&img, &DetectOptions::fast()).is_none());
    }
}

#[test]
fn largest_face_of_a_couple_is_the_full_detectors_largest() {
    let e = engine();
    let img = decode(&photo_bytes("_multi/couple.jpg"), &limits())
        .unwrap()
        .image;
    for opts in [DetectOptions::fast(), DetectOptions::reference()] {
        let all = e.detect(&img, &opts);
        assert_eq!(all.len(), 2);
        let pick = pick_largest(&all, |f| (f.rect.area(), f.score)).unwrap();
        let largest = e.detect_largest(&img, &opts).unwrap();
        assert_eq!((largest.rect, largest.raw_rect), (pick.rect, pick.raw_rect));
        assert!((largest.score - pick.score).abs() < 1e-5);
    }
}

#[test]
fn couple_has_two_faces() {
    let faces = analyze(&photo_bytes("_multi/couple.jpg")).unwrap();
    assert_eq!(faces.len(), 2, "{faces:?}");
    assert!(faces.iter().all(|f| f.embedding.is_some()));
    // Two different people.
    let (a, b) = (faces[0].embedding.unwrap(), faces[1].embedding.unwrap());
    assert!(a.distance(&b) > 0.6);
}

#[test]
fn exif_rotated_photo_gives_the_same_face() {
    let bytes = photo_bytes("person02/img12.jpg");
    let upright = decode(&bytes, &limits()).unwrap().image;
    // Pixels stored turned 90° clockwise; Orientation 8 says "turn them
    // 90° counter-clockwise to view", which undoes it.
    let rotated = with_exif_orientation(&jpeg(&image::imageops::rotate90(&upright)), 8);
    let d = decode(&rotated, &limits()).unwrap();
    assert_eq!(d.orientation, 8);
    assert_eq!(d.image.dimensions(), upright.dimensions());
    // The pixels really are upright again (up to JPEG loss), which tells 8
    // apart from 6 (that would leave the image upside down).
    let diff: f64 = d
        .image
        .as_raw()
        .iter()
        .zip(upright.as_raw())
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / upright.as_raw().len() as f64;
    assert!(diff < 4.0, "mean abs diff {diff}");

    let a = analyze(&bytes).unwrap();
    let b = analyze(&rotated).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a.len(), b.len());
    let dist = a[0].embedding.unwrap().distance(&b[0].embedding.unwrap());
    assert!(dist < 0.1, "descriptor distance {dist}");
}
