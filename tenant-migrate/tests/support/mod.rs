//! Fixtures shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use sqlx::{Connection, PgConnection};
use tenancy_core::testing::TestDatabase;
use tenancy_core::{DatabaseTarget, DatabaseUrl};
use tenant_migrate::{MigrateOptions, MigrationSet};

/// `tests/fixtures/migrations`: three reversible migrations, the last one `-- no-transaction`.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations")
}

pub fn fixture_set() -> MigrationSet {
    MigrationSet::from_dir(fixture_dir()).unwrap()
}

pub const FIXTURE_VERSIONS: [i64; 3] = [20240101000000, 20240102000000, 20240103000000];

/// Short waits so that fault tests stay fast.
pub fn quick_options() -> MigrateOptions {
    MigrateOptions::default()
        .with_lock_wait(std::time::Duration::from_millis(300))
        .with_connect_timeout(std::time::Duration::from_secs(3))
}

pub fn target(db: &TestDatabase) -> DatabaseTarget {
    DatabaseTarget::new(db.url().clone())
}

pub fn url(raw: &str) -> DatabaseTarget {
    DatabaseTarget::new(DatabaseUrl::parse(raw).unwrap())
}

pub async fn connect(db: &TestDatabase) -> PgConnection {
    PgConnection::connect(db.url().expose()).await.unwrap()
}

/// `(version, success)` rows of `_sqlx_migrations`, by version.
pub async fn history(db: &TestDatabase) -> Vec<(i64, bool)> {
    let mut conn = connect(db).await;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if !exists {
        return Vec::new();
    }
    sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

pub async fn table_exists(db: &TestDatabase, table: &str) -> bool {
    let mut conn = connect(db).await;
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

pub async fn column_exists(db: &TestDatabase, table: &str, column: &str) -> bool {
    let mut conn = connect(db).await;
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2)",
    )
    .bind(table)
    .bind(column)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

/// A migration that sleeps for as many seconds as the `gate` table says (0 if none).
pub fn slow_set() -> MigrationSet {
    MigrationSet::builder()
        .file(
            "1_slow.sql",
            "CREATE TABLE before_sleep (id INT);\n\
             SELECT pg_sleep(coalesce((SELECT max(seconds) FROM gate), 0));\n\
             CREATE TABLE after_sleep (id INT);\n",
        )
        .build()
        .unwrap()
}

pub async fn open_gate(db: &TestDatabase, seconds: f64) {
    let mut conn = connect(db).await;
    sqlx::query("CREATE TABLE IF NOT EXISTS gate (seconds FLOAT8)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM gate")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO gate VALUES ($1)")
        .bind(seconds)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[allow(unused_imports)]
pub use tenancy_core::testing::TempSqlite;

/// Waits (at most 10 s) until some session holds a migration lock on `db`: an
/// advisory lock granted in that database, as our migrator and sqlx's take.
pub async fn wait_for_migration_lock(db: &TestDatabase) {
    let mut observer = connect(db).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if held > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no migration lock was taken within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    observer.close().await.unwrap();
}
