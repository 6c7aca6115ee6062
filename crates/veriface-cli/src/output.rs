//! JSON shapes and terminal output of the CLI.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use veriface_vision::decode::ImageError;
use veriface_vision::engine::Face;

/// A CLI failure with a stable machine code.
#[derive(Debug)]
pub struct CliError {
    /// snake_case code, listed in the README.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl CliError {
    /// A new error.
    pub fn new(code: &'static str, message: String) -> Self {
        Self { code, message }
    }

    /// A file that could not be read.
    pub fn io(path: &Path, e: &std::io::Error) -> Self {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            "file_not_found"
        } else {
            "io_error"
        };
        Self::new(code, format!("cannot read {}: {e}", path.display()))
    }

    /// An image that could not be decoded.
    pub fn image(path: &Path, e: &ImageError) -> Self {
        Self::new(e.code(), format!("{}: {e}", path.display()))
    }

    /// An engine (model loading) failure.
    pub fn from_engine(e: veriface_vision::Error) -> Self {
        let code = match &e {
            veriface_vision::Error::ModelMissing { .. } => "models_missing",
            veriface_vision::Error::ModelChecksum { .. } => "model_checksum_mismatch",
            veriface_vision::Error::ModelFormat { .. } => "model_invalid",
            veriface_vision::Error::Io { .. } => "io_error",
            veriface_vision::Error::Image(i) => i.code(),
            veriface_vision::Error::Chip(_) => "internal",
        };
        Self::new(code, error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new("io_error", e.to_string())
    }
}

/// The public JSON of one face.
pub fn face_json(f: &Face) -> Value {
    let r = f.face_box.rect;
    let mut v = json!({
        "box": {"left": r.left, "top": r.top, "right": r.right, "bottom": r.bottom},
        "score": f.face_box.score,
        "landmarks": f.landmarks.iter().map(|p| [p.x, p.y]).collect::<Vec<_>>(),
    });
    if let (Some(e), Some(obj)) = (f.embedding, v.as_object_mut()) {
        obj.insert("embedding".into(), json!(e.0.to_vec()));
    }
    v
}

/// Writes a JSON value and a newline to stdout. A closed pipe (`| head`) is
/// not an error.
pub fn print_json(v: &Value) -> Result<(), CliError> {
    print_line(&serde_json::to_string_pretty(v).unwrap_or_default())
}

/// Writes one line to stdout, treating a closed pipe as success.
pub fn print_line(s: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The `--human` table for one image.
pub fn print_human_faces(file: &str, w: u32, h: u32, faces: &[Face]) -> Result<(), CliError> {
    print_line(&format!("{file}  {w}x{h}  {} face(s)", faces.len()))?;
    for (i, f) in faces.iter().enumerate() {
        let r = f.face_box.rect;
        print_line(&format!(
            "  #{i}  box ({}, {})-({}, {})  score {:.3}{}",
            r.left,
            r.top,
            r.right,
            r.bottom,
            f.face_box.score,
            if f.embedding.is_some() {
                "  embedding: 128-D"
            } else {
                ""
            }
        ))?;
    }
    Ok(())
}
