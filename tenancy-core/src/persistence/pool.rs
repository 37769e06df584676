use std::time::Duration;

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgPool, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{DatabaseKind, DatabaseUrl};

/// How tenancy-kit's stores open a connection pool: the same settings for every
/// store, so that one pool can serve them all.
///
/// - **SQLite**: write-ahead logging with `synchronous = NORMAL` (a commit survives
///   the process being killed; only an OS crash may lose the last ones), a busy
///   timeout so that writers queue instead of failing, foreign keys on, a 256 KiB page
///   cache, and one connection for `:memory:` (each connection would be a database
///   of its own). The file is created only with
///   [`create_if_missing`](Self::create_if_missing): right for a control plane a
///   host sets up, wrong for a tenant database, where a typo in a path would quietly
///   make an empty one.
/// - **PostgreSQL**: a bounded pool with an acquire timeout, so that a database that
///   is down is an error after a while rather than a hang.
#[derive(Debug, Clone)]
pub struct StorePoolOptions {
    max_connections: Option<u32>,
    create_if_missing: bool,
    busy_timeout: Duration,
    acquire_timeout: Duration,
}

impl Default for StorePoolOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl StorePoolOptions {
    /// The defaults: 4 SQLite connections or 10 PostgreSQL ones, a 30 s busy
    /// timeout, a 30 s acquire timeout, and no file creation.
    pub fn new() -> Self {
        Self {
            max_connections: None,
            create_if_missing: false,
            busy_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(30),
        }
    }

    /// Caps the pool's connections (at least one).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max.max(1));
        self
    }

    /// Creates a missing SQLite file (default: refuse with an error).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// How long a SQLite writer waits for another one before failing.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long a caller waits for a free connection before failing.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The connection settings for a `sqlite:` URL under this policy, for callers
    /// that open single connections rather than a pool.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_connect_options(&self, url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
        use std::str::FromStr;
        Ok(SqliteConnectOptions::from_str(url)?
            .create_if_missing(self.create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(self.busy_timeout)
            .foreign_keys(true)
            .pragma("cache_size", "-256"))
    }

    /// Opens a pool on the SQLite database at `url`.
    #[cfg(feature = "sqlite")]
    pub async fn open_sqlite(&self, url: &str) -> Result<SqlitePool, sqlx::Error> {
        let options = self.sqlite_connect_options(url)?;
        let max = if url.contains(":memory:") {
            1
        } else {
            self.max_connections.unwrap_or(4)
        };
        SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options)
            .await
    }

    /// Opens a pool on the PostgreSQL database at `url`.
    ///
    /// One connection is made first, on its own: a server that refuses, a host
    /// that does not resolve or a password that is wrong is reported at once with
    /// the server's reason, instead of as a pool timeout after `acquire_timeout`.
    #[cfg(feature = "postgres")]
    pub async fn open_postgres(&self, url: &str) -> Result<PgPool, sqlx::Error> {
        use sqlx::{ConnectOptions, Connection};
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
        let probe = tokio::time::timeout(
            self.acquire_timeout.min(Duration::from_secs(10)),
            options.connect(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        probe.close().await?;
        PgPoolOptions::new()
            .max_connections(self.max_connections.unwrap_or(10))
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options)
            .await
    }

    /// Opens a pool on whichever database `url` names.
    pub async fn open(&self, url: &DatabaseUrl) -> Result<StorePool, sqlx::Error> {
        match url.kind() {
            #[cfg(feature = "postgres")]
            DatabaseKind::Postgres => {
                Ok(StorePool::Postgres(self.open_postgres(url.expose()).await?))
            }
            #[cfg(feature = "sqlite")]
            DatabaseKind::Sqlite => Ok(StorePool::Sqlite(self.open_sqlite(url.expose()).await?)),
            #[allow(unreachable_patterns)]
            kind => Err(sqlx::Error::Configuration(
                format!("this build has no {kind} support; enable tenancy-core's `{kind}` feature")
                    .into(),
            )),
        }
    }
}

/// A pool on a control-plane database of either engine, as [`StorePoolOptions::open`]
/// opens it from a URL; each store is then built from the concrete pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StorePool {
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    /// A SQLite database.
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

impl StorePool {
    /// The database engine.
    pub fn kind(&self) -> DatabaseKind {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => DatabaseKind::Postgres,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => DatabaseKind::Sqlite,
        }
    }

    /// Whether a table of this name exists (in the current schema on PostgreSQL).
    pub async fn table_exists(&self, table: &str) -> Result<bool, sqlx::Error> {
        let count: i64 = match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM pg_tables WHERE tablename = $1 AND schemaname = current_schema()",
                )
                .bind(table)
                .fetch_one(pool)
                .await?
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                )
                .bind(table)
                .fetch_one(pool)
                .await?
            }
        };
        Ok(count > 0)
    }

    /// Runs a script of statements without parameters in one transaction, returning
    /// the rows they affected.
    pub async fn execute_script(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let done = sqlx::raw_sql(sql).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let done = sqlx::raw_sql(sql).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }
        }
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.close().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}
