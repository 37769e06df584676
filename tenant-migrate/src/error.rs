use std::time::Duration;

/// Why a migration run, revert or status check failed.
///
/// Every variant says what to do next; [`MigrateError::is_retryable`] tells a
/// rollout whether trying the same tenant again later may succeed, and
/// [`MigrateError::is_locked`] whether another migrator was busy with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database URL cannot be used by this build (bad options, an engine whose feature is off).
    #[error("cannot use database {database}: {reason}")]
    InvalidTarget {
        /// The database, password redacted.
        database: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server did not answer (network, DNS, TLS, connect timeout).
    #[error("cannot reach tenant database {database}: {message}; check that the server is up and the host and port in the URL, then retry")]
    Unreachable {
        /// The database, password redacted.
        database: String,
        /// What the driver reported.
        message: String,
    },
    /// The server refused the user or password.
    #[error("tenant database {database} refused the credentials ({message}); fix the user or password in the database URL")]
    Authentication {
        /// The database, password redacted.
        database: String,
        /// What the server reported.
        message: String,
    },
    /// The server is up but the database does not exist.
    #[error("tenant database {database} does not exist; provision it before migrating")]
    DatabaseMissing {
        /// The database, password redacted.
        database: String,
    },
    /// Another migrator held the database's advisory lock for the whole wait
    /// (PostgreSQL), or held the write lock or did the same step first (SQLite).
    #[error("another migrator holds the migration lock of database {database} (waited {waited:?}); retry later")]
    Locked {
        /// The database name.
        database: String,
        /// How long this migrator waited.
        waited: Duration,
    },
    /// The history has a row with `success = false`: an earlier run stopped half way.
    #[error("migration {version} is marked as failed (dirty) in _sqlx_migrations; repair the schema by hand, delete that row and rerun")]
    Dirty {
        /// The dirty version.
        version: i64,
    },
    /// A migration was edited after it was applied.
    #[error("migration {version} ({file}) was applied with a different checksum; restore the file as it was applied and put the change in a new migration")]
    ChecksumMismatch {
        /// The version whose checksum differs.
        version: i64,
        /// The migration's file name (or ad-hoc name).
        file: String,
    },
    /// The database records a migration that the set does not contain.
    #[error("migration {version} is recorded in the database but missing from the migration set; deploy a set that contains it (or, where a missing version is expected, set `MigrateOptions::with_ignore_missing(true)`)")]
    VersionMissing {
        /// The unknown version.
        version: i64,
    },
    /// A migration of the set was never applied, yet its version sorts below the
    /// latest one applied: applying it now would run it out of order, and
    /// bringing the database to a version would pass over it.
    #[error("migration {version} ({file}) was never applied, but its version sorts before the latest applied version {latest}, so it would run out of order or be skipped; give it a version after {latest} by renaming its file (e.g. {}_{}; a date written with `_`, as in 2024_03_01_x.sql, is read up to its first `_`), then rerun", .latest.saturating_add(1), file_description(file))]
    PendingBelowApplied {
        /// The version never applied.
        version: i64,
        /// Its file (or ad-hoc name).
        file: String,
        /// The latest version applied (that the set has).
        latest: i64,
    },
    /// A migration's SQL failed; its transaction was rolled back and nothing was recorded
    /// (a `-- no-transaction` migration may have run in part).
    #[error("migration {version} ({file}) failed{}: {message}; {}", line_suffix(*.line), execute_hint(*.no_tx))]
    Execute {
        /// The failing migration's version.
        version: i64,
        /// The failing file (or ad-hoc name).
        file: String,
        /// The 1-based line of the file, when the server reported a position.
        line: Option<u32>,
        /// The SQLSTATE (PostgreSQL) or result code (SQLite), when there is one.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// Whether the migration ran outside a transaction.
        no_tx: bool,
        /// The driver's error.
        #[source]
        source: Box<sqlx::Error>,
    },
    /// A revert needs a down migration that the set does not have.
    #[error("migration {version} has no down migration, so the database cannot be reverted below it; write a `.down.sql` file for it")]
    NotReversible {
        /// The irreversible version.
        version: i64,
    },
    /// The connection broke (network, server restart, a terminated backend).
    #[error("connection to database {database} lost while {during}: {source}; rerun, recorded migrations are never applied twice")]
    ConnectionLost {
        /// The database name.
        database: String,
        /// What was going on.
        during: String,
        /// The driver's error.
        #[source]
        source: Box<sqlx::Error>,
    },
    /// A bookkeeping query (history table, lock) failed.
    #[error("could not {during} on database {database}: {source}; check the server's message and the role's privileges (it must write _sqlx_migrations), then rerun")]
    History {
        /// The database name.
        database: String,
        /// What was being done.
        during: &'static str,
        /// The driver's error.
        #[source]
        source: Box<sqlx::Error>,
    },
    /// Reading the schema catalog (for a fingerprint) failed.
    #[error("could not read the schema of database {database}: {source}; check that the role may read the catalog (pg_catalog, sqlite_schema), then retry")]
    Catalog {
        /// The database name.
        database: String,
        /// The driver's error.
        #[source]
        source: Box<sqlx::Error>,
    },
}

/// SQLSTATE classes and codes after which the same work may pass later.
const RETRYABLE_SQLSTATES: &[&str] = &[
    "55P03", // lock_not_available (lock_timeout)
    "57014", // query_canceled (statement_timeout)
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "53300", // too_many_connections
    "57P01", // admin_shutdown / pg_terminate_backend
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
];

impl MigrateError {
    /// Whether trying the same tenant again later may succeed (a network failure,
    /// a busy lock, a lock or statement timeout, a lost connection).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Locked { .. } | Self::ConnectionLost { .. } => true,
            Self::Execute { code, .. } => code.as_deref().is_some_and(is_retryable_sqlstate),
            Self::History { source, .. } => is_transient(source),
            _ => false,
        }
    }

    /// Whether another migrator held the tenant's migration lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }

    /// The migration version the error is about, if any.
    pub fn version(&self) -> Option<i64> {
        match self {
            Self::Dirty { version }
            | Self::ChecksumMismatch { version, .. }
            | Self::VersionMissing { version }
            | Self::PendingBelowApplied { version, .. }
            | Self::Execute { version, .. }
            | Self::NotReversible { version } => Some(*version),
            _ => None,
        }
    }
}

/// For the traits of `tenancy-core`: transient when [`MigrateError::is_retryable`].
impl From<MigrateError> for tenancy_core::BackendError {
    fn from(error: MigrateError) -> Self {
        if error.is_retryable() {
            Self::transient(error)
        } else {
            Self::permanent(error)
        }
    }
}

pub(crate) fn is_retryable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || RETRYABLE_SQLSTATES.contains(&code)
}

/// Whether a driver error means the connection itself failed.
pub(crate) fn is_connection_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_retryable_sqlstate(&c)),
        other => is_connection_failure(other),
    }
}

/// What follows the version in a migration file name (`x.sql` of
/// `2024_03_01_x.sql`): the name a renamed file keeps.
fn file_description(file: &str) -> &str {
    let rest = file.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    if rest.is_empty() {
        file
    } else {
        rest
    }
}

fn line_suffix(line: Option<u32>) -> String {
    line.map(|line| format!(" at line {line}"))
        .unwrap_or_default()
}

fn execute_hint(no_tx: bool) -> &'static str {
    if no_tx {
        "it ran without a transaction and may have applied in part: check the schema, make the file idempotent and rerun"
    } else {
        "its transaction was rolled back and nothing was recorded: fix the file and rerun"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_errors() {
        let locked = MigrateError::Locked {
            database: "t".into(),
            waited: Duration::from_secs(1),
        };
        assert!(locked.is_retryable() && locked.is_locked());
        assert!(!MigrateError::Dirty { version: 1 }.is_retryable());
        let auth = MigrateError::Authentication {
            database: "t".into(),
            message: "password authentication failed".into(),
        };
        assert!(!auth.is_retryable());
        let timeout = MigrateError::Execute {
            version: 1,
            file: "1_a.sql".into(),
            line: Some(2),
            code: Some("55P03".into()),
            message: "canceling statement due to lock timeout".into(),
            no_tx: false,
            source: Box::new(sqlx::Error::RowNotFound),
        };
        assert!(timeout.is_retryable());
        assert!(
            timeout.to_string().contains("1_a.sql) failed at line 2"),
            "{timeout}"
        );
        assert_eq!(timeout.version(), Some(1));
    }

    #[test]
    fn a_pending_version_below_the_applied_one_says_how_to_rename_it() {
        let gap = MigrateError::PendingBelowApplied {
            version: 2024,
            file: "2024_03_01_x.sql".into(),
            latest: 20240201000000,
        };
        let text = gap.to_string();
        assert!(text.contains("migration 2024 (2024_03_01_x.sql)"), "{text}");
        assert!(
            text.contains("latest applied version 20240201000000"),
            "{text}"
        );
        assert!(
            text.contains("renaming its file (e.g. 20240201000001_x.sql"),
            "{text}"
        );
        assert_eq!(gap.version(), Some(2024));
        assert!(!gap.is_retryable());
        let missing = MigrateError::VersionMissing { version: 9 }.to_string();
        assert!(
            missing.contains("MigrateOptions::with_ignore_missing(true)"),
            "{missing}"
        );
    }
}
