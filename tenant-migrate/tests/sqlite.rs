//! The same API on SQLite, the embedded default.

mod support;

use support::*;
use tenancy_core::{SchemaMigrator, TenantId};
use tenant_migrate::{MigrateError, MigrationSet, TenantMigrator};

fn set() -> MigrationSet {
    MigrationSet::builder()
        .file(
            "1_create_notes.up.sql",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        )
        .file("1_create_notes.down.sql", "DROP TABLE notes;")
        .file(
            "2_add_pinned.up.sql",
            "ALTER TABLE notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;",
        )
        .file(
            "2_add_pinned.down.sql",
            "ALTER TABLE notes DROP COLUMN pinned;",
        )
        .build()
        .unwrap()
}

async fn tables(file: &TempSqlite) -> Vec<String> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn applies_reports_status_and_reverts() {
    let file = TempSqlite::new();
    let migrator = TenantMigrator::new(set());

    let status = migrator.status(&file.target().unwrap()).await.unwrap();
    assert_eq!(status.pending, [1, 2]);

    let outcome = migrator.apply(&file.target().unwrap()).await.unwrap();
    assert_eq!(
        (
            outcome.from_version,
            outcome.to_version,
            outcome.steps.len()
        ),
        (None, Some(2), 2)
    );
    assert_eq!(tables(&file).await, ["_sqlx_migrations", "notes"]);
    assert!(migrator
        .status(&file.target().unwrap())
        .await
        .unwrap()
        .is_up_to_date());
    assert!(!migrator
        .apply(&file.target().unwrap())
        .await
        .unwrap()
        .changed());

    let reverted = migrator.revert(&file.target().unwrap(), 0).await.unwrap();
    assert_eq!(
        reverted.steps.iter().map(|s| s.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(tables(&file).await, ["_sqlx_migrations"]);
    assert_eq!(
        migrator
            .status(&file.target().unwrap())
            .await
            .unwrap()
            .pending,
        [1, 2]
    );
}

#[tokio::test]
async fn a_failing_migration_is_rolled_back_and_named() {
    let file = TempSqlite::new();
    let broken = MigrationSet::builder()
        .file("1_ok.sql", "CREATE TABLE ok (id INTEGER);")
        .file(
            "2_broken.sql",
            "CREATE TABLE half (id INTEGER);\nCREATE TABEL broken (id INTEGER);",
        )
        .build()
        .unwrap();
    let error = TenantMigrator::new(broken)
        .apply(&file.target().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MigrateError::Execute { version: 2, file, .. } if file == "2_broken.sql"),
        "{error}"
    );
    assert_eq!(tables(&file).await, ["_sqlx_migrations", "ok"]);
}

#[tokio::test]
async fn edited_migration_is_refused_on_sqlite_too() {
    let file = TempSqlite::new();
    TenantMigrator::new(set())
        .apply(&file.target().unwrap())
        .await
        .unwrap();
    let edited = MigrationSet::builder()
        .file(
            "1_create_notes.sql",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY);",
        )
        .file(
            "2_add_pinned.sql",
            "ALTER TABLE notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;",
        )
        .file("3_more.sql", "CREATE TABLE more (id INTEGER);")
        .build()
        .unwrap();
    let error = TenantMigrator::new(edited)
        .apply(&file.target().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, MigrateError::ChecksumMismatch { version: 1, .. }),
        "{error}"
    );
    assert!(!tables(&file).await.contains(&"more".to_owned()));
}

#[tokio::test]
async fn schema_migrator_works_on_sqlite_targets() {
    let file = TempSqlite::new();
    let migrator: &dyn SchemaMigrator = &TenantMigrator::new(set());
    let report = migrator
        .migrate(&TenantId::new("acme").unwrap(), &file.target().unwrap())
        .await
        .unwrap();
    assert_eq!((report.to_version, report.applied), (Some(2), 2));
}

#[tokio::test]
async fn a_step_another_migrator_did_while_this_one_waited_is_not_run_again() {
    use sqlx::migrate::Migrate;
    use sqlx::Connection;
    let file = TempSqlite::new();
    let migrator = TenantMigrator::new(set());
    // Another migrator (sqlx's) holds the write lock, about to apply migration 1.
    let mut other = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", file.url()))
        .await
        .unwrap();
    other.ensure_migrations_table().await.unwrap();
    let mut tx = other.begin_with("BEGIN IMMEDIATE").await.unwrap();

    let waiting = tokio::spawn({
        let target = file.target().unwrap();
        async move { migrator.apply(&target).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let first = set();
    let first = first.get(1).unwrap();
    sqlx::raw_sql(first.sql()).execute(&mut *tx).await.unwrap();
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, $1, TRUE, $2, 0)")
        .bind(first.description())
        .bind(first.checksum())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let error = waiting.await.unwrap().unwrap_err();
    assert!(error.is_locked() && error.is_retryable(), "{error}");
    other.close().await.unwrap();
    // The retry finds 1 done and applies only 2.
    let retry = TenantMigrator::new(set())
        .apply(&file.target().unwrap())
        .await
        .unwrap();
    assert_eq!(
        retry.steps.iter().map(|s| s.version).collect::<Vec<_>>(),
        [2]
    );
}

#[tokio::test]
async fn a_session_applies_after_lock_status_even_though_sqlite_holds_no_lock() {
    let file = TempSqlite::new();
    let migrator = TenantMigrator::new(set());
    let mut session = migrator.connect(&file.target().unwrap()).await.unwrap();
    assert_eq!(session.lock_status().await.unwrap().pending, [1, 2]);
    // Another migrator gets in between: the session must not trust what it read.
    migrator.apply(&file.target().unwrap()).await.unwrap();
    let outcome = session.apply().await.unwrap();
    assert!(!outcome.changed(), "{outcome:?}");
    session.close().await;
    assert_eq!(tables(&file).await, ["_sqlx_migrations", "notes"]);
}

/// A tenant URL with a typo names a file that does not exist: migrating refuses it
/// (as a missing PostgreSQL database) and creates nothing, even with `mode=rwc`.
#[tokio::test]
async fn a_missing_database_file_is_refused_and_never_created() {
    let file = TempSqlite::new();
    let typo = file.path().with_extension("dbx");
    for url_text in [
        format!("sqlite://{}", typo.display()),
        format!("sqlite://{}?mode=rwc", typo.display()),
    ] {
        let error = TenantMigrator::new(set())
            .apply(&url(&url_text))
            .await
            .unwrap_err();
        assert!(
            matches!(error, MigrateError::DatabaseMissing { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("provision it before migrating"));
        assert!(!typo.exists(), "{} was created", typo.display());
    }
}

/// A path that names a folder is a wrong path, said as such, not a server to retry.
#[tokio::test]
async fn a_folder_instead_of_a_database_file_is_a_wrong_path() {
    let file = TempSqlite::new();
    let folder = file.path().with_extension("d");
    std::fs::create_dir_all(&folder).unwrap();
    let error = TenantMigrator::new(set())
        .apply(&url(&format!("sqlite://{}", folder.display())))
        .await
        .unwrap_err();
    std::fs::remove_dir_all(&folder).unwrap();
    assert!(
        matches!(error, MigrateError::InvalidTarget { .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("SQLite database file") && !text.contains("server"),
        "{text}"
    );
}
