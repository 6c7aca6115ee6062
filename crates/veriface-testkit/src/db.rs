//! A fresh identity-store database per test, on a SQLite file or on the
//! shared throwaway PostgreSQL cluster, and [`db_contract!`](crate::db_contract)
//! to run one suite of checks on both.

// Test-harness code: a database that cannot be created must fail the test
// loudly.
#![allow(clippy::unwrap_used)]

use veriface_store::db::{Database, DbConfig};

use crate::postgres::PostgresServer;

/// A connected, migrated database and what keeps it alive.
#[derive(Debug)]
pub struct TestDb {
    /// The store under test.
    pub db: Database,
    _dir: Option<tempfile::TempDir>,
}

/// A new SQLite file in a temporary directory (its parent directory does
/// not exist yet, as on a fresh data directory).
///
/// # Panics
/// When it cannot be created or migrated.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&DbConfig::sqlite_file(&dir.path().join("data/veriface.db")))
        .await
        .unwrap();
    TestDb {
        db,
        _dir: Some(dir),
    }
}

/// A new database on the shared PostgreSQL cluster.
///
/// # Panics
/// When the cluster cannot start or the database cannot be created.
pub async fn postgres() -> TestDb {
    let url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    let db = Database::connect(&DbConfig::from_url(&url).unwrap())
        .await
        .unwrap();
    TestDb { db, _dir: None }
}

/// Runs each `async fn check(db: &Database)` of the calling module as two
/// tests, `on_sqlite::check` and `on_postgres::check`, each on a fresh
/// database.
#[macro_export]
macro_rules! db_contract {
    ($($check:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let t = $crate::db::sqlite().await;
                    super::$check(&t.db).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let t = $crate::db::postgres().await;
                    super::$check(&t.db).await;
                }
            )*
        }
    };
}
