//! The schema migrations, embedded in the binary (`migrations/sqlite` and
//! `migrations/postgres` in this crate) and applied on connect with sqlx's
//! migrator, which records them in `_sqlx_migrations` and refuses a changed
//! migration by checksum.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use veriface_core::{Error, Result};

use super::{Backend, Database};

/// `(version, description, sql)` per backend, oldest first. Add new files
/// at the end with the next version; never edit an applied one.
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "identity",
        include_str!("../../migrations/sqlite/0001_identity.sql"),
    ),
    (
        2,
        "sessions",
        include_str!("../../migrations/sqlite/0002_sessions.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "identity",
        include_str!("../../migrations/postgres/0001_identity.sql"),
    ),
    (
        2,
        "sessions",
        include_str!("../../migrations/postgres/0002_sessions.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Vec<Migration>, BoxDynError>> + Send + 's>>
    {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Applies the backend's pending migrations.
pub(super) async fn run(db: &Database) -> Result<()> {
    let source = match db.backend {
        Backend::Sqlite => Embedded(SQLITE),
        Backend::Postgres => Embedded(POSTGRES),
    };
    let migrator = Migrator::new(source)
        .await
        .map_err(|e| Error::Internal(Box::new(e)))?;
    migrator.run(&db.pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => super::db_error(e),
        other => Error::Internal(Box::new(other)),
    })
}
