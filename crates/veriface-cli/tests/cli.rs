//! End-to-end tests of the `veriface` binary: the real executable, real
//! models and real photos from the shared data set, checking the JSON
//! contract, exit codes (0 match, 1 no match, 2 error) and error codes that
//! the README documents.
//!
//! Models come from `$VERIFACE_MODELS_DIR`, else `models/` at the workspace
//! root; the photos from `$VERIFACE_SHARED_DIR`, else `../shared` beside the
//! checkout. Missing either fails the test with the command that fixes it.
//!
//! The machine is small and shared, so each test runs the binary as few
//! times as possible on small images, always with the fast detector.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{ImageEncoder, Rgb, RgbImage};
use serde_json::Value;

/// `$VERIFACE_SHARED_DIR`, else `../shared` beside the checkout.
fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("data/faces/manifest.csv").is_file(),
        "the shared data set is missing at {}: clone it beside the checkout or set VERIFACE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// `$VERIFACE_MODELS_DIR`, else `models/` at the workspace root.
fn models_dir() -> PathBuf {
    let dir = std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(
        dir.join("mmod_human_face_detector.dat").is_file(),
        "models are missing in {}: run `scripts/install-models.sh`",
        dir.display()
    );
    dir
}

/// A photo from the shared data set, e.g. `person02/img53.jpg`.
fn photo(rel: &str) -> PathBuf {
    let p = shared_dir().join("data/faces/images").join(rel);
    assert!(
        p.is_file(),
        "{} is missing from the shared data set",
        p.display()
    );
    p
}

/// A fresh temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "veriface-cli-test-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary in `cwd` with the models directory set.
fn veriface(cwd: &TempDir, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veriface"));
    cmd.current_dir(&cwd.0)
        .env("VERIFACE_MODELS_DIR", models_dir())
        .arg("--threads")
        .arg("2");
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("killed by a signal")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every JSON line on stderr.
fn stderr_errors(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// Asserts a single-error failure: exit 2, nothing on stdout, one error
/// object with `code` on stderr; returns its message.
fn assert_error(out: &Output, expected: &str) -> String {
    assert_eq!(
        code(out),
        2,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "stdout not empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errs = stderr_errors(out);
    assert_eq!(errs.len(), 1, "stderr: {errs:?}");
    assert_eq!(errs[0]["error"]["code"], expected, "{errs:?}");
    errs[0]["error"]["message"].as_str().unwrap().to_string()
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A plain mid-grey PNG: no face in it.
fn blank_png() -> Vec<u8> {
    let img = RgbImage::from_pixel(200, 150, Rgb([128, 128, 128]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A big-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT.
fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2A\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

/// `upright` with its pixels stored rotated 90° clockwise and an EXIF
/// Orientation of 8 ("rotate 90° counter-clockwise to view"), as a phone
/// held sideways saves it: an EXIF-aware decoder gets `upright` back.
fn rotated_with_exif(upright: &Path) -> Vec<u8> {
    let img = image::open(upright).unwrap().to_rgb8();
    let stored = image::imageops::rotate90(&img);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .write_image(
            &stored,
            stored.width(),
            stored.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(exif_tiff(8));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Checks one face object against the public contract.
fn assert_face_contract(face: &Value, width: f64, height: f64, embedding: bool) {
    let obj = face.as_object().unwrap();
    let b = &face["box"];
    let (l, t, r, bt) = (
        f64_of(&b["left"]),
        f64_of(&b["top"]),
        f64_of(&b["right"]),
        f64_of(&b["bottom"]),
    );
    assert!(0.0 <= l && l < r && r <= width, "box {b}");
    assert!(0.0 <= t && t < bt && bt <= height, "box {b}");
    assert!(f64_of(&face["score"]) > 0.0, "score {}", face["score"]);
    let lm = face["landmarks"].as_array().unwrap();
    assert_eq!(lm.len(), 5, "landmarks {lm:?}");
    for p in lm {
        let p = p.as_array().unwrap();
        assert_eq!(p.len(), 2);
        let (x, y) = (f64_of(&p[0]), f64_of(&p[1]));
        // Landmarks sit on the face, within a margin of its box.
        let m = (r - l) * 0.5;
        assert!(
            l - m <= x && x <= r + m && t - m <= y && y <= bt + m,
            "{p:?} vs {b}"
        );
    }
    assert_eq!(obj.contains_key("embedding"), embedding, "{face}");
    if embedding {
        let e = face["embedding"].as_array().unwrap();
        assert_eq!(e.len(), 128);
        let norm: f64 = e.iter().map(|v| f64_of(v).powi(2)).sum::<f64>().sqrt();
        // dlib's descriptors are close to unit length.
        assert!((0.2..2.0).contains(&norm), "norm {norm}");
    }
}

#[test]
fn compare_same_person_matches() {
    let tmp = TempDir::new("same");
    let (a, b) = (photo("person02/img53.jpg"), photo("person02/img56.jpg"));
    let out = veriface(&tmp, &[&"compare", &a, &b]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    assert_eq!(v["match"], true);
    let d = f64_of(&v["distance"]);
    assert!((0.0..0.6).contains(&d), "distance {d}");
    let s = f64_of(&v["similarity"]);
    assert!((0.0..=1.0).contains(&s), "similarity {s}");
    assert!((s - (1.0 - d / 1.2)).abs() < 1e-4, "similarity {s} vs {d}");
    assert!((f64_of(&v["threshold"]) - 0.6).abs() < 1e-6);
    assert_eq!(v["detector"], "fast");
    assert_eq!(v["a"]["file"], a.display().to_string());
    assert_eq!(v["b"]["file"], b.display().to_string());
    assert_eq!(v["a"]["width"], 1100);
    assert_eq!(v["a"]["height"], 825);
    // The default searches for the largest face only, so it does not count.
    assert_eq!(v["search"], "largest_face");
    assert_eq!(v["largest_search"], "screened");
    assert!(v["a"].get("faces_found").is_none(), "{}", v["a"]);
    assert_face_contract(&v["a"]["face"], 1100.0, 825.0, true);
}

#[test]
fn compare_different_people_and_threshold() {
    let tmp = TempDir::new("diff");
    let (a, b) = (photo("person02/img12.jpg"), photo("person09/img25.jpg"));
    let out = veriface(&tmp, &[&"compare", &a, &b]);
    assert_eq!(
        code(&out),
        1,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    assert_eq!(v["match"], false);
    let d = f64_of(&v["distance"]);
    assert!(d > 0.6, "distance {d}");
    let s = f64_of(&v["similarity"]);
    assert!((0.0..0.5).contains(&s), "similarity {s}");

    // A looser threshold above the distance turns the same pair into a match.
    let loose = format!("{:.3}", d + 0.05);
    let out = veriface(&tmp, &[&"compare", &"--threshold", &loose, &a, &b]);
    assert_eq!(code(&out), 0);
    let v2 = stdout_json(&out);
    assert_eq!(v2["match"], true);
    assert!((f64_of(&v2["threshold"]) - (d + 0.05)).abs() < 1e-3);
    assert!((f64_of(&v2["distance"]) - d).abs() < 1e-6, "deterministic");

    // A threshold that is not a positive number is refused up front.
    let out = veriface(&tmp, &[&"compare", &"--threshold", &"0", &a, &b]);
    assert_error(&out, "invalid_threshold");
}

#[test]
fn detect_keeps_order_and_contract() {
    let tmp = TempDir::new("detect");
    let blank = tmp.write("blank.png", &blank_png());
    // A PNG saved under a .jpg name: the format comes from the bytes.
    let misnamed = tmp.write("really-a-png.jpg", &blank_png());
    let face = photo("person02/img12.jpg");
    let couple = photo("_multi/couple.jpg");
    let rotated = tmp.write("rotated.jpg", &rotated_with_exif(&face));
    let out = veriface(
        &tmp,
        &[&"detect", &face, &blank, &couple, &misnamed, &rotated],
    );
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    let items = v.as_array().unwrap();
    let files: Vec<_> = items.iter().map(|i| i["file"].clone()).collect();
    let expected: Vec<Value> = [&face, &blank, &couple, &misnamed, &rotated]
        .iter()
        .map(|p| Value::from(p.display().to_string()))
        .collect();
    assert_eq!(files, expected, "argument order");

    let faces = |i: usize| items[i]["faces"].as_array().unwrap();
    assert_eq!(
        (items[0]["width"].clone(), items[0]["height"].clone()),
        (560.into(), 415.into())
    );
    assert_eq!(faces(0).len(), 1);
    assert_face_contract(&faces(0)[0], 560.0, 415.0, false);

    assert_eq!(items[1]["width"], 200);
    assert_eq!(items[1]["height"], 150);
    assert!(faces(1).is_empty(), "a plain image has no face");

    assert_eq!(faces(2).len(), 2, "couple.jpg has two faces");
    for f in faces(2) {
        assert_face_contract(f, 2280.0, 1588.0, false);
    }

    assert_eq!(items[3]["width"], 200);
    assert!(faces(3).is_empty());

    // EXIF orientation is applied: the upright size, and the same face.
    assert_eq!(items[4]["width"], 560);
    assert_eq!(items[4]["height"], 415);
    assert_eq!(faces(4).len(), 1);
    let (b0, b4) = (&faces(0)[0]["box"], &faces(4)[0]["box"]);
    for k in ["left", "top", "right", "bottom"] {
        assert!(
            (f64_of(&b0[k]) - f64_of(&b4[k])).abs() <= 8.0,
            "{b0} vs {b4}"
        );
    }
    for item in items {
        assert!(item.get("error").is_none(), "{item}");
    }
}

#[test]
fn embed_gives_128_floats_per_face() {
    let tmp = TempDir::new("embed");
    let out = veriface(&tmp, &[&"embed", &photo("person02/img12.jpg")]);
    assert_eq!(code(&out), 0);
    let v = stdout_json(&out);
    let faces = v[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert_face_contract(&faces[0], 560.0, 415.0, true);
}

#[test]
fn human_prints_a_table() {
    let tmp = TempDir::new("human");
    let img = photo("person02/img12.jpg");
    let out = veriface(&tmp, &[&"--human", &"detect", &img]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "not JSON: {text}"
    );
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("560x415") && lines[0].contains("1 face(s)"),
        "{text}"
    );
    assert!(
        lines[1].contains("#0") && lines[1].contains("box"),
        "{text}"
    );
}

#[test]
fn models_check() {
    let tmp = TempDir::new("models");
    let out = veriface(&tmp, &[&"models", &"check"]);
    assert_eq!(code(&out), 0);
    let v = stdout_json(&out);
    assert_eq!(v["ok"], true);
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert!(files.iter().all(|f| f["status"] == "ok"), "{v}");

    let empty = tmp.path("empty-models");
    std::fs::create_dir_all(&empty).unwrap();
    let out = veriface(&tmp, &[&"--models-dir", &empty, &"models", &"check"]);
    assert_eq!(code(&out), 2);
    // The report still goes to stdout so a script can see which files fail.
    assert_eq!(stdout_json(&out)["ok"], false);
    let errs = stderr_errors(&out);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0]["error"]["code"], "models_missing");
    let msg = errs[0]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("scripts/install-models.sh"), "{msg}");

    // Any command that needs the engine fails the same way.
    let out = veriface(
        &tmp,
        &[
            &"--models-dir",
            &empty,
            &"detect",
            &photo("person02/img12.jpg"),
        ],
    );
    assert_error(&out, "models_missing");

    // A corrupt file: `models check` and the loaders agree on the code.
    let corrupt = tmp.path("corrupt-models");
    std::fs::create_dir_all(&corrupt).unwrap();
    for f in std::fs::read_dir(models_dir()).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "dat") {
            std::fs::copy(&f, corrupt.join(f.file_name().unwrap())).unwrap();
        }
    }
    let victim = corrupt.join("shape_predictor_5_face_landmarks.dat");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let out = veriface(&tmp, &[&"--models-dir", &corrupt, &"models", &"check"]);
    assert_eq!(code(&out), 2);
    let report = stdout_json(&out);
    let statuses: Vec<_> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "checksum_mismatch"], "{report}");
    assert_eq!(
        stderr_errors(&out)[0]["error"]["code"],
        "model_checksum_mismatch"
    );
    let out = veriface(
        &tmp,
        &[
            &"--models-dir",
            &corrupt,
            &"detect",
            &photo("person02/img12.jpg"),
        ],
    );
    assert_error(&out, "model_checksum_mismatch");
}

#[test]
fn bad_files_give_decode_error_codes() {
    let tmp = TempDir::new("bad");
    let missing = tmp.path("missing.jpg");
    let text = tmp.write("notes.jpg", b"this is not an image, just some text\n");
    let full = std::fs::read(photo("person02/img12.jpg")).unwrap();
    let truncated = tmp.write("truncated.jpg", &full[..full.len() / 2]);
    let empty = tmp.write("empty.png", b"");

    // One bad file per compare: exit 2, nothing on stdout.
    let blank = tmp.write("blank.png", &blank_png());
    let msg = assert_error(
        &veriface(&tmp, &[&"compare", &missing, &blank]),
        "file_not_found",
    );
    assert!(msg.contains("missing.jpg"), "{msg}");

    // A batch reports each failing file on stderr, in order, and still
    // lists every file on stdout.
    let out = veriface(&tmp, &[&"detect", &missing, &text, &truncated, &empty]);
    assert_eq!(code(&out), 2);
    let errs = stderr_errors(&out);
    let got: Vec<_> = errs
        .iter()
        .map(|e| {
            (
                e["error"]["file"].as_str().unwrap().to_string(),
                e["error"]["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<_> = [
        (&missing, "file_not_found"),
        (&text, "unsupported_image_format"),
        (&truncated, "invalid_image"),
        (&empty, "empty_image"),
    ]
    .iter()
    .map(|(p, c)| (p.display().to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
    let v = stdout_json(&out);
    assert_eq!(v.as_array().unwrap().len(), 4);
    assert_eq!(v[2]["error"]["code"], "invalid_image");
}

#[test]
fn compare_without_a_face_names_the_image() {
    let tmp = TempDir::new("noface");
    let blank = tmp.write("blank.png", &blank_png());
    let msg = assert_error(
        &veriface(&tmp, &[&"compare", &photo("person02/img12.jpg"), &blank]),
        "no_face_detected",
    );
    assert!(msg.contains("blank.png"), "{msg}");
}

/// `big` at full size beside a half-size copy of `small`, as a PNG: a
/// two-face image whose largest face is known.
fn side_by_side(big: &Path, small: &Path) -> Vec<u8> {
    let big = image::open(big).unwrap().to_rgb8();
    let small = image::open(small).unwrap().to_rgb8();
    let small = image::imageops::resize(
        &small,
        small.width() / 2,
        small.height() / 2,
        image::imageops::FilterType::Triangle,
    );
    let mut canvas = RgbImage::from_pixel(
        big.width() + small.width(),
        big.height().max(small.height()),
        Rgb([255, 255, 255]),
    );
    image::imageops::replace(&mut canvas, &big, 0, 0);
    image::imageops::replace(&mut canvas, &small, i64::from(big.width()), 0);
    let mut out = Cursor::new(Vec::new());
    canvas.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn compare_multi_face_image_uses_the_largest_face() {
    let tmp = TempDir::new("multi");
    let person = photo("person02/img12.jpg");
    // The small face is somebody else: picking it would not match.
    let two = tmp.write(
        "two.png",
        &side_by_side(&person, &photo("person09/img25.jpg")),
    );
    let run = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"compare", &two, &person];
        args.extend_from_slice(extra);
        let out = veriface(&tmp, &args);
        assert_eq!(
            code(&out),
            0,
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout_json(&out)
    };
    let all = run(&[&"--all-faces"]);
    assert_eq!(all["search"], "all_faces");
    assert_eq!(all["a"]["faces_found"], 2);
    let d = f64_of(&all["distance"]);
    assert!(d < 0.2, "distance {d}");
    let b = &all["a"]["face"]["box"];
    assert!(
        f64_of(&b["right"]) <= 560.0,
        "the large face is on the left: {b}"
    );
    // The largest-face search picks the same face: the same box, landmarks
    // and descriptor (the score may differ in the last bits, as the network
    // runs on a differently sized crop of the same tensor).
    let largest = run(&[]);
    assert_eq!(largest["search"], "largest_face");
    for key in ["box", "landmarks", "embedding"] {
        assert_eq!(largest["a"]["face"][key], all["a"]["face"][key], "{key}");
    }
    let (s1, s2) = (
        f64_of(&largest["a"]["face"]["score"]),
        f64_of(&all["a"]["face"]["score"]),
    );
    assert!((s1 - s2).abs() < 1e-5, "scores {s1} vs {s2}");
    assert_eq!(largest["distance"], all["distance"]);
    // The exact search proves what the screened default finds.
    let exact = run(&[&"--exact-search"]);
    assert_eq!(exact["largest_search"], "exact");
    for key in ["box", "landmarks", "embedding"] {
        assert_eq!(exact["a"]["face"][key], all["a"]["face"][key], "{key}");
    }
}

#[test]
fn exif_rotated_photo_matches_the_upright_one() {
    let tmp = TempDir::new("exif");
    let upright = photo("person02/img53.jpg");
    let rotated = tmp.write("rotated.jpg", &rotated_with_exif(&upright));
    let out = veriface(&tmp, &[&"compare", &upright, &rotated]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    assert_eq!(v["match"], true);
    let d = f64_of(&v["distance"]);
    assert!(d < 0.1, "distance {d}");
    // Sizes are those of the upright image, not the stored (rotated) pixels.
    assert_eq!(v["b"]["width"], 1100);
    assert_eq!(v["b"]["height"], 825);
}

#[test]
fn bad_arguments_follow_the_error_contract() {
    let tmp = TempDir::new("args");
    let out = veriface(&tmp, &[&"compare", &"only-one.jpg"]);
    assert_error(&out, "invalid_arguments");
    let out = veriface(&tmp, &[&"frobnicate"]);
    assert_error(&out, "invalid_arguments");
    let out = veriface(&tmp, &[&"--help"]);
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("compare"));
}
