//! Test helpers (feature `testing`): a throw-away PostgreSQL database per test.
//!
//! The one place in the workspace that creates and drops test databases; every
//! crate's tests take it as a dev-dependency instead of writing their own.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use crate::DatabaseUrl;

/// The server tests use when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The administrative URL of the test server: `DATABASE_URL`, or [`DEFAULT_DATABASE_URL`].
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// A uniquely named PostgreSQL database, created on the server named by
/// `DATABASE_URL` and dropped (with any open connections) when this value is dropped.
///
/// ```no_run
/// use tenancy_core::testing::TestDatabase;
///
/// # async fn run() -> Result<(), sqlx::Error> {
/// let db = TestDatabase::create().await?;
/// let pool = db.pool().await?;
/// sqlx::query("CREATE TABLE t (id INT)").execute(&pool).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: DatabaseUrl,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database.
    pub async fn create() -> Result<Self, sqlx::Error> {
        Self::create_with_prefix("tk_test").await
    }

    /// Creates a fresh database whose name starts with `prefix` (lowercase, digits, `_`).
    pub async fn create_with_prefix(prefix: &str) -> Result<Self, sqlx::Error> {
        let admin_url = server_url();
        let server =
            DatabaseUrl::parse(&admin_url).map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
        let name = format!(
            "{prefix}_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let mut admin = PgConnection::connect(&admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(Self {
            url: server.with_database(&name),
            name,
            admin_url,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A small pool connected to the database.
    pub async fn pool(&self) -> Result<PgPool, sqlx::Error> {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(self.url.expose())
            .await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        // Dropping needs async I/O; do it on a thread with its own runtime so that it
        // works from inside or outside a Tokio runtime.
        let handle = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(error) = sqlx::query(&sql).execute(&mut admin).await {
                        eprintln!("could not drop test database {name}: {error}");
                    }
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// A uniquely named SQLite file under the temporary directory, created empty (an
/// empty file is an empty SQLite database) and removed, with its journal files, when
/// this value is dropped.
///
/// ```
/// use tenancy_core::testing::TempSqlite;
///
/// let file = TempSqlite::new();
/// assert!(file.url().starts_with("sqlite://"));
/// assert!(file.path().exists());
/// ```
#[derive(Debug)]
pub struct TempSqlite {
    path: std::path::PathBuf,
}

impl Default for TempSqlite {
    fn default() -> Self {
        Self::new()
    }
}

impl TempSqlite {
    /// A new, unused name.
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "tenancy_{}_{}_{:08x}.db",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        if let Err(error) = std::fs::write(&path, b"") {
            eprintln!("could not create {}: {error}", path.display());
        }
        Self { path }
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The file's `sqlite://` URL.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    /// The file as a tenant database target.
    pub fn target(&self) -> Result<crate::DatabaseTarget, crate::DatabaseUrlError> {
        Ok(crate::DatabaseTarget::new(DatabaseUrl::parse(&self.url())?))
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}
