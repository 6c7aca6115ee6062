//! The real application on a free port, for API tests.
//!
//! Every app gets its own temporary data directory; all apps in a test
//! binary share one loaded [`FaceEngine`] (loading costs about a second and
//! 100 MB). `TEST_LOG=1` sends the server's logs to stdout.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tempfile::TempDir;
use veriface_server::config::LogFormat;
use veriface_server::{telemetry, Application, Settings, ShutdownHandle};
use veriface_vision::engine::FaceEngine;

use crate::fixtures::models_dir;

/// The engine shared by every app of this process.
///
/// # Panics
/// When the models are missing or corrupt.
pub fn engine() -> Arc<FaceEngine> {
    static ENGINE: OnceLock<Arc<FaceEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let dir = models_dir();
            Arc::new(
                FaceEngine::load(&dir)
                    .unwrap_or_else(|e| panic!("loading models from {}: {e}", dir.display())),
            )
        })
        .clone()
}

fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            telemetry::init(telemetry::subscriber(
                LogFormat::Pretty,
                "info",
                std::io::stdout,
            ));
        }
    });
}

/// A running app.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The bound port.
    pub port: u16,
    /// A client without timeouts or redirects.
    pub client: reqwest::Client,
    /// The app's data directory (local uploads live under `blobs/`).
    pub data_dir: TempDir,
    /// Stops the app gracefully.
    pub shutdown: ShutdownHandle,
    /// The serving task; resolves when the app has stopped.
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Settings for a test app: port 0 on loopback, a fresh data directory,
/// the workspace's models, two inference workers.
pub fn test_settings(data_dir: &Path) -> Settings {
    Settings {
        port: 0,
        data_dir: data_dir.to_path_buf(),
        models_dir: models_dir(),
        workers: 2,
        queue_capacity: 8,
        ..Settings::default()
    }
}

/// Starts the app with [`test_settings`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with [`test_settings`] changed by `configure`.
///
/// # Panics
/// When the app does not start.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let data_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary data dir: {e}"));
    let mut settings = test_settings(data_dir.path());
    configure(&mut settings);
    let app = Application::build_with_engine(settings, engine())
        .await
        .unwrap_or_else(|e| panic!("building the app: {e:#}"));
    let port = app.port();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("building the HTTP client: {e}")),
        data_dir,
        shutdown,
        server,
    }
}

impl TestApp {
    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path`, panicking on a transport error (the status is the
    /// caller's to check).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Where the local blob store keeps objects.
    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.path().join("blobs")
    }

    /// Every regular file under the data directory, relative to it,
    /// sorted, except the identity store's SQLite database (`veriface.db`
    /// and its journal files, which every app has): what a test checks to
    /// see that no upload or temporary file was left behind.
    pub fn files(&self) -> Vec<PathBuf> {
        files_under(self.data_dir.path())
            .into_iter()
            .filter(|p| {
                !(p.parent() == Some(Path::new(""))
                    && p.to_string_lossy().starts_with("veriface.db"))
            })
            .collect()
    }
}

/// Every regular file under `root`, relative to it, sorted.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
