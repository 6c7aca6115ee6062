//! A throwaway Kafka-protocol broker on a free loopback port: `tansu`
//! from crates.io (`scripts/deps/40-tansu.sh` installs it with its SQLite
//! storage engine), storing into a temp directory.
//!
//! ```no_run
//! let broker = veriface_testkit::kafka::KafkaBroker::start();
//! broker.create_topic("veriface.enrollments.v1", 1);
//! let bootstrap = broker.bootstrap(); // 127.0.0.1:PORT
//! ```

// Test-harness code: a server that cannot start must fail the test loudly,
// so `expect` with the reason is the intended behaviour here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::server::{find_program, free_port, port_open, server_dir, wait_until, ServerProcess};

/// A running broker.
#[derive(Debug)]
pub struct KafkaBroker {
    port: u16,
    program: PathBuf,
    log: PathBuf,
    _process: ServerProcess,
}

impl KafkaBroker {
    /// Starts tansu with SQLite storage in a fresh directory.
    ///
    /// # Panics
    /// When tansu is missing or does not listen within 30 s.
    pub fn start() -> Self {
        let program = find_program("tansu").unwrap_or_else(|| {
            panic!(
                "tansu is not installed: run scripts/deps/40-tansu.sh \
                 (cargo install tansu --features libsql --locked --root $VERIFACE_TOOLS_DIR)"
            )
        });
        let dir = server_dir("veriface-kafka-");
        let log = dir.join("tansu.log");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            // Relative to the working directory, which is `dir`.
            "--storage-engine",
            "sqlite://tansu.db",
        ]
        .map(String::from)
        .to_vec();
        let process =
            ServerProcess::spawn("tansu", &program, &args, "TERM", Some(&dir), Some(&log));
        wait_until("tansu", Duration::from_secs(30), Some(&log), || {
            port_open(port)
        });
        Self {
            port,
            program,
            log,
            _process: process,
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The last `lines` lines of the broker's log (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Creates a topic.
    ///
    /// # Panics
    /// When tansu's topic command fails.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.program)
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--partitions")
            .arg(partitions.to_string())
            .arg(name)
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
