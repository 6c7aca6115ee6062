//! Image format sniffing from magic bytes.
//!
//! The format is decided by the first bytes of the upload and nothing else:
//! file names and `Content-Type` headers are chosen by the client, so trusting
//! them would let a caller steer bytes into a decoder of their choice.

use std::fmt;

/// The image formats veriface decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG/JFIF/EXIF (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 'PNG' 0D 0A 1A 0A`).
    Png,
    /// Windows bitmap (`'BM'`).
    Bmp,
    /// GIF 87a/89a; only the first frame is decoded.
    Gif,
    /// WebP, lossy or lossless (`'RIFF' .... 'WEBP'`).
    Webp,
}

impl ImageFormat {
    /// Lowercase name, as used in error messages and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Bmp => "bmp",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
        }
    }

    /// The `image` crate's format, used to pick its decoder.
    pub(crate) fn to_image_format(self) -> image::ImageFormat {
        match self {
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Bmp => image::ImageFormat::Bmp,
            ImageFormat::Gif => image::ImageFormat::Gif,
            ImageFormat::Webp => image::ImageFormat::WebP,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// A format we decode.
    Supported(ImageFormat),
    /// A recognised format we refuse, by name (`"tiff"`, `"pdf"`, ...), so
    /// the error can tell the user what they sent.
    Known(&'static str),
    /// Nothing recognised.
    Unknown,
}

/// Signatures of formats people commonly upload by mistake. Naming them in
/// the error ("got a pdf") is far more useful to a KYC client than "unknown".
const REFUSED: &[(&[u8], &str)] = &[
    (b"II*\0", "tiff"),
    (b"MM\0*", "tiff"),
    (b"%PDF", "pdf"),
    (b"8BPS", "psd"),
    (b"qoif", "qoi"),
    (b"\0\0\x01\0", "ico"),
    (b"\xFF\x0A", "jxl"),
    (b"\0\0\0\x0CJXL \r\n\x87\n", "jxl"),
    (b"\0\0\0\x0CjP  \r\n\x87\n", "jpeg2000"),
    (b"\x76\x2F\x31\x01", "exr"),
    (b"#?RADIANCE", "hdr"),
    (b"PK\x03\x04", "zip"),
    (b"\x1F\x8B", "gzip"),
    (b"<?xml", "xml"),
    (b"<svg", "svg"),
];

/// Decides the format from the leading bytes of `bytes`.
pub(crate) fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Supported(ImageFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1A\n") {
        return Sniffed::Supported(ImageFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Sniffed::Supported(ImageFormat::Gif);
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Sniffed::Supported(ImageFormat::Webp);
    }
    // "BM" alone is only two bytes of evidence; also require the reserved
    // header fields (bytes 6..10) to be zero, as every real BMP writer does,
    // so that text starting with "BM" is not sent to the BMP decoder.
    if bytes.starts_with(b"BM") && bytes.get(6..10) == Some(&[0, 0, 0, 0]) {
        return Sniffed::Supported(ImageFormat::Bmp);
    }
    // ISO-BMFF (HEIC from iPhones, AVIF): 'ftyp' at offset 4, brand after it.
    if bytes.get(4..8) == Some(b"ftyp") {
        return match bytes.get(8..12) {
            Some(b"avif") | Some(b"avis") => Sniffed::Known("avif"),
            Some(b"heic") | Some(b"heix") | Some(b"mif1") | Some(b"msf1") | Some(b"hevc") => {
                Sniffed::Known("heic")
            }
            _ => Sniffed::Known("iso-bmff"),
        };
    }
    for (magic, name) in REFUSED {
        if bytes.starts_with(magic) {
            return Sniffed::Known(name);
        }
    }
    Sniffed::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_supported_signatures() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0"),
            Sniffed::Supported(ImageFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1A\n...."),
            Sniffed::Supported(ImageFormat::Png)
        );
        assert_eq!(sniff(b"GIF89a.."), Sniffed::Supported(ImageFormat::Gif));
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Sniffed::Supported(ImageFormat::Webp)
        );
        assert_eq!(
            sniff(b"BM\x36\0\0\0\0\0\0\0"),
            Sniffed::Supported(ImageFormat::Bmp)
        );
    }

    #[test]
    fn names_common_refused_formats() {
        assert_eq!(sniff(b"%PDF-1.7"), Sniffed::Known("pdf"));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Sniffed::Known("tiff"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic"), Sniffed::Known("heic"));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif"), Sniffed::Known("avif"));
    }

    #[test]
    fn text_starting_with_bm_is_not_a_bitmap() {
        assert_eq!(sniff(b"BMW owners club"), Sniffed::Unknown);
        assert_eq!(sniff(b""), Sniffed::Unknown);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), Sniffed::Unknown);
    }
}
