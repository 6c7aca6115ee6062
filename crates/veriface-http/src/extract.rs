//! Reading request bodies into images and fields, with our error codes.
//!
//! Handlers that accept several body forms (`/compare` takes JSON or
//! multipart) read the request themselves through these helpers instead of
//! axum's typed extractors, so that every failure is one of our codes and
//! names the field at fault.

use std::collections::HashMap;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

/// What a request body claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json` or any `+json` type.
    Json,
    /// `multipart/form-data`.
    Multipart,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// No `Content-Type` header.
    Missing,
    /// Anything else (the media type, lowercased).
    Other(String),
}

/// Classifies the request by its `Content-Type`.
pub fn body_kind(req: &Request) -> BodyKind {
    let Some(value) = req.headers().get(CONTENT_TYPE) else {
        return BodyKind::Missing;
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => BodyKind::Json,
        "multipart/form-data" => BodyKind::Multipart,
        "application/x-www-form-urlencoded" => BodyKind::Form,
        m if m.starts_with("application/") && m.ends_with("+json") => BodyKind::Json,
        _ => BodyKind::Other(media),
    }
}

/// `unsupported_content_type` listing what the endpoint reads.
pub fn unsupported(kind: &BodyKind, accepted: &str) -> ApiError {
    let got = match kind {
        BodyKind::Missing => "no Content-Type".to_string(),
        BodyKind::Other(m) => format!("Content-Type {m}"),
        BodyKind::Json => "application/json".to_string(),
        BodyKind::Multipart => "multipart/form-data".to_string(),
        BodyKind::Form => "application/x-www-form-urlencoded".to_string(),
    };
    ApiError::new(
        ErrorCode::UnsupportedContentType,
        format!("this endpoint reads {accepted}; got {got}"),
    )
}

/// Reads the whole body; the router's body limit applies.
///
/// # Errors
/// `payload_too_large` over the limit; `malformed_json` style 400 for a
/// body that breaks off.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    to_bytes(body, limit).await.map_err(|e| {
        if is_length_limit(&e) {
            too_large(limit)
        } else {
            ApiError::new(
                ErrorCode::MalformedJson,
                "the request body could not be read",
            )
        }
    })
}

fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// `payload_too_large` naming the limit.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// Parses a JSON object body.
///
/// # Errors
/// `malformed_json` when it is not JSON or not an object.
pub fn parse_json_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            ErrorCode::MalformedJson,
            "the JSON body must be an object",
        )),
        Err(e) => Err(ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Parses a form-urlencoded body into its first value per key.
///
/// # Errors
/// `malformed_form`.
pub fn parse_form(bytes: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedForm,
            format!("the form body does not parse: {e}"),
        )
    })?;
    let mut map = HashMap::new();
    for (k, v) in pairs {
        map.entry(k).or_insert(v);
    }
    Ok(map)
}

/// A string field of a JSON object.
///
/// # Errors
/// `missing_field` or `invalid_field` (not a string).
pub fn json_string<'a>(
    map: &'a serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'a str, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(ApiError::missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`{field}` must be a string"),
        )),
    }
}

/// An optional number field of a JSON object (a numeric string is
/// accepted too, as form-minded clients send them).
///
/// # Errors
/// `invalid_field` when present but not a number.
pub fn json_number(
    map: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<f32>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|v| Some(v as f32))
            .ok_or_else(|| not_a_number(field)),
        Some(Value::String(s)) => parse_number(field, s).map(Some),
        Some(_) => Err(not_a_number(field)),
    }
}

/// Parses a number from a text field.
///
/// # Errors
/// `invalid_field`.
pub fn parse_number(field: &str, s: &str) -> Result<f32, ApiError> {
    s.trim().parse::<f32>().map_err(|_| not_a_number(field))
}

fn not_a_number(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidField,
        format!("`{field}` must be a number"),
    )
}

/// Decodes a base64 image, optionally wrapped in a data URI
/// (`data:image/jpeg;base64,...`). Standard and URL-safe alphabets, with or
/// without padding, and embedded line breaks are accepted, as browsers and
/// mobile SDKs produce all of them.
///
/// # Errors
/// `invalid_base64` naming the field.
pub fn decode_base64_image(field: &str, value: &str) -> Result<Bytes, ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            ErrorCode::InvalidBase64,
            format!("`{field}` is not a base64 image: {why}"),
        )
    };
    let mut payload = value.trim();
    if let Some(rest) = payload.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid("a data URI needs a comma before its data"))?;
        if !meta.ends_with(";base64") {
            return Err(invalid("the data URI is not base64-encoded"));
        }
        payload = data;
    }
    let cleaned: Vec<u8> = payload
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let url_safe = cleaned.iter().any(|&b| b == b'-' || b == b'_');
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let engine = if url_safe {
        GeneralPurpose::new(&alphabet::URL_SAFE, config)
    } else {
        GeneralPurpose::new(&alphabet::STANDARD, config)
    };
    engine
        .decode(&cleaned)
        .map(Bytes::from)
        .map_err(|e| invalid(&e.to_string()))
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub struct Part {
    /// The bytes.
    pub bytes: Bytes,
    /// The part's file name, if the client sent one (never used as a path).
    pub file_name: Option<String>,
}

/// Every part of a multipart body, by field name, in order.
#[derive(Debug, Default)]
pub struct Parts {
    parts: Vec<(String, Part)>,
}

impl Parts {
    /// The first part named `name`.
    pub fn get(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// The first part with any of `names`, with the name that matched.
    pub fn any_of(&self, names: &[&'static str]) -> Option<(&'static str, &Part)> {
        names.iter().find_map(|n| self.get(n).map(|p| (*n, p)))
    }

    /// Parts that carry a file name (uploads), in order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &Part)> {
        self.parts
            .iter()
            .filter(|(_, p)| p.file_name.is_some())
            .map(|(n, p)| (n.as_str(), p))
    }

    /// A text field as UTF-8.
    ///
    /// # Errors
    /// `invalid_field` when it is not UTF-8.
    pub fn text(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(p) => std::str::from_utf8(&p.bytes).map(Some).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidField,
                    format!("`{name}` must be UTF-8 text"),
                )
            }),
        }
    }
}

/// Reads every part of a multipart request into memory (nothing touches
/// the disk, so nothing is left behind on any path).
///
/// # Errors
/// `malformed_multipart` (no boundary, broken framing) or
/// `payload_too_large`.
pub async fn read_multipart(req: Request, limit: usize) -> Result<Parts, ApiError> {
    let mut multipart = Multipart::from_request(req, &()).await.map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedMultipart,
            format!("the multipart body cannot be read: {}", e.body_text()),
        )
    })?;
    let mut parts = Parts::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e, limit)),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| multipart_error(&e, limit))?;
        parts.parts.push((name, Part { bytes, file_name }));
    }
    Ok(parts)
}

fn multipart_error(e: &axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::new(
            ErrorCode::MalformedMultipart,
            format!("the multipart body is malformed: {}", e.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_accepts_data_uris_url_safe_and_missing_padding() {
        let raw = b"\xff\xd8\xff\xe0hello?>";
        let std = base64::engine::general_purpose::STANDARD.encode(raw);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        for s in [
            std.clone(),
            format!("data:image/jpeg;base64,{std}"),
            url,
            std.trim_end_matches('=').to_string(),
            format!("{}\n{}", &std[..4], &std[4..]),
        ] {
            assert_eq!(
                decode_base64_image("face", &s).unwrap().as_ref(),
                raw,
                "{s}"
            );
        }
    }

    #[test]
    fn malformed_base64_names_the_field() {
        for bad in [
            "not base64!",
            "data:image/jpeg,abcd",
            "data:image/png;base64",
        ] {
            let e = decode_base64_image("passport", bad).unwrap_err();
            assert_eq!(e.code(), "invalid_base64", "{bad}");
            assert!(e.message().contains("passport"));
        }
    }

    #[test]
    fn json_fields_are_typed() {
        let map = parse_json_object(br#"{"a": "x", "n": 0.5, "s": "0.4", "b": true}"#).unwrap();
        assert_eq!(json_string(&map, "a").unwrap(), "x");
        assert_eq!(json_string(&map, "zz").unwrap_err().code(), "missing_field");
        assert_eq!(json_string(&map, "n").unwrap_err().code(), "invalid_field");
        assert_eq!(json_number(&map, "n").unwrap(), Some(0.5));
        assert_eq!(json_number(&map, "s").unwrap(), Some(0.4));
        assert_eq!(json_number(&map, "b").unwrap_err().code(), "invalid_field");
        assert_eq!(
            parse_json_object(b"[1]").unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(
            parse_json_object(b"{").unwrap_err().code(),
            "malformed_json"
        );
    }
}
