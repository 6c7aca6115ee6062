//! Removing metadata from uploads before they are stored.
//!
//! Phone photos carry EXIF: GPS position, capture time, device serial
//! numbers, sometimes a thumbnail of the uncropped picture. A KYC service
//! has no use for any of it and must not keep it. The pixels are left
//! byte-for-byte as uploaded (no re-encoding, so no quality loss and the
//! stored photo decodes to exactly the pixels that were analysed); only
//! metadata segments are dropped. The EXIF orientation is the one tag kept,
//! rewritten into a minimal EXIF block, because without it a portrait photo
//! would be shown lying on its side.
//!
//! | format | dropped | kept |
//! | --- | --- | --- |
//! | JPEG | APP1 (EXIF, XMP), APP3-APP13, APP15, COM | APP0 (JFIF), APP2 ICC profile, APP14 (Adobe colour transform), orientation |
//! | PNG | `tEXt`, `zTXt`, `iTXt`, `tIME`, `eXIf` | every other chunk, orientation |
//! | WebP | `EXIF`, `XMP ` | every other chunk, orientation |
//! | GIF, BMP | nothing (no EXIF; GIF comments are stored as uploaded) | everything |

use veriface_vision::decode::ImageFormat;

use crate::{Error, Result};

/// Returns `bytes` without its metadata (see the module table).
///
/// # Errors
/// [`Error::InvalidInput`] with code `invalid_image` when the container
/// structure is broken (a segment or chunk runs past the end). Callers
/// strip only images that already decoded, so this means a file whose
/// pixels decode but whose container does not parse; it is refused rather
/// than stored with its metadata.
pub fn strip_metadata(bytes: &[u8], format: ImageFormat) -> Result<Vec<u8>> {
    let out = match format {
        ImageFormat::Jpeg => strip_jpeg(bytes),
        ImageFormat::Png => strip_png(bytes),
        ImageFormat::Webp => strip_webp(bytes),
        ImageFormat::Gif | ImageFormat::Bmp => Some(bytes.to_vec()),
    };
    out.ok_or_else(|| Error::InvalidInput {
        code: "invalid_image",
        message: format!("the {format} container is malformed"),
    })
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The orientation (1..=8) recorded in a TIFF-structured EXIF block (the
/// bytes after JPEG's `Exif\0\0`), if any.
fn tiff_orientation(tiff: &[u8]) -> Option<u16> {
    let little = match tiff.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count.min(512)).find_map(|i| {
        let entry = ifd + 2 + 12 * i;
        // Tag 0x0112 Orientation, type 3 (SHORT), count 1.
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 {
            let v = u16_at(entry + 8)?;
            (1..=8).contains(&v).then_some(v)
        } else {
            None
        }
    })
}

/// A big-endian TIFF block holding only IFD0 with the orientation tag.
fn minimal_tiff(orientation: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(26);
    t.extend_from_slice(b"MM\0*");
    t.extend_from_slice(&8u32.to_be_bytes()); // IFD0 right after the header
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes()); // no IFD1 (no thumbnail)
    t
}

fn strip_jpeg(b: &[u8]) -> Option<Vec<u8>> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut orientation = None;
    let mut wrote_orientation = false;
    let mut i = 2;
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        // Markers may be preceded by any number of 0xFF fill bytes.
        while *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        let marker = *b.get(i + 1)?;
        if marker == 0xD9 {
            out.extend_from_slice(&[0xFF, 0xD9]);
            return Some(out);
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            out.extend_from_slice(&[0xFF, marker]);
            i += 2;
            continue;
        }
        let len = usize::from(be16(b, i + 2)?);
        if len < 2 {
            return None;
        }
        let end = i + 2 + len;
        let segment = b.get(i..end)?;
        let payload = &segment[4..];
        let keep = match marker {
            0xE0 | 0xEE => true,
            0xE2 => payload.starts_with(b"ICC_PROFILE\0"),
            0xE1 => {
                if let Some(tiff) = payload.strip_prefix(b"Exif\0\0") {
                    orientation = orientation.or_else(|| tiff_orientation(tiff));
                }
                false
            }
            0xE3..=0xED | 0xEF | 0xFE => false,
            _ => true,
        };
        // The orientation goes where EXIF belongs: before the first
        // segment that is not APP0, so that readers find it early.
        if !wrote_orientation && marker != 0xE0 && marker != 0xE1 {
            if let Some(o) = orientation.filter(|&o| o != 1) {
                let mut app1 = b"Exif\0\0".to_vec();
                app1.extend_from_slice(&minimal_tiff(o));
                out.extend_from_slice(&[0xFF, 0xE1]);
                out.extend_from_slice(&u16::try_from(app1.len() + 2).ok()?.to_be_bytes());
                out.extend_from_slice(&app1);
            }
            wrote_orientation = true;
        }
        if keep {
            out.extend_from_slice(segment);
        }
        if marker == 0xDA {
            // Start of scan: entropy-coded data follows (with further
            // markers inside progressive files); copy the rest verbatim.
            out.extend_from_slice(b.get(end..)?);
            return Some(out);
        }
        i = end;
    }
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &byte in *part {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }
    !crc
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn strip_png(b: &[u8]) -> Option<Vec<u8>> {
    if b.get(..8)? != PNG_SIGNATURE {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut i = 8;
    while i < b.len() {
        let len = usize::try_from(be32(b, i)?).ok()?;
        let kind = b.get(i + 4..i + 8)?;
        let end = i.checked_add(12)?.checked_add(len)?;
        let chunk = b.get(i..end)?;
        let data = &chunk[8..8 + len];
        match kind {
            b"tEXt" | b"zTXt" | b"iTXt" | b"tIME" => {}
            b"eXIf" => {
                if let Some(o) = tiff_orientation(data).filter(|&o| o != 1) {
                    let tiff = minimal_tiff(o);
                    out.extend_from_slice(&u32::try_from(tiff.len()).ok()?.to_be_bytes());
                    out.extend_from_slice(b"eXIf");
                    out.extend_from_slice(&tiff);
                    out.extend_from_slice(&crc32(&[b"eXIf", &tiff]).to_be_bytes());
                }
            }
            _ => out.extend_from_slice(chunk),
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Some(out)
}

fn strip_webp(b: &[u8]) -> Option<Vec<u8>> {
    if b.get(..4)? != b"RIFF" || b.get(8..12)? != b"WEBP" {
        return None;
    }
    let riff_end = usize::try_from(le32(b, 4)?)
        .ok()?
        .checked_add(8)?
        .min(b.len());
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut orientation = None;
    let mut i = 12;
    while i + 8 <= riff_end {
        let kind: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        let len = usize::try_from(le32(b, i + 4)?).ok()?;
        let end = (i + 8).checked_add(len)?;
        let padded = end + (len & 1);
        let data = b.get(i + 8..end)?;
        match &kind {
            b"EXIF" => {
                orientation = tiff_orientation(data.strip_prefix(b"Exif\0\0").unwrap_or(data))
            }
            b"XMP " => {}
            _ => chunks.push(b.get(i..padded.min(riff_end))?.to_vec()),
        }
        i = padded;
    }
    let orientation = orientation.filter(|&o| o != 1);
    for chunk in &mut chunks {
        if chunk.starts_with(b"VP8X") {
            // Flags byte: bit 3 EXIF, bit 2 XMP.
            let flags = chunk.get_mut(8)?;
            *flags &= !0x04;
            *flags &= !0x08;
            if orientation.is_some() {
                *flags |= 0x08;
            }
        }
    }
    let has_vp8x = chunks.iter().any(|c| c.starts_with(b"VP8X"));
    if let (Some(o), true) = (orientation, has_vp8x) {
        // EXIF must follow the image data in an extended-format file.
        let tiff = minimal_tiff(o);
        let mut chunk = b"EXIF".to_vec();
        chunk.extend_from_slice(&u32::try_from(tiff.len()).ok()?.to_le_bytes());
        chunk.extend_from_slice(&tiff);
        chunks.push(chunk);
    }
    let body_len: usize = chunks.iter().map(Vec::len).sum::<usize>() + 4;
    let mut out = Vec::with_capacity(body_len + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::try_from(body_len).ok()?.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    for chunk in chunks {
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;
    use veriface_vision::decode::{decode, DecodeLimits};

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    /// Inserts segments right after SOI.
    fn with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        for (marker, payload) in segments {
            out.extend_from_slice(&[0xFF, *marker]);
            out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(payload);
        }
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn exif_with(orientation: u16, secret: &[u8]) -> Vec<u8> {
        // Little-endian TIFF: orientation plus a GPS-looking ASCII value.
        let mut t = b"Exif\0\0II*\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&0x0112u16.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&orientation.to_le_bytes());
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(secret);
        t
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn jpeg_loses_exif_xmp_and_comments_but_keeps_pixels_and_orientation() {
        let base = jpeg(40, 24);
        let secret = b"GPS 52.5200N 13.4050E";
        let tagged = with_segments(
            &base,
            &[
                (0xE1, exif_with(6, secret)),
                (
                    0xE1,
                    b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>secret</x:xmpmeta>".to_vec(),
                ),
                (0xFE, b"a comment with a name".to_vec()),
                (0xED, b"Photoshop 3.0\0IPTC".to_vec()),
            ],
        );
        let stripped = strip_metadata(&tagged, ImageFormat::Jpeg).unwrap();
        assert!(!contains(&stripped, secret));
        assert!(!contains(&stripped, b"xmpmeta"));
        assert!(!contains(&stripped, b"a comment"));
        assert!(!contains(&stripped, b"IPTC"));

        let limits = DecodeLimits::default();
        let before = decode(&tagged, &limits).unwrap();
        let after = decode(&stripped, &limits).unwrap();
        assert_eq!(after.orientation, 6);
        assert_eq!((after.image.width(), after.image.height()), (24, 40));
        assert_eq!(before.image, after.image);
    }

    #[test]
    fn jpeg_without_metadata_is_unchanged() {
        let base = jpeg(16, 16);
        assert_eq!(strip_metadata(&base, ImageFormat::Jpeg).unwrap(), base);
    }

    #[test]
    fn truncated_jpeg_header_is_invalid() {
        let base = jpeg(16, 16);
        let e = strip_metadata(&base[..10], ImageFormat::Jpeg).unwrap_err();
        assert_eq!(e.code(), "invalid_image");
    }

    #[test]
    fn png_loses_text_chunks_and_keeps_pixels() {
        let img =
            image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 7]));
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 9, 7, image::ExtendedColorType::Rgb8)
            .unwrap();
        // Insert a tEXt chunk after IHDR (8 + 25 bytes).
        let data = b"Author\0Jane Doe";
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(b"tEXt");
        chunk.extend_from_slice(data);
        chunk.extend_from_slice(&crc32(&[b"tEXt", data]).to_be_bytes());
        let mut tagged = png[..33].to_vec();
        tagged.extend_from_slice(&chunk);
        tagged.extend_from_slice(&png[33..]);

        let stripped = strip_metadata(&tagged, ImageFormat::Png).unwrap();
        assert!(!contains(&stripped, b"Jane Doe"));
        assert_eq!(stripped, png);
        let limits = DecodeLimits::default();
        assert_eq!(decode(&stripped, &limits).unwrap().image, img);
    }

    #[test]
    fn webp_without_metadata_round_trips() {
        let img =
            image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 90]));
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(img.as_raw(), 8, 6, image::ExtendedColorType::Rgb8)
            .unwrap();
        let stripped = strip_metadata(&webp, ImageFormat::Webp).unwrap();
        assert_eq!(stripped, webp);
        assert_eq!(
            decode(&stripped, &DecodeLimits::default()).unwrap().image,
            img
        );
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    }

    #[test]
    fn minimal_tiff_reads_back() {
        for o in 1..=8 {
            assert_eq!(tiff_orientation(&minimal_tiff(o)), Some(o));
        }
    }
}
