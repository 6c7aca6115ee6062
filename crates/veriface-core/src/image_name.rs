//! Names of stored uploads.
//!
//! A name is 128 random bits in lowercase hex plus the format's extension
//! (`9f2c...e1.jpg`): unguessable, so knowing one upload's name reveals
//! nothing about another's, and free of anything a client chose. A name
//! from a request is parsed strictly before it is used, so `../`, slashes,
//! percent-escapes or any other client string can never become a storage
//! path.

use std::fmt;

use veriface_vision::decode::ImageFormat;

use crate::{Error, Result};

/// Where uploads live in the blob store.
pub const UPLOADS_PREFIX: &str = "uploads";

const HEX_LEN: usize = 32;

/// A validated upload name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName(String);

impl ImageName {
    /// A fresh random name for an image of `format`.
    ///
    /// # Errors
    /// [`Error::Internal`] if the operating system's random source fails.
    pub fn generate(format: ImageFormat) -> Result<Self> {
        let mut bytes = [0u8; HEX_LEN / 2];
        getrandom::fill(&mut bytes).map_err(|e| Error::Internal(Box::new(e)))?;
        let mut name = String::with_capacity(HEX_LEN + 5);
        for b in bytes {
            name.push_str(&format!("{b:02x}"));
        }
        name.push('.');
        name.push_str(extension(format));
        Ok(Self(name))
    }

    /// Parses a name a client sent back.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] with code `invalid_image_name` unless `s` is
    /// exactly 32 lowercase hex digits, a dot and one of `jpg`, `png`,
    /// `bmp`, `gif`, `webp`.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = || {
            Error::InvalidInput {
            code: "invalid_image_name",
            message: "image names are 32 lowercase hex digits and an extension, as returned by the upload".to_string(),
        }
        };
        let (stem, ext) = s.split_once('.').ok_or_else(invalid)?;
        let hex_ok = stem.len() == HEX_LEN
            && stem
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let ext_ok = ["jpg", "png", "bmp", "gif", "webp"].contains(&ext);
        if hex_ok && ext_ok {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid())
        }
    }

    /// The name as sent to clients.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The blob-store key: `uploads/<name>`.
    pub fn key(&self) -> String {
        format!("{UPLOADS_PREFIX}/{}", self.0)
    }

    /// The MIME type its extension stands for.
    pub fn content_type(&self) -> &'static str {
        match self.0.rsplit('.').next() {
            Some("png") => "image/png",
            Some("bmp") => "image/bmp",
            Some("gif") => "image/gif",
            Some("webp") => "image/webp",
            _ => "image/jpeg",
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn extension(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Png => "png",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Gif => "gif",
        ImageFormat::Webp => "webp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_names_parse_and_differ() {
        let a = ImageName::generate(ImageFormat::Jpeg).unwrap();
        let b = ImageName::generate(ImageFormat::Jpeg).unwrap();
        assert_ne!(a, b);
        assert_eq!(ImageName::parse(a.as_str()).unwrap(), a);
        assert!(a.as_str().ends_with(".jpg"));
        assert_eq!(a.key(), format!("uploads/{a}"));
        assert_eq!(a.content_type(), "image/jpeg");
    }

    #[test]
    fn path_like_and_malformed_names_are_refused() {
        for bad in [
            "",
            "../etc/passwd",
            "uploads/0123456789abcdef0123456789abcdef.jpg",
            "0123456789abcdef0123456789abcdef.jpg/..",
            "0123456789ABCDEF0123456789ABCDEF.jpg",
            "0123456789abcdef0123456789abcdef.exe",
            "0123456789abcdef0123456789abcde.jpg",
            "0123456789abcdef0123456789abcdef.jpg.png",
            "%2e%2e%2f0123456789abcdef01234567.jpg",
            "0123456789abcdef0123456789abcdef",
        ] {
            let e = ImageName::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_image_name", "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn no_string_with_a_separator_or_dot_dot_parses(s in ".*") {
            if let Ok(name) = ImageName::parse(&s) {
                prop_assert!(!name.as_str().contains('/'));
                prop_assert!(!name.as_str().contains('\\'));
                prop_assert!(!name.as_str().contains(".."));
                prop_assert_eq!(name.as_str().len(), 36 + usize::from(name.as_str().ends_with("webp")));
            }
        }

        #[test]
        fn any_generated_shape_round_trips(bytes in proptest::array::uniform16(any::<u8>())) {
            let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>() + ".png";
            let name = ImageName::parse(&s).unwrap();
            prop_assert_eq!(name.as_str(), s.as_str());
        }
    }
}
