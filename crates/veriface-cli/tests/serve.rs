//! `veriface serve`: the real binary on embedded defaults, stopped by a
//! real SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn models_dir() -> PathBuf {
    std::env::var_os("VERIFACE_MODELS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        PathBuf::from,
    )
}

/// One HTTP/1.1 GET over a plain socket; returns the whole response.
fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_answers_on_embedded_defaults_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_veriface"))
        .args(["--models-dir"])
        .arg(models_dir())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data.path())
        .env_remove("PORT")
        .env_remove("VERIFACE_BIND")
        .env_remove("bucketName")
        .env_remove("VERIFACE_API_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening: serde_json::Value = lines
        .by_ref()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
        .find(|v| v["fields"]["message"] == "veriface is listening")
        .expect("a startup log line");
    let addr = listening["fields"]["addr"].as_str().unwrap().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_eq!(listening["fields"]["store"], "local");

    let index = get(&addr, "/");
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(index.contains(r#"{"success":true,"message":"Server is working"}"#));
    let ready = get(&addr, "/readyz");
    assert!(ready.contains(r#""status":"ready""#), "{ready}");

    // The shell's builtin kill: no procps needed on a minimal machine.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("draining in-flight requests")),
        "{rest:?}"
    );
    assert!(child.wait().unwrap().success());
    assert!(data.path().join("blobs").is_dir());
}

#[test]
fn a_bad_setting_is_an_invalid_configuration_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_veriface"))
        .args(["serve"])
        .env("PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value =
        serde_json::from_slice(out.stderr.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(err["error"]["code"], "invalid_configuration");
    assert!(err["error"]["message"].as_str().unwrap().contains("PORT"));
}
