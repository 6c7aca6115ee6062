//! A throwaway PostgreSQL cluster on a free loopback port
//! (`scripts/deps/30-postgres.sh` installs Debian's `postgresql`).
//!
//! PostgreSQL refuses to run as root, and CI runs as root: there the
//! cluster is created and run as the `postgres` system user (else
//! `nobody`) through `setpriv`, which changes user and then execs, so the
//! watchdog signals the server itself. Durability is off (`fsync=off`):
//! the data dies with the test anyway.
//!
//! ```no_run
//! let pg = veriface_testkit::postgres::PostgresServer::shared();
//! let url = pg.create_database(); // postgres://postgres@127.0.0.1:PORT/test_N
//! ```

// Test-harness code: a server that cannot start must fail the test loudly,
// so `expect` with the reason is the intended behaviour here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::server::{free_port, server_dir, wait_until, ServerProcess};

/// A running cluster with trust authentication for user `postgres`.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    _process: ServerProcess,
}

/// The PostgreSQL binaries: `$VERIFACE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<v>/bin`.
///
/// # Panics
/// When none is installed, naming the script that installs it.
pub fn bin_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("VERIFACE_PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: run scripts/deps/30-postgres.sh (apt-get install postgresql)")
    })
}

/// uid and gid of a system user, from `id`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(user).output().ok()?;
        out.status.success().then_some(())?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn current_uid() -> u32 {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

impl PostgresServer {
    /// Creates a cluster in a fresh directory and starts it.
    ///
    /// # Panics
    /// When PostgreSQL is missing or does not start within 60 s.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = server_dir("veriface-pg-");
        let data = dir.join("data");
        let run_as = (current_uid() == 0)
            .then(|| user_ids("postgres").or_else(|| user_ids("nobody")))
            .flatten();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the cluster dir");
        }
        let initdb = as_user(run_as, &bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let log = dir.join("postgres.log");
        let mut cmd: Vec<String> = Vec::new();
        let program = match run_as {
            Some((uid, gid)) => {
                cmd.extend(setpriv_args(uid, gid));
                cmd.push(bin.join("postgres").display().to_string());
                PathBuf::from("setpriv")
            }
            None => bin.join("postgres"),
        };
        cmd.extend(
            [
                "-D",
                &data.display().to_string(),
                "-p",
                &port.to_string(),
                "-k",
                &dir.display().to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=32MB",
            ]
            .map(String::from),
        );
        // The test process opens the log and hands the server the open
        // descriptor, so the server's user needs no rights on it.
        let process =
            ServerProcess::spawn("postgres", &program, &cmd, "INT", Some(&dir), Some(&log));
        let isready = bin.join("pg_isready");
        wait_until("postgres", Duration::from_secs(60), Some(&log), || {
            Command::new(&isready)
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                ])
                .status()
                .is_ok_and(|s| s.success())
        });
        Self {
            port,
            bin,
            run_as,
            _process: process,
        }
    }

    /// One cluster per test process, started on first use and stopped when
    /// the process exits.
    pub fn shared() -> &'static PostgresServer {
        static SHARED: OnceLock<PostgresServer> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new empty database with a unique name; returns its URL.
    ///
    /// # Panics
    /// When `createdb` fails.
    pub fn create_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                &name,
            ])
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    /// Whether the cluster runs as another user (root environments).
    pub fn runs_as_other_user(&self) -> bool {
        self.run_as.is_some()
    }
}

fn setpriv_args(uid: u32, gid: u32) -> Vec<String> {
    vec![
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".to_string(),
        "--".to_string(),
    ]
}

fn as_user(run_as: Option<(u32, u32)>, program: &Path) -> Command {
    match run_as {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args(setpriv_args(uid, gid)).arg(program);
            c
        }
        None => Command::new(program),
    }
}
