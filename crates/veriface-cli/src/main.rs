//! The `veriface` command-line tool: face detection, descriptors and 1:1
//! comparison of image files, with JSON on stdout.
//!
//! Exit codes: 0 success (for `compare`: the faces match), 1 the faces do not
//! match, 2 an error (a JSON error object is written to stderr).

/// mimalloc keeps freed memory for reuse: with glibc's allocator every
/// detection mmapped and unmapped its multi-megabyte tensors and paid about
/// 60,000 page faults (240 MB of fresh zeroed pages) each time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod document;
mod output;
mod serve;
mod worker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use image::RgbImage;
use serde_json::{json, Value};
use veriface_vision::compare::{Comparison, DEFAULT_THRESHOLD};
use veriface_vision::decode::{decode, DecodeLimits};
use veriface_vision::detect::largest::pick_largest;
use veriface_vision::engine::{
    AnalyzeOptions, DetectOptions, DetectorMode, Face, FaceEngine, LargestSearch,
};
use veriface_vision::models_dir::{check_all, default_models_dir};

use output::{face_json, CliError};

#[derive(Parser, Debug)]
#[command(
    name = "veriface",
    version,
    about = "Face detection and verification with dlib's models, in Rust"
)]
struct Cli {
    /// Directory holding the model files (default: $VERIFACE_MODELS_DIR, else ./models).
    #[arg(long, global = true)]
    models_dir: Option<PathBuf>,
    /// Worker threads for inference (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Print a readable table instead of JSON.
    #[arg(long, global = true)]
    human: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Find faces and their 5 landmarks in each image.
    Detect {
        #[command(flatten)]
        det: DetectArgs,
        /// Image files (format sniffed from the bytes).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Find faces and compute their 128-D descriptors.
    Embed {
        #[command(flatten)]
        det: DetectArgs,
        /// Average this many jittered chips per face (face_recognition's num_jitters).
        #[arg(long, default_value_t = 1)]
        jitters: u32,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Compare the largest face of two images.
    Compare {
        #[command(flatten)]
        det: DetectArgs,
        /// Match when the distance is at most this.
        #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
        threshold: f32,
        /// Average this many jittered chips per face.
        #[arg(long, default_value_t = 1)]
        jitters: u32,
        /// Find every face in both images and report how many
        /// (`faces_found`). By default only the largest face is searched
        /// for, which skips most of the detector's work on large faces.
        #[arg(long)]
        all_faces: bool,
        /// Search for the largest face exactly: score until it is certain to
        /// be dlib's pick (slower). By default the coarse levels are
        /// screened and only the candidates get dlib-exact scores.
        #[arg(long, conflicts_with = "all_faces")]
        exact_search: bool,
        /// First image.
        a: PathBuf,
        /// Second image.
        b: PathBuf,
    },
    /// Read the MRZ (OCR, ICAO 9303) and PDF417 barcodes of identity-document images.
    Document {
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Run the asynchronous verifier: the Kafka consumer when KAFKA_BROKERS is set, else the embedded job-queue worker.
    Worker(worker::WorkerArgs),
    /// Run the HTTP service (see docs/api.md and docs/configuration.md).
    Serve(serve::ServeArgs),
    /// Model file management.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ModelsCommand {
    /// Check that every model file is present and matches its pinned sha256.
    Check,
}

#[derive(Args, Debug, Clone, Copy)]
struct DetectArgs {
    /// Run the detector exactly as dlib does (upsample, full pyramid): slower.
    #[arg(long)]
    reference: bool,
    /// Reference mode: times the image is doubled before detection.
    #[arg(long, default_value_t = 1)]
    upsample: u32,
    /// Fast mode: smallest face side to find, in pixels.
    #[arg(long)]
    min_face_size: Option<u32>,
}

impl DetectArgs {
    fn options(&self) -> DetectOptions {
        let mut o = if self.reference {
            DetectOptions::reference()
        } else {
            DetectOptions::fast()
        };
        o.upsample = self.upsample;
        if let Some(m) = self.min_face_size {
            o.min_face_size = m;
        }
        o
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    if let Some(n) = cli.threads {
        // Only fails if a pool was already built, which cannot happen here.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    let human = cli.human;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let body = json!({"error": {"code": e.code, "message": e.message}});
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{body}");
            if human {
                let _ = writeln!(err, "error: {}", e.message);
            }
            ExitCode::from(2)
        }
    }
}

/// Bad arguments get the same error contract as every other failure (exit
/// 2, one JSON error on stderr) so that scripts need only one parser;
/// `--help` and `--version` keep clap's own output and exit 0.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let message = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "a subcommand is required (detect, embed, compare, document, serve, worker, models); see --help"
                .to_string()
        }
        _ => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        }
    };
    let body = json!({"error": {"code": "invalid_arguments", "message": message}});
    let _ = writeln!(std::io::stderr().lock(), "{body}");
    ExitCode::from(2)
}

fn load_engine(dir: &Option<PathBuf>) -> Result<FaceEngine, CliError> {
    let dir = dir.clone().unwrap_or_else(default_models_dir);
    FaceEngine::load(&dir).map_err(CliError::from_engine)
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Serve(args) => serve::run(args, cli.models_dir),
        Command::Models {
            command: ModelsCommand::Check,
        } => {
            let dir = cli.models_dir.unwrap_or_else(default_models_dir);
            let st = check_all(&dir);
            let ok = st.iter().all(|s| s.status == "ok");
            if cli.human {
                for s in &st {
                    output::print_line(&format!("{:<45} {}", s.file, s.status))?;
                }
            } else {
                output::print_json(&json!({"models_dir": dir, "ok": ok, "files": st}))?;
            }
            // The same codes the loaders give (`detect`, `embed`, ...), so a
            // script sees one vocabulary: missing first, since a partial
            // install is the common case and reinstalling fixes both.
            let code = if st.iter().any(|s| s.status == "missing") {
                "models_missing"
            } else if st.iter().any(|s| s.status == "checksum_mismatch") {
                "model_checksum_mismatch"
            } else {
                "io_error"
            };
            if ok {
                Ok(ExitCode::SUCCESS)
            } else {
                Err(CliError::new(
                    code,
                    format!(
                        "model files in {} are missing or corrupt; run scripts/install-models.sh",
                        dir.display()
                    ),
                ))
            }
        }
        Command::Document { images } => document::run(&images, cli.human),
        Command::Worker(args) => worker::run(args, cli.models_dir),
        Command::Detect { det, images } => {
            let engine = load_engine(&cli.models_dir)?;
            let opts = AnalyzeOptions {
                detect: det.options(),
                embed: false,
                num_jitters: 1,
            };
            per_image(&engine, &images, &opts, cli.human)
        }
        Command::Embed {
            det,
            jitters,
            images,
        } => {
            let engine = load_engine(&cli.models_dir)?;
            let opts = AnalyzeOptions {
                detect: det.options(),
                embed: true,
                num_jitters: jitters,
            };
            per_image(&engine, &images, &opts, cli.human)
        }
        Command::Compare {
            det,
            threshold,
            jitters,
            all_faces,
            exact_search,
            a,
            b,
        } => {
            if !(threshold.is_finite() && threshold > 0.0) {
                return Err(CliError::new(
                    "invalid_threshold",
                    format!("threshold must be a positive number, got {threshold}"),
                ));
            }
            let engine = load_engine(&cli.models_dir)?;
            let mut detect = det.options();
            if exact_search {
                detect.largest = LargestSearch::Exact;
            }
            let opts = AnalyzeOptions {
                detect,
                embed: true,
                num_jitters: jitters,
            };
            compare(&engine, [&a, &b], &opts, all_faces, threshold, cli.human)
        }
    }
}

/// One analysed image: its size and faces.
struct Analysed {
    width: u32,
    height: u32,
    faces: Vec<Face>,
    decode_ms: f64,
    analyze_ms: f64,
}

/// Reads and decodes one image file (EXIF orientation applied).
fn read_image(path: &Path) -> Result<RgbImage, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, &e))?;
    Ok(decode(&bytes, &DecodeLimits::default())
        .map_err(|e| CliError::image(path, &e))?
        .image)
}

fn analyse(engine: &FaceEngine, path: &Path, opts: &AnalyzeOptions) -> Result<Analysed, CliError> {
    let t0 = Instant::now();
    let img = read_image(path)?;
    let t1 = Instant::now();
    let faces = engine.analyze(&img, opts).map_err(CliError::from_engine)?;
    Ok(Analysed {
        width: img.width(),
        height: img.height(),
        faces,
        decode_ms: ms(t1 - t0),
        analyze_ms: ms(t1.elapsed()),
    })
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn per_image(
    engine: &FaceEngine,
    images: &[PathBuf],
    opts: &AnalyzeOptions,
    human: bool,
) -> Result<ExitCode, CliError> {
    let mut out = Vec::with_capacity(images.len());
    let mut failed = false;
    for path in images {
        let file = path.display().to_string();
        match analyse(engine, path, opts) {
            Ok(a) => {
                if human {
                    output::print_human_faces(&file, a.width, a.height, &a.faces)?;
                }
                out.push(json!({
                    "file": file,
                    "width": a.width,
                    "height": a.height,
                    "faces": a.faces.iter().map(face_json).collect::<Vec<_>>(),
                    "timings_ms": {"decode": a.decode_ms, "analyze": a.analyze_ms},
                }));
            }
            Err(e) => {
                failed = true;
                if human {
                    output::print_line(&format!("{file}: error {}: {}", e.code, e.message))?;
                }
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "{}",
                    json!({"error": {"code": e.code, "message": e.message, "file": file}})
                );
                out.push(json!({"file": file, "error": {"code": e.code, "message": e.message}, "faces": []}));
            }
        }
    }
    if !human {
        output::print_json(&Value::Array(out))?;
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The f64 whose shortest decimal form is the f32's, so that `0.6` prints as
/// `0.6` and not as the f32's exact value `0.6000000238418579`.
fn shortest_f64(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// One image's side of a compare: the largest face and, when every face
/// was looked for, how many there are.
struct CompareSide {
    width: u32,
    height: u32,
    face: Face,
    faces_found: Option<usize>,
    decode_ms: f64,
    analyze_ms: f64,
}

/// Decodes `path` and finds its largest face with its descriptor: with
/// `all_faces`, from the full detector's list (counting the others);
/// otherwise with the engine's largest-face search, which skips the
/// detector's work on faces too small to be the largest.
fn compare_side(
    engine: &FaceEngine,
    path: &Path,
    opts: &AnalyzeOptions,
    all_faces: bool,
) -> Result<CompareSide, CliError> {
    let t0 = Instant::now();
    let img = read_image(path)?;
    let t1 = Instant::now();
    let (face, faces_found) = if all_faces {
        let boxes = engine.detect(&img, &opts.detect);
        let n = boxes.len();
        // The rule `detect_largest` follows: area, then the higher score.
        let face = pick_largest(boxes, |b| (b.rect.area(), b.score))
            .map(|face_box| engine.face(&img, face_box, opts))
            .transpose()
            .map_err(CliError::from_engine)?;
        (face, Some(n))
    } else {
        let face = engine
            .analyze_largest(&img, opts)
            .map_err(CliError::from_engine)?;
        (face, None)
    };
    let face = face.ok_or_else(|| {
        CliError::new(
            "no_face_detected",
            format!("no face found in {}", path.display()),
        )
    })?;
    Ok(CompareSide {
        width: img.width(),
        height: img.height(),
        face,
        faces_found,
        decode_ms: ms(t1 - t0),
        analyze_ms: ms(t1.elapsed()),
    })
}

fn compare(
    engine: &FaceEngine,
    [a, b]: [&Path; 2],
    opts: &AnalyzeOptions,
    all_faces: bool,
    threshold: f32,
    human: bool,
) -> Result<ExitCode, CliError> {
    let t0 = Instant::now();
    let (ra, rb) = rayon::join(
        || compare_side(engine, a, opts, all_faces),
        || compare_side(engine, b, opts, all_faces),
    );
    let (ra, rb) = (ra?, rb?);
    let (Some(ea), Some(eb)) = (ra.face.embedding, rb.face.embedding) else {
        return Err(CliError::new("internal", "descriptor missing".to_string()));
    };
    let c = Comparison::from_distance(ea.distance(&eb), threshold);
    let side = |p: &Path, r: &CompareSide| {
        let mut v = json!({
            "file": p.display().to_string(),
            "width": r.width,
            "height": r.height,
            "face": face_json(&r.face),
        });
        if let Some(n) = r.faces_found {
            v["faces_found"] = json!(n);
        }
        v
    };
    let mut body = json!({
        "match": c.is_match,
        "distance": c.distance,
        "similarity": c.similarity,
        "threshold": shortest_f64(c.threshold),
        "detector": match opts.detect.mode { DetectorMode::Reference => "reference", DetectorMode::Fast => "fast" },
        "search": if all_faces { "all_faces" } else { "largest_face" },
        "a": side(a, &ra),
        "b": side(b, &rb),
        "timings_ms": {
            "decode_a": ra.decode_ms, "analyze_a": ra.analyze_ms,
            "decode_b": rb.decode_ms, "analyze_b": rb.analyze_ms,
            "total": ms(t0.elapsed()),
        },
    });
    if !all_faces && opts.detect.mode == DetectorMode::Fast {
        body["largest_search"] = json!(opts.detect.largest);
    }
    if human {
        output::print_line(&format!(
            "{}  distance {:.4}  similarity {:.3}  threshold {}",
            if c.is_match { "MATCH" } else { "NO MATCH" },
            c.distance,
            c.similarity,
            c.threshold
        ))?;
    } else {
        output::print_json(&body)?;
    }
    Ok(if c.is_match {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
