//! A throwaway Redis on a free loopback port (`scripts/deps/31-redis.sh`
//! installs Debian's `redis-server`), without persistence. It can be
//! stopped and started again on the same port, to test how the service
//! behaves while Redis is down.
//!
//! ```no_run
//! let mut redis = veriface_testkit::redis::RedisServer::start();
//! let url = redis.url(); // redis://127.0.0.1:PORT/
//! redis.stop();
//! redis.restart();
//! ```

// Test-harness code: a server that cannot start must fail the test loudly,
// so `expect` with the reason is the intended behaviour here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use crate::server::{find_program, free_port, server_dir, tcp_exchange, wait_until, ServerProcess};

/// A running (or stopped) Redis server.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    process: Option<ServerProcess>,
}

impl RedisServer {
    /// Starts Redis on a free port.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not answer PING within 20 s.
    pub fn start() -> Self {
        let mut s = Self {
            port: free_port(),
            process: None,
        };
        s.restart();
        s
    }

    /// The URL (database 0).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGTERM, waits for exit). Its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    /// Starts a fresh, empty server on the same port (stopping the current
    /// one first).
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn restart(&mut self) {
        self.stop();
        let program: PathBuf = find_program("redis-server").unwrap_or_else(|| {
            panic!("redis-server is not installed: run scripts/deps/31-redis.sh (apt-get install redis-server)")
        });
        let dir = server_dir("veriface-redis-");
        let log = dir.join("redis.log");
        let args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        .map(String::from)
        .to_vec();
        self.process = Some(ServerProcess::spawn(
            "redis",
            &program,
            &args,
            "TERM",
            Some(&dir),
            Some(&log),
        ));
        let port = self.port;
        wait_until("redis", Duration::from_secs(20), Some(&log), || {
            tcp_exchange(port, b"PING\r\n").is_some_and(|r| r.starts_with(b"+PONG"))
        });
    }
}
