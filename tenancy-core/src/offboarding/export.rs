use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{BackendError, DatabaseKind, DatabaseTarget};

/// The format of a database export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExportFormat {
    /// `pg_dump --format=custom`: restore it with `pg_restore --dbname=… FILE`.
    PgDumpCustom,
    /// A SQLite database file (made with `VACUUM INTO`): open it with `sqlite3 FILE`.
    Sqlite,
}

impl ExportFormat {
    /// The format an export of a `kind` database is made in.
    pub fn of(kind: DatabaseKind) -> Self {
        match kind {
            DatabaseKind::Postgres => Self::PgDumpCustom,
            DatabaseKind::Sqlite => Self::Sqlite,
        }
    }

    /// The file extension of an export in this format (`dump`, `sqlite`).
    pub fn extension(self) -> &'static str {
        match self {
            Self::PgDumpCustom => "dump",
            Self::Sqlite => "sqlite",
        }
    }
}

/// An export of a tenant's database, as recorded on the tenant: once recorded, it is
/// never made again, and after the database is deleted it is what remains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatabaseExport {
    /// Where the export destination keeps it (a path, a URL: the destination's word).
    pub location: String,
    /// Its format.
    pub format: ExportFormat,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
}

impl DatabaseExport {
    /// The record of `stored`, made in `format` at `exported_at`.
    pub fn new(stored: StoredExport, format: ExportFormat, exported_at: OffsetDateTime) -> Self {
        Self {
            location: stored.location,
            format,
            size_bytes: stored.size_bytes,
            sha256: stored.sha256,
            exported_at,
        }
    }
}

/// An export as an [`ExportDestination`] holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredExport {
    /// Where it is.
    pub location: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// When it was stored, if the destination knows (a file's modification time):
    /// an export found again after a crash is recorded as made then, not when found.
    pub stored_at: Option<OffsetDateTime>,
}

impl StoredExport {
    /// An export at `location` of `size_bytes` bytes with this SHA-256 (hex).
    pub fn new(location: impl Into<String>, size_bytes: u64, sha256: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            size_bytes,
            sha256: sha256.into(),
            stored_at: None,
        }
    }

    /// The same export, known to have been stored at `at`.
    pub fn with_stored_at(mut self, at: OffsetDateTime) -> Self {
        self.stored_at = Some(at);
        self
    }
}

/// Makes a full export of a tenant's database into a local file; `DumpExporter`
/// (`pg_dump`, SQLite's `VACUUM INTO`) implements it.
#[async_trait]
pub trait DatabaseExporter: Send + Sync {
    /// Writes an export of `database` in [`ExportFormat::of`] its kind to `into`, a
    /// local path where no file exists yet.
    async fn export(&self, database: &DatabaseTarget, into: &Path) -> Result<(), BackendError>;
}

/// Where tenants' exports are kept, provided by the host (a folder, a bucket, …);
/// [`DirectoryExportDestination`](crate::DirectoryExportDestination) keeps them in a folder.
///
/// Names are chosen by the pipeline and stable across its resumed runs, so an export
/// stored just before a crash is found again by [`find`](Self::find) instead of being
/// made twice.
#[async_trait]
pub trait ExportDestination: Send + Sync {
    /// Stores the local file `file` (whose SHA-256 is `sha256`) as `name`, replacing
    /// an earlier one of that name, and says where it is now. Only a complete copy
    /// may ever be visible under `name`.
    async fn store(
        &self,
        name: &str,
        file: &Path,
        sha256: &str,
    ) -> Result<StoredExport, BackendError>;

    /// The export stored as `name`, if there is one complete with its checksum
    /// (anything less counts as not stored, and is replaced by the next store).
    async fn find(&self, name: &str) -> Result<Option<StoredExport>, BackendError>;
}
