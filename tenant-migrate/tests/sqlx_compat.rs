//! Our history is sqlx's history: checked against sqlx's own migrator.

mod support;

use sqlx::migrate::{MigrateError as SqlxMigrateError, Migrator};
use sqlx::{Connection, SqliteConnection};
use support::*;
use tenancy_core::testing::TestDatabase;
use tenant_migrate::{MigrationSet, TenantMigrator};

async fn sqlx_migrator() -> Migrator {
    Migrator::new(fixture_dir()).await.unwrap()
}

#[tokio::test]
async fn checksums_versions_and_descriptions_match_sqlx() {
    let ours = fixture_set();
    let theirs = sqlx_migrator().await;
    let theirs_up: Vec<_> = theirs
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .collect();
    assert_eq!(theirs_up.len(), ours.len());
    for (sqlx_migration, migration) in theirs_up.iter().zip(ours.iter()) {
        assert_eq!(sqlx_migration.version, migration.version());
        assert_eq!(sqlx_migration.description, migration.description());
        assert_eq!(&*sqlx_migration.checksum, migration.checksum());
        assert_eq!(sqlx_migration.no_tx, migration.no_tx());
    }
}

#[tokio::test]
async fn a_database_migrated_by_sqlx_is_up_to_date_for_us() {
    let db = TestDatabase::create().await.unwrap();
    let mut conn = connect(&db).await;
    sqlx_migrator().await.run(&mut conn).await.unwrap();

    let migrator = TenantMigrator::new(fixture_set());
    let status = migrator.status_postgres(&mut conn).await.unwrap();
    assert!(status.is_up_to_date(), "{status:?}");
    assert!(!migrator.apply_postgres(&mut conn).await.unwrap().changed());
    assert_eq!(
        migrator
            .revert_postgres(&mut conn, 0)
            .await
            .unwrap()
            .steps
            .len(),
        3
    );
    assert!(!table_exists(&db, "items").await);
}

#[tokio::test]
async fn sqlx_sees_our_migrations_as_applied() {
    let db = TestDatabase::create().await.unwrap();
    TenantMigrator::new(fixture_set())
        .apply(&target(&db))
        .await
        .unwrap();

    let mut conn = connect(&db).await;
    // Would fail with VersionMismatch or a duplicate key if our rows differed.
    sqlx_migrator().await.run(&mut conn).await.unwrap();
    assert_eq!(history(&db).await.len(), 3);
    // sqlx can also undo what we applied.
    sqlx_migrator().await.undo(&mut conn, 0).await.unwrap();
    assert!(history(&db).await.is_empty());
}

#[tokio::test]
async fn sqlx_detects_an_edit_we_recorded_and_vice_versa() {
    let db = TestDatabase::create().await.unwrap();
    let edited = MigrationSet::builder()
        .file(
            "20240101000000_create_items.sql",
            "CREATE TABLE items (id INT);",
        )
        .build()
        .unwrap();
    TenantMigrator::new(edited)
        .apply(&target(&db))
        .await
        .unwrap();
    let mut conn = connect(&db).await;
    let error = sqlx_migrator().await.run(&mut conn).await.unwrap_err();
    assert!(
        matches!(error, SqlxMigrateError::VersionMismatch(20240101000000)),
        "{error}"
    );
}

#[tokio::test]
async fn history_table_has_sqlx_exact_columns() {
    let ours = TestDatabase::create().await.unwrap();
    let theirs = TestDatabase::create().await.unwrap();
    TenantMigrator::new(fixture_set())
        .apply(&target(&ours))
        .await
        .unwrap();
    sqlx_migrator()
        .await
        .run(&mut connect(&theirs).await)
        .await
        .unwrap();

    let describe = "SELECT column_name::text, data_type::text, is_nullable::text, coalesce(column_default, '') \
                    FROM information_schema.columns WHERE table_name = '_sqlx_migrations' ORDER BY ordinal_position";
    let columns = |db| async move {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(describe)
            .fetch_all(&mut connect(db).await)
            .await
            .unwrap();
        rows
    };
    let (a, b) = (columns(&ours).await, columns(&theirs).await);
    assert_eq!(a.len(), 6);
    assert_eq!(a, b);
}

#[tokio::test]
async fn sqlite_history_is_shared_with_sqlx_both_ways() {
    let file = TempSqlite::new();
    let migrator = TenantMigrator::new(sqlite_set());
    let sqlx_migrator = Migrator::new(sqlite_dir()).await.unwrap();

    // sqlx first, then us.
    let mut conn = SqliteConnection::connect(&format!("{}?mode=rwc", file.url()))
        .await
        .unwrap();
    sqlx_migrator.run(&mut conn).await.unwrap();
    assert!(migrator
        .status_sqlite(&mut conn)
        .await
        .unwrap()
        .is_up_to_date());
    // Us reverting, then sqlx re-applying and us seeing it applied.
    assert_eq!(
        migrator
            .revert_sqlite(&mut conn, 0)
            .await
            .unwrap()
            .steps
            .len(),
        2
    );
    sqlx_migrator.run(&mut conn).await.unwrap();
    assert!(migrator
        .status_sqlite(&mut conn)
        .await
        .unwrap()
        .is_up_to_date());
    conn.close().await.unwrap();

    // Us first on a fresh file, then sqlx.
    let fresh = TempSqlite::new();
    migrator.apply(&fresh.target().unwrap()).await.unwrap();
    let mut conn = SqliteConnection::connect(&fresh.url()).await.unwrap();
    sqlx_migrator.run(&mut conn).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 2);
}

fn sqlite_dir() -> std::path::PathBuf {
    fixture_dir().with_file_name("sqlite_migrations")
}

fn sqlite_set() -> MigrationSet {
    MigrationSet::from_dir(sqlite_dir()).unwrap()
}

#[tokio::test]
async fn sqlx_waits_for_our_advisory_lock() {
    let db = TestDatabase::create().await.unwrap();
    open_gate(&db, 1.5).await;
    let ours = tokio::spawn({
        let target = target(&db);
        async move { TenantMigrator::new(slow_set()).apply(&target).await }
    });
    // Ours holds the lock (observed, not assumed after a delay).
    wait_for_migration_lock(&db).await;

    let mut theirs = sqlx_migrator().await;
    theirs.set_ignore_missing(true);
    let started = std::time::Instant::now();
    theirs.run(&mut connect(&db).await).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(700),
        "sqlx did not wait: {waited:?}"
    );
    assert_eq!(ours.await.unwrap().unwrap().steps.len(), 1);
    assert_eq!(history(&db).await.len(), 4);
}

#[tokio::test]
async fn we_wait_for_sqlx_advisory_lock() {
    use sqlx::migrate::Migrate;
    let db = TestDatabase::create().await.unwrap();
    let mut sqlx_conn = connect(&db).await;
    sqlx_conn.lock().await.unwrap();

    let migrator = TenantMigrator::new(fixture_set()).with_options(quick_options());
    let error = migrator.apply(&target(&db)).await.unwrap_err();
    assert!(error.is_locked(), "{error}");
    assert!(history(&db).await.is_empty());

    sqlx_conn.unlock().await.unwrap();
    assert_eq!(migrator.apply(&target(&db)).await.unwrap().steps.len(), 3);
    sqlx_conn.close().await.unwrap();
}
