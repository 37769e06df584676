use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::{BackendError, DatabaseExporter, DatabaseKind, DatabaseTarget};

/// Exports tenant databases with each engine's own tools:
///
/// - **PostgreSQL**: `pg_dump --format=custom` (restore with `pg_restore`), run with
///   the libpq environment so the password never appears on a command line. Its
///   major version must be at least the server's.
/// - **SQLite**: `VACUUM INTO`, SQLite's consistent copy of a database in use (feature
///   `sqlite`); the export is itself a SQLite database.
///
/// ```no_run
/// use tenancy_core::DumpExporter;
///
/// let exporter = DumpExporter::new().with_pg_dump("/usr/lib/postgresql/17/bin/pg_dump");
/// ```
#[derive(Debug, Clone)]
pub struct DumpExporter {
    pg_dump: PathBuf,
}

impl Default for DumpExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl DumpExporter {
    /// Runs `pg_dump` from the `PATH`.
    pub fn new() -> Self {
        Self {
            pg_dump: PathBuf::from("pg_dump"),
        }
    }

    /// Runs this `pg_dump` instead.
    pub fn with_pg_dump(mut self, program: impl Into<PathBuf>) -> Self {
        self.pg_dump = program.into();
        self
    }

    async fn pg_dump(&self, database: &DatabaseTarget, into: &Path) -> Result<(), BackendError> {
        let output = database
            .url
            .client_command(&self.pg_dump)
            .arg("--format=custom")
            .arg("--file")
            .arg(into)
            .output()
            .await
            .map_err(|error| {
                let hint = if error.kind() == std::io::ErrorKind::NotFound {
                    "install PostgreSQL's client programs (at least the server's major version) or give its path with DumpExporter::with_pg_dump"
                } else {
                    "check that it can be run"
                };
                BackendError::permanent(format!(
                    "could not run {}: {error}; {hint}",
                    self.pg_dump.display()
                ))
            })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(BackendError::transient(format!(
            "pg_dump of {} failed ({}): {}",
            database.url,
            output.status,
            stderr.trim()
        )))
    }

    #[cfg(feature = "sqlite")]
    async fn vacuum_into(database: &DatabaseTarget, into: &Path) -> Result<(), BackendError> {
        use sqlx::sqlite::SqliteConnectOptions;
        use sqlx::{ConnectOptions, Connection};
        use std::str::FromStr;

        let target = into.to_str().ok_or_else(|| {
            BackendError::permanent(format!(
                "export path {} is not valid UTF-8; choose another staging folder",
                into.display()
            ))
        })?;
        let mut connection = SqliteConnectOptions::from_str(database.url.expose())
            .map_err(BackendError::permanent)?
            .connect()
            .await
            .map_err(BackendError::transient)?;
        let result = sqlx::query("VACUUM INTO ?1")
            .bind(target)
            .execute(&mut connection)
            .await;
        let _ = connection.close().await;
        result.map(|_| ()).map_err(BackendError::transient)
    }
}

#[async_trait]
impl DatabaseExporter for DumpExporter {
    async fn export(&self, database: &DatabaseTarget, into: &Path) -> Result<(), BackendError> {
        match database.kind() {
            DatabaseKind::Postgres => self.pg_dump(database, into).await,
            #[cfg(feature = "sqlite")]
            DatabaseKind::Sqlite => Self::vacuum_into(database, into).await,
            #[allow(unreachable_patterns)]
            other => Err(BackendError::permanent(format!(
                "{other} databases need the `{other}` feature of tenancy-core to be exported"
            ))),
        }
    }
}
