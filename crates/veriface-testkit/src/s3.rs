//! A real S3-protocol server for tests: `s3s-fs` (crates.io, installed by
//! `scripts/deps/10-s3s-fs.sh`) on a free loopback port, storing objects in
//! a temporary directory, killed when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use veriface_store::blob::{S3Config, Secret};

/// A running `s3s-fs` with one empty bucket.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    root: TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created for the test.
    pub bucket: String,
    /// Access key the server accepts.
    pub access_key: String,
    /// Secret key the server accepts.
    pub secret_key: String,
}

/// Finds the `s3s-fs` binary: on `PATH`, or in `$VERIFACE_TOOLS_DIR/bin`,
/// or in the default tools directory.
///
/// # Panics
/// When it is not installed, naming the script that installs it.
pub fn s3s_fs_binary() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("s3s-fs")));
    }
    if let Some(tools) = std::env::var_os("VERIFACE_TOOLS_DIR") {
        candidates.push(PathBuf::from(tools).join("bin/s3s-fs"));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(cache) = cache {
        candidates.push(cache.join("veriface/tools/bin/s3s-fs"));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("s3s-fs is not installed: run scripts/deps/10-s3s-fs.sh (or scripts/test.sh)")
        })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl S3Server {
    /// Starts the server and creates the bucket.
    ///
    /// # Panics
    /// When `s3s-fs` is missing or does not start within 20 s.
    pub fn start() -> Self {
        let binary = s3s_fs_binary();
        // A free port can be taken by someone else between the probe and
        // the server's bind; try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let root = tempfile::tempdir()
                .unwrap_or_else(|e| panic!("a temporary directory for s3s-fs: {e}"));
            let bucket = "veriface-test".to_string();
            std::fs::create_dir(root.path().join(&bucket))
                .unwrap_or_else(|e| panic!("creating the bucket directory: {e}"));
            let port = free_port().unwrap_or_else(|e| panic!("a free port: {e}"));
            let (access_key, secret_key) = (
                "veriface-test-key".to_string(),
                "veriface-test-secret".to_string(),
            );
            let mut child = Command::new(&binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(root.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_error = format!("s3s-fs exited with {status}");
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Self {
                        child,
                        root,
                        endpoint: format!("http://{addr}"),
                        bucket,
                        access_key,
                        secret_key,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = "s3s-fs did not listen within 20 s".to_string();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start s3s-fs: {last_error}");
    }

    /// Client settings for this server and bucket.
    pub fn config(&self) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            region: "us-east-1".to_string(),
            endpoint: Some(self.endpoint.clone()),
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(Secret::new(self.secret_key.clone())),
        }
    }

    /// The directory holding the bucket's objects (to check what the
    /// server really stored).
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(&self.bucket)
    }

    /// The server's data root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Stops the server (to test an unreachable store); idempotent.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
