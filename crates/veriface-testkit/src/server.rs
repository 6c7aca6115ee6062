//! Real servers started on loopback for tests, that never outlive the test
//! process.
//!
//! Each server runs under a tiny `sh` watchdog whose stdin is a pipe from
//! the test process. When the pipe closes (the guard is dropped, or the test
//! process exits for any reason, SIGKILL included) the watchdog stops the
//! server with its graceful signal, escalates to SIGKILL after 10 s, and
//! removes the server's throwaway directory. So a server shared by every
//! test of a binary (in a `static`) is still cleaned up.

// Test-harness code: a server that cannot start must fail the test loudly,
// so `expect` with the reason is the intended behaviour here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const WATCHDOG: &str = r#"
"$@" </dev/null &
pid=$!
read -r _ || true
kill -s "$STOP_SIGNAL" "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then kill -s KILL "$pid" 2>/dev/null; fi
  sleep 0.1
done
if [ -n "$CLEANUP_DIR" ]; then rm -rf "$CLEANUP_DIR"; fi
"#;

/// A running server process; stopping it (or dropping this) stops the
/// server and removes its directory.
#[derive(Debug)]
pub struct ServerProcess {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ServerProcess {
    /// Starts `program args...` under the watchdog. `stop_signal` is the
    /// server's graceful-shutdown signal (`TERM`, `INT`); `cleanup_dir`, if
    /// any, is deleted once it has stopped and is also the server's working
    /// directory. Its output goes to `log_file` when given (else is
    /// discarded).
    ///
    /// # Panics
    /// When `sh` cannot be started (a test-environment failure).
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        stop_signal: &str,
        cleanup_dir: Option<&Path>,
        log_file: Option<&Path>,
    ) -> Self {
        let (out, err) = match log_file.and_then(|p| std::fs::File::create(p).ok()) {
            Some(f) => match f.try_clone() {
                Ok(f2) => (Stdio::from(f), Stdio::from(f2)),
                Err(_) => (Stdio::null(), Stdio::null()),
            },
            None => (Stdio::null(), Stdio::null()),
        };
        let mut cmd = Command::new("sh");
        if let Some(dir) = cleanup_dir {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .arg("-c")
            .arg(WATCHDOG)
            .arg(name)
            .arg(program)
            .args(args)
            .env("STOP_SIGNAL", stop_signal)
            .env(
                "CLEANUP_DIR",
                cleanup_dir
                    .map(|d| d.as_os_str().to_owned())
                    .unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} under sh: {e}"));
        let stdin = child.stdin.take();
        Self { name, child, stdin }
    }

    /// Whether the watchdog (and so, normally, the server) still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the server and waits until it has exited and its directory is
    /// gone.
    pub fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let _ = self.child.wait();
    }

    /// The server's name, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    l.local_addr().expect("local address").port()
}

/// Polls `ready` every 50 ms until it is true or `timeout` passes.
///
/// # Panics
/// On timeout, naming `what` and `log`'s tail when given.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    log: Option<&Path>,
    mut ready: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = log
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|s| {
            s.lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    panic!("{what} not ready after {timeout:?}\n{tail}");
}

/// Whether something accepts TCP connections on `port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Sends `request` and reads up to 64 bytes of reply (for PING-style
/// readiness probes).
pub fn tcp_exchange(port: u16, request: &[u8]) -> Option<Vec<u8>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(request).ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// Finds `name` in `$VERIFACE_TOOLS_DIR/bin`, then on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let tools = std::env::var_os("VERIFACE_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|c| c.join("veriface/tools"))
        });
    let mut dirs: Vec<PathBuf> = tools.into_iter().map(|t| t.join("bin")).collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A fresh directory for a server, owned by the test process; the
/// watchdog deletes it.
///
/// # Panics
/// When the temp directory cannot be created.
pub fn server_dir(prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temp dir for a test server")
        .keep()
}
