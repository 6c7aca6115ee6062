//! End-to-end test of the session pages in headless Chromium (issue 5):
//! Debian's `chromium` driven through `chromedriver` (both installed by
//! `scripts/deps/50-chromium.sh`) over the W3C WebDriver protocol, with
//! Chromium's fake camera fed from real test images.
//!
//! The phone run opens the session page at phone size once per capture,
//! each time with the camera fed a different Y4M file (the ID front, the
//! ID back, the selfie): the page resumes at the first image the server
//! does not have yet, as it does when a user reloads it. It takes the
//! picture, keeps it, and after the third confirms and waits for the
//! decision. The desktop run checks that the page shows a QR code and that
//! the QR code in the screenshot decodes to the phone URL.
//!
//! Screenshots of every step go to `$CARGO_TARGET_DIR/e2e-artifacts/`
//! (`target/e2e-artifacts/` by default).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use image::{imageops, Rgb, RgbImage};
use rxing::common::HybridBinarizer;
use rxing::qrcode::QRCodeReader;
use rxing::{BinaryBitmap, DecodeHints, Luma8LuminanceSource, Reader};
use serde_json::{json, Value};
use veriface_testkit::app::{spawn_app, TestApp};
use veriface_testkit::documents::{id_back, id_front, licence};
use veriface_testkit::fixtures::fixture_bytes;
use veriface_testkit::fixtures::photos::{PERSON02_A, PERSON02_B};

/// Where screenshots go.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `chromedriver` on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    async fn start() -> Driver {
        for tool in ["chromium", "chromedriver"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            assert!(
                found,
                "{tool} is not installed: run scripts/deps/50-chromium.sh"
            );
        }
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(res) = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await
            {
                let v: Value = res.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A headless Chromium whose fake camera plays `y4m`, at `size`.
    async fn browser(&self, y4m: Option<&Path>, size: (u32, u32)) -> Browser<'_> {
        let mut args = vec![
            "--headless=new".to_string(),
            // The tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--disable-gpu".to_string(),
            format!("--window-size={},{}", size.0, size.1),
            "--use-fake-ui-for-media-stream".to_string(),
        ];
        if let Some(file) = y4m {
            args.push("--use-fake-device-for-media-stream".to_string());
            args.push(format!(
                "--use-file-for-fake-video-capture={}",
                file.display()
            ));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let res: Value = self
            .http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res}"))
            .to_string();
        Browser {
            base: format!("{}/session/{id}", self.url),
            http: &self.http,
        }
    }
}

/// One WebDriver session.
struct Browser<'a> {
    base: String,
    http: &'a reqwest::Client,
}

impl Browser<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"]["error"].is_null(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Polls `condition` (a JS expression) until it is true.
    async fn wait_for(&self, condition: &str, what: &str, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.js(&format!("return !!({condition});")).await == true {
                return started.elapsed();
            }
            if started.elapsed() > timeout {
                let state = self
                    .js("return document.getElementById('status').textContent")
                    .await;
                panic!("timed out waiting for {what}; status line: {state}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot and returns its bytes.
    async fn screenshot(&self, name: &str) -> Vec<u8> {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let path = artifacts().join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        println!("screenshot {}", path.display());
        png
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

/// `img` centred on a black 1280x720 frame (16:9, so no camera-side crop
/// cuts it), written as a one-frame Y4M (I420, BT.601 full range, as
/// Chromium's file capture reads it).
fn write_y4m(img: &RgbImage, path: &Path) {
    let (w, h) = (1280u32, 720u32);
    let scale = (f64::from(w) / f64::from(img.width()))
        .min(f64::from(h) / f64::from(img.height()))
        .min(2.0);
    let (sw, sh) = (
        (f64::from(img.width()) * scale) as u32,
        (f64::from(img.height()) * scale) as u32,
    );
    let scaled = imageops::resize(img, sw, sh, imageops::FilterType::CatmullRom);
    let mut frame = RgbImage::from_pixel(w, h, Rgb([0, 0, 0]));
    imageops::overlay(
        &mut frame,
        &scaled,
        i64::from((w - sw) / 2),
        i64::from((h - sh) / 2),
    );
    let yuv = |p: &Rgb<u8>| {
        let [r, g, b] = p.0.map(f64::from);
        (
            0.299 * r + 0.587 * g + 0.114 * b,
            128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
            128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
        )
    };
    let clamp = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    let mut out = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    out.extend(frame.pixels().map(|p| clamp(yuv(p).0)));
    let (mut us, mut vs) = (Vec::new(), Vec::new());
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let (mut u, mut v) = (0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (_, pu, pv) = yuv(frame.get_pixel(x + dx, y + dy));
                u += pu / 4.0;
                v += pv / 4.0;
            }
            us.push(clamp(u));
            vs.push(clamp(v));
        }
    }
    out.extend(us);
    out.extend(vs);
    std::fs::write(path, out).unwrap();
}

async fn start_session(app: &TestApp) -> (String, String) {
    let v: Value = app
        .client
        .post(app.url("/api/verification/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        v["session_id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_captures_id_front_back_and_selfie_and_sees_the_decision() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (id, url) = start_session(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let selfie = image::load_from_memory(&fixture_bytes(PERSON02_B))
        .unwrap()
        .to_rgb8();
    let captures = [
        ("id_front", id_front(&fixture_bytes(PERSON02_A), true)),
        ("id_back", id_back(&licence("01312040"))),
        ("selfie", selfie),
    ];
    let phone = (390, 844);
    let total = Instant::now();
    let count = captures.len();
    for (i, (side, img)) in captures.into_iter().enumerate() {
        let y4m = dir.path().join(format!("{side}.y4m"));
        write_y4m(&img, &y4m);
        let browser = driver.browser(Some(&y4m), phone).await;
        browser.goto(&url).await;
        browser
            .wait_for(
                &format!("document.getElementById('capture').dataset.side === '{side}' && !document.getElementById('capture').hidden"),
                &format!("the {side} step"),
                Duration::from_secs(20),
            )
            .await;
        let ready = browser
            .wait_for(
                "document.getElementById('video').videoWidth > 0",
                "the camera",
                Duration::from_secs(20),
            )
            .await;
        browser
            .screenshot(&format!("phone-{}-{side}-camera", i + 1))
            .await;
        browser.js("document.getElementById('shoot').click()").await;
        browser
            .wait_for(
                "!document.getElementById('use').hidden",
                "the preview",
                Duration::from_secs(10),
            )
            .await;
        browser
            .screenshot(&format!("phone-{}-{side}-preview", i + 1))
            .await;
        browser.js("document.getElementById('use').click()").await;
        let next = if i + 1 == count {
            "!document.getElementById('review').hidden".to_string()
        } else {
            format!(
                "document.getElementById('capture').dataset.side === '{}'",
                ["id_front", "id_back", "selfie"][i + 1]
            )
        };
        let uploaded = browser
            .wait_for(&next, "the upload", Duration::from_secs(30))
            .await;
        println!(
            "{side}: camera ready in {} ms, upload in {} ms",
            ready.as_millis(),
            uploaded.as_millis()
        );
        if i + 1 == count {
            browser.screenshot("phone-4-review").await;
            browser
                .js("document.getElementById('confirm').click()")
                .await;
            let decided = browser
                .wait_for(
                    "['verified','rejected','needs_review'].includes(document.getElementById('status').dataset.status)",
                    "the decision",
                    Duration::from_secs(120),
                )
                .await;
            browser.screenshot("phone-5-result").await;
            let shown = browser
                .js("return document.getElementById('status').dataset.status")
                .await;
            let text = browser
                .js("return document.getElementById('status').textContent")
                .await;
            println!(
                "decision shown after {} ms: {shown} ({text}); whole phone flow {} s",
                decided.as_millis(),
                total.elapsed().as_secs()
            );
            let api: Value = app
                .get(&format!("/api/verification/check_status/{id}"))
                .await
                .json()
                .await
                .unwrap();
            println!("check_status: {api}");
            assert_eq!(shown, api["status"], "the page shows the server's status");
            assert_eq!(
                api["status"], "verified",
                "the camera frames of the same person and a valid licence verify: {api}"
            );
        }
        browser.quit().await;
    }
}

fn decode_qr(png: &[u8]) -> Option<String> {
    let gray = image::load_from_memory(png).ok()?.to_luma8();
    let source =
        Luma8LuminanceSource::new(gray.as_raw().clone(), gray.width(), gray.height()).ok()?;
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    let hints = DecodeHints {
        TryHarder: Some(true),
        ..DecodeHints::default()
    };
    QRCodeReader
        .decode_with_hints(&mut bitmap, &hints)
        .ok()
        .map(|r| r.getText().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_shows_a_qr_code_that_decodes_to_the_phone_url() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (id, url) = start_session(&app).await;
    let browser = driver.browser(None, (1280, 900)).await;
    browser.goto(&url).await;
    browser
        .wait_for(
            "!document.getElementById('desktop').hidden && document.getElementById('status').dataset.status === 'created'",
            "the QR code",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        browser
            .js("return document.getElementById('capture').hidden")
            .await,
        true,
        "a desktop does not open the camera"
    );
    let png = browser.screenshot("desktop-1-qr").await;
    let decoded = decode_qr(&png).expect("a QR code in the screenshot");
    assert_eq!(decoded, url);
    assert!(decoded.ends_with(&format!("/verify/{id}")));

    // The desktop page follows the session live: a cancel shows up.
    app.client
        .delete(app.url(&format!("/api/verification/cancel/{id}")))
        .send()
        .await
        .unwrap();
    browser
        .wait_for(
            "document.getElementById('status').dataset.status === 'cancelled'",
            "the cancelled status",
            Duration::from_secs(10),
        )
        .await;
    browser.screenshot("desktop-2-cancelled").await;
    browser.quit().await;
}
