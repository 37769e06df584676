//! The `_sqlx_migrations` table: sqlx's exact DDL and the rows we read from it.

/// sqlx 0.8's DDL for PostgreSQL, verbatim.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
"#;

/// sqlx 0.8's DDL for SQLite, verbatim.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
"#;

/// Records an applied migration on SQLite (PostgreSQL inlines its values).
#[cfg(feature = "sqlite")]
pub(crate) const INSERT_ROW: &str = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, $2, TRUE, $3, $4)";

/// Forgets a reverted migration on SQLite (PostgreSQL inlines its values).
#[cfg(feature = "sqlite")]
pub(crate) const DELETE_ROW: &str = "DELETE FROM _sqlx_migrations WHERE version = $1";

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryRow {
    pub(crate) version: i64,
    pub(crate) success: bool,
    pub(crate) checksum: Vec<u8>,
}

/// The history table as read in one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HistorySnapshot {
    /// The database's name, when the query could return it.
    pub(crate) database: Option<String>,
    /// Whether `_sqlx_migrations` exists.
    pub(crate) table_exists: bool,
    /// The rows by ascending version (empty when the table does not exist yet).
    pub(crate) rows: Vec<HistoryRow>,
}
