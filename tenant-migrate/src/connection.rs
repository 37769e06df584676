//! Opening a short-lived connection to a tenant's [`DatabaseTarget`].

use std::str::FromStr;

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgConnection};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
#[allow(unused_imports)] // unused when built without any engine feature
use sqlx::{ConnectOptions, Connection};
use tenancy_core::{DatabaseKind, DatabaseTarget};

use crate::backend::Backend;
#[cfg(feature = "postgres")]
use crate::postgres::{PgBackend, PgSessionState};
#[cfg(feature = "sqlite")]
use crate::sqlite::SqliteBackend;
use crate::{MigrateError, MigrateOptions};

/// SQLSTATEs of a refused login.
const AUTH_FAILURES: &[&str] = &["28P01", "28000"];
/// SQLSTATE of a database that does not exist.
const INVALID_CATALOG: &str = "3D000";

/// One open connection to a tenant database, closed by [`TenantConnection::close`].
#[derive(Debug)]
pub(crate) enum TenantConnection {
    #[cfg(feature = "postgres")]
    Postgres {
        conn: PgConnection,
        /// What the engine remembers between operations (name, lock held).
        state: PgSessionState,
    },
    #[cfg(feature = "sqlite")]
    Sqlite {
        conn: SqliteConnection,
        database: String,
    },
}

impl TenantConnection {
    /// Connects within `options.connect_timeout()`, classifying failures.
    pub(crate) async fn open(
        target: &DatabaseTarget,
        options: &MigrateOptions,
    ) -> Result<Self, MigrateError> {
        let label = target.url.redacted();
        let invalid = |reason: String| MigrateError::InvalidTarget {
            database: label.clone(),
            reason,
        };
        let connecting = async {
            match target.kind() {
                #[cfg(feature = "postgres")]
                DatabaseKind::Postgres => {
                    let options = PgConnectOptions::from_str(target.url.expose())
                        .map_err(|e| invalid(e.to_string()))?
                        .application_name("tenant-migrate");
                    let conn = options.connect().await.map_err(|e| classify_connect_error(&label, e))?;
                    let state = PgSessionState::connected_to(options.get_database());
                    Ok(Self::Postgres { conn, state })
                }
                #[cfg(feature = "sqlite")]
                DatabaseKind::Sqlite => {
                    let busy_timeout = options.lock_timeout().unwrap_or(options.lock_wait());
                    // Migrating never creates a tenant database (`mode=rwc` included):
                    // a typo in a path must fail, not migrate a new empty file.
                    let connect = SqliteConnectOptions::from_str(target.url.expose())
                        .map_err(|e| invalid(e.to_string()))?
                        .create_if_missing(false)
                        .busy_timeout(busy_timeout);
                    if sqlite_file_is_missing(target) {
                        return Err(MigrateError::DatabaseMissing { database: label.clone() });
                    }
                    let conn = connect.connect().await.map_err(|e| classify_sqlite_open_error(&label, e))?;
                    Ok(Self::Sqlite { conn, database: label.clone() })
                }
                other => Err(invalid(format!(
                    "{other} databases are not supported by this build; enable the crate feature `{other}`"
                ))),
            }
        };
        match tokio::time::timeout(options.connect_timeout(), connecting).await {
            Ok(result) => result,
            Err(_) => Err(MigrateError::Unreachable {
                database: label.clone(),
                message: format!("no connection within {:?}", options.connect_timeout()),
            }),
        }
    }

    /// The engine's view of this connection.
    pub(crate) fn backend(&mut self) -> Box<dyn Backend + '_> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { conn, state } => Box::new(PgBackend::new(conn, state)),
            #[cfg(feature = "sqlite")]
            Self::Sqlite { conn, database } => Box::new(SqliteBackend::new(conn, database.clone())),
        }
    }

    /// The PostgreSQL connection, for SQL of its own (`None` on SQLite).
    #[cfg(feature = "postgres")]
    pub(crate) fn into_postgres(self) -> Option<PgConnection> {
        match self {
            Self::Postgres { conn, .. } => Some(conn),
            #[cfg(feature = "sqlite")]
            Self::Sqlite { .. } => None,
        }
    }

    /// The SQLite connection, for SQL of its own (`None` on PostgreSQL); used by
    /// rehearsals, which need the `postgres` feature.
    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn into_sqlite(self) -> Option<SqliteConnection> {
        match self {
            Self::Sqlite { conn, .. } => Some(conn),
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => None,
        }
    }

    /// Closes the connection politely; a failure to say goodbye is only logged.
    pub(crate) async fn close(self) {
        let closed = match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { conn, .. } => conn.close().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite { conn, .. } => conn.close().await,
        };
        if let Err(error) = closed {
            tracing::debug!(%error, "closing the tenant connection failed");
        }
    }
}

/// Whether a SQLite target names a file that is not there (`:memory:` never is).
#[cfg(feature = "sqlite")]
fn sqlite_file_is_missing(target: &DatabaseTarget) -> bool {
    match target.url.database_name() {
        Some(name) if !name.contains(":memory:") => {
            matches!(std::path::Path::new(name).try_exists(), Ok(false))
        }
        _ => false,
    }
}

/// SQLite's result code for a file it cannot open (a directory, a path in a
/// folder that does not exist, no permission).
#[cfg(feature = "sqlite")]
const SQLITE_CANTOPEN: &str = "14";

/// A SQLite file that cannot be opened is a wrong path, not a server to wait for.
#[cfg(feature = "sqlite")]
fn classify_sqlite_open_error(database: &str, error: sqlx::Error) -> MigrateError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(SQLITE_CANTOPEN) => {
            MigrateError::InvalidTarget {
                database: database.to_owned(),
                reason: format!(
                    "{}; check that the path names a SQLite database file this user may read and write",
                    db.message()
                ),
            }
        }
        _ => classify_connect_error(database, error),
    }
}

fn classify_connect_error(database: &str, error: sqlx::Error) -> MigrateError {
    let database = database.to_owned();
    match &error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if AUTH_FAILURES.contains(&code) => MigrateError::Authentication {
                database,
                message: db.message().to_owned(),
            },
            Some(INVALID_CATALOG) => MigrateError::DatabaseMissing { database },
            _ => MigrateError::Unreachable {
                database,
                message: db.message().to_owned(),
            },
        },
        sqlx::Error::Configuration(reason) => MigrateError::InvalidTarget {
            database,
            reason: reason.to_string(),
        },
        other => MigrateError::Unreachable {
            database,
            message: other.to_string(),
        },
    }
}
