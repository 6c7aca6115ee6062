//! Getting images (and a threshold) out of a request, whichever body form
//! it uses.

use std::time::{Duration, Instant};

use axum::extract::Request;
use bytes::Bytes;
use veriface_core::face::Threshold;

use crate::error::ApiError;
use crate::extract::{
    body_kind, decode_base64_image, json_number, json_string, parse_json_object, parse_number,
    read_body, read_multipart, unsupported, BodyKind, Parts,
};

/// An image from a request, with the field it came in.
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// The field name (used in error messages and responses).
    pub field: String,
    /// The encoded image.
    pub bytes: Bytes,
}

/// Images and options read from one request.
#[derive(Debug)]
pub struct Inputs {
    /// The images, in the order asked for.
    pub images: Vec<ImageInput>,
    /// A `threshold` field, if any.
    pub threshold: Option<f32>,
    /// Time spent decoding base64 (JSON bodies).
    pub base64: Duration,
}

impl Inputs {
    /// The threshold to use: the request's, validated, or `default`.
    ///
    /// # Errors
    /// `invalid_threshold` (400).
    pub fn threshold_or(&self, default: Threshold) -> Result<Threshold, ApiError> {
        self.threshold
            .map_or(Ok(default), Threshold::parse)
            .map_err(ApiError::from)
    }

    /// Takes the image at `i` (the inputs hold exactly the fields asked
    /// for, so this only fails on a programming error).
    ///
    /// # Errors
    /// `internal`.
    pub fn take(&mut self, i: usize) -> Result<ImageInput, ApiError> {
        if i < self.images.len() {
            Ok(std::mem::replace(
                &mut self.images[i],
                ImageInput {
                    field: String::new(),
                    bytes: Bytes::new(),
                },
            ))
        } else {
            Err(ApiError::internal(std::io::Error::other(
                "image input index out of range",
            )))
        }
    }
}

/// Reads the images named `fields` from a JSON body (base64 strings or
/// data URIs) or a multipart body (file parts), plus an optional
/// `threshold` field.
///
/// Each entry of `fields` lists accepted names for one image, the first
/// being the documented one; a multipart body whose parts have other names
/// may still fill them in order from its file parts when `any_files` is
/// set (seed 000's clients name their file fields in ways its README does
/// not record).
///
/// # Errors
/// `unsupported_content_type`, `malformed_json`, `malformed_multipart`,
/// `missing_field`, `invalid_field`, `invalid_base64`, `payload_too_large`.
pub async fn read_images(
    req: Request,
    limit: usize,
    fields: &[&[&'static str]],
    any_files: bool,
) -> Result<Inputs, ApiError> {
    match body_kind(&req) {
        BodyKind::Json => {
            let bytes = read_body(req.into_body(), limit).await?;
            let map = parse_json_object(&bytes)?;
            let started = Instant::now();
            let mut images = Vec::with_capacity(fields.len());
            for names in fields {
                let field = names
                    .iter()
                    .find(|n| map.get(**n).is_some_and(|v| !v.is_null()))
                    .copied()
                    .unwrap_or(names[0]);
                let value = json_string(&map, field)?;
                images.push(ImageInput {
                    field: field.to_string(),
                    bytes: decode_base64_image(field, value)?,
                });
            }
            Ok(Inputs {
                images,
                threshold: json_number(&map, "threshold")?,
                base64: started.elapsed(),
            })
        }
        BodyKind::Multipart => {
            let parts = read_multipart(req, limit).await?;
            from_parts(&parts, fields, any_files)
        }
        other => Err(unsupported(
            &other,
            "application/json (base64 images) or multipart/form-data (files)",
        )),
    }
}

/// The images of a multipart body (see [`read_images`]).
///
/// # Errors
/// `missing_field`, `invalid_field`.
pub fn from_parts(
    parts: &Parts,
    fields: &[&[&'static str]],
    any_files: bool,
) -> Result<Inputs, ApiError> {
    let mut images = Vec::with_capacity(fields.len());
    let mut spare_files = parts
        .files()
        .filter(|(name, _)| !fields.iter().any(|names| names.iter().any(|n| n == name)));
    for names in fields {
        let found = match parts.any_of(names) {
            Some((field, part)) => Some((field.to_string(), part)),
            None if any_files => spare_files
                .next()
                .map(|(name, part)| (name.to_string(), part)),
            None => None,
        };
        let (field, part) = found.ok_or_else(|| ApiError::missing(names[0]))?;
        images.push(ImageInput {
            field,
            bytes: part.bytes.clone(),
        });
    }
    let threshold = match parts.text("threshold")? {
        Some(t) if !t.trim().is_empty() => Some(parse_number("threshold", t)?),
        _ => None,
    };
    Ok(Inputs {
        images,
        threshold,
        base64: Duration::ZERO,
    })
}
