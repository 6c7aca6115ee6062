//! The identity and session stores in SQL: one implementation of
//! [`veriface_core::session::SessionRepo`] (verification sessions) and of
//! [`veriface_core::identity::IdentityRepo`] and
//! [`veriface_core::identity::JobQueue`] over sqlx's `Any` driver, for a
//! SQLite file (the default, in the data directory) or PostgreSQL (when
//! `DATABASE_URL` points at one).
//!
//! The SQL is written once in the subset both databases speak (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING`); the few differences live in
//! [`sqlite`] and [`postgres`]. Queries are checked at run time by the
//! contract tests, which run the same suite on both backends, so building
//! needs no database. Migrations are embedded (`migrations/{sqlite,postgres}`)
//! and run on connect.

mod identity;
mod jobs;
mod migrations;
pub mod postgres;
mod sessions;
pub mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use veriface_core::identity::{Cache, CachedRepo, NoCache};
use veriface_core::{Error, Result};

use crate::cache::{RedisCache, RedisConfig};

/// Which SQL database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where the identity store lives.
#[derive(Clone, PartialEq, Eq)]
pub struct DbConfig {
    url: String,
    backend: Backend,
    /// Pool size.
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection before the store
    /// counts as unavailable.
    pub acquire_timeout: Duration,
}

// The URL may carry a password: never print it.
impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("backend", &self.backend)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// The SQLite file name inside the data directory.
pub const SQLITE_FILE: &str = "veriface.db";

impl DbConfig {
    /// `DATABASE_URL` when set (a `postgres://` or `sqlite:` URL), else
    /// the SQLite file [`SQLITE_FILE`] in `data_dir`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`invalid_database_url`) for another scheme.
    pub fn from_env(data_dir: &Path) -> Result<Self> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Self::from_url(url.trim()),
            _ => Ok(Self::sqlite_file(&data_dir.join(SQLITE_FILE))),
        }
    }

    /// A database URL: `postgres://...`, `postgresql://...` or `sqlite:...`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`invalid_database_url`) for another scheme.
    pub fn from_url(url: &str) -> Result<Self> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::InvalidInput {
                code: "invalid_database_url",
                message: "DATABASE_URL must start with postgres://, postgresql:// or sqlite:"
                    .to_string(),
            });
        };
        Ok(Self {
            url: url.to_string(),
            backend,
            max_connections: default_pool_size(backend),
            acquire_timeout: Duration::from_secs(5),
        })
    }

    /// A SQLite file, created (with its directory) when missing.
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            url: sqlite::file_url(path),
            backend: Backend::Sqlite,
            max_connections: default_pool_size(Backend::Sqlite),
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// For SQLite, the file path (to create its directory).
    fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite)
            .then(|| sqlite::path_of_url(&self.url))
            .flatten()
    }
}

fn default_pool_size(backend: Backend) -> u32 {
    match backend {
        // One writer at a time anyway; a few readers in WAL mode.
        Backend::Sqlite => 4,
        Backend::Postgres => 10,
    }
}

/// A connected, migrated identity store.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl Database {
    /// Connects and applies the embedded migrations.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached or
    /// migrated.
    pub async fn connect(config: &DbConfig) -> Result<Self> {
        sqlx::any::install_default_drivers();
        if let Some(path) = config.sqlite_path() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| unavailable(Box::new(e)))?;
            }
        }
        let backend = config.backend;
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlite::configure_connection(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&config.url)
            .await
            .map_err(db_error)?;
        let db = Self { pool, backend };
        migrations::run(&db).await?;
        Ok(db)
    }

    /// Which database.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (for tests and tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The identity store as the binaries wire it: the database, the cache and
/// the cache-aside repository in front of both.
#[derive(Debug, Clone)]
pub struct IdentityStore {
    /// The database (also the [`veriface_core::identity::JobQueue`]).
    pub db: Arc<Database>,
    /// Redis, or [`NoCache`].
    pub cache: Arc<dyn Cache>,
    /// What the use-cases should use as their `IdentityRepo`.
    pub repo: Arc<CachedRepo>,
}

impl IdentityStore {
    /// Opens the database named by `DATABASE_URL` (else the SQLite file in
    /// `data_dir`) and, when `REDIS_URL` is set, the Redis cache (which may
    /// be down: the store then serves from the database).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed URL, [`Error::Unavailable`]
    /// when the database cannot be reached or migrated.
    pub async fn open_from_env(data_dir: &Path) -> Result<Self> {
        Self::open(&DbConfig::from_env(data_dir)?, RedisConfig::from_env()).await
    }

    /// Opens the database `db` and, when given, the Redis cache (which may
    /// be down: the store then serves from the database).
    ///
    /// # Errors
    /// As [`IdentityStore::open_from_env`].
    pub async fn open(db: &DbConfig, redis: Option<RedisConfig>) -> Result<Self> {
        let db = Arc::new(Database::connect(db).await?);
        let cache: Arc<dyn Cache> = match redis {
            Some(cfg) => Arc::new(RedisCache::connect(cfg).await?),
            None => Arc::new(NoCache),
        };
        let repo = Arc::new(CachedRepo::new(db.clone(), cache.clone()));
        Ok(Self { db, cache, repo })
    }
}

/// Maps a sqlx error: connection-level failures are the database being
/// unavailable (retry), anything else is ours.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Configuration(_) => unavailable(Box::new(e)),
        sqlx::Error::Database(ref d) if is_transient(d.code().as_deref()) => {
            unavailable(Box::new(e))
        }
        other => Error::Internal(Box::new(other)),
    }
}

/// SQLSTATE classes that mean "try again": connection exceptions (08),
/// serialization failures and deadlocks (40), insufficient resources (53),
/// operator intervention such as a shutdown (57); SQLite's BUSY (5) and
/// LOCKED (6).
fn is_transient(code: Option<&str>) -> bool {
    match code {
        Some(c) => {
            ["08", "40", "53", "57"].iter().any(|p| c.starts_with(p)) || c == "5" || c == "6"
        }
        None => false,
    }
}

fn unavailable(source: Box<dyn std::error::Error + Send + Sync>) -> Error {
    Error::Unavailable {
        what: "database",
        source,
    }
}

/// Reads a column, mapping decode failures to [`Error::Internal`].
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name).map_err(db_error)
}
