//! Applying, reverting and status on real PostgreSQL (`DATABASE_URL`).

mod support;

use std::time::Duration;

use sqlx::Connection;
use support::*;
use tenancy_core::testing::TestDatabase;
use tenancy_core::{SchemaMigrator, TenantId};
use tenant_migrate::{MigrateError, MigrateOptions, MigrationSet, TenantMigrator};

#[tokio::test]
async fn applies_every_migration_once_and_records_sqlx_history() {
    let db = TestDatabase::create().await.unwrap();
    let migrator = TenantMigrator::new(fixture_set());

    let outcome = migrator.apply(&target(&db)).await.unwrap();
    let versions: Vec<_> = outcome.steps.iter().map(|s| s.version).collect();
    assert_eq!(versions, FIXTURE_VERSIONS);
    assert_eq!(
        (outcome.from_version, outcome.to_version),
        (None, Some(FIXTURE_VERSIONS[2]))
    );
    assert!(table_exists(&db, "items_name_idx").await);

    let mut conn = connect(&db).await;
    let rows: Vec<(i64, String, bool, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT version, description, success, checksum, execution_time FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let set = fixture_set();
    for (row, migration) in rows.iter().zip(set.iter()) {
        assert_eq!(row.0, migration.version());
        assert_eq!(row.1, migration.description());
        assert!(row.2);
        assert_eq!(row.3, migration.checksum());
        assert!(row.4 > 0, "execution_time recorded in nanoseconds");
    }
    assert_eq!(rows.len(), 3);

    let again = migrator.apply(&target(&db)).await.unwrap();
    assert!(!again.changed());
    assert_eq!(again.to_version, Some(FIXTURE_VERSIONS[2]));
    assert_eq!(history(&db).await.len(), 3);
}

#[tokio::test]
async fn status_reads_a_fresh_database_without_writing() {
    let db = TestDatabase::create().await.unwrap();
    let migrator = TenantMigrator::new(fixture_set());

    let status = migrator.status(&target(&db)).await.unwrap();
    assert_eq!(status.current_version, None);
    assert_eq!(status.pending, FIXTURE_VERSIONS);
    assert!(!status.is_up_to_date() && status.is_consistent());
    assert!(
        !table_exists(&db, "_sqlx_migrations").await,
        "status must not create the table"
    );

    migrator.apply(&target(&db)).await.unwrap();
    let status = migrator.status(&target(&db)).await.unwrap();
    assert!(status.is_up_to_date());
    assert_eq!(status.applied, FIXTURE_VERSIONS);
    assert_eq!(status.current_version, Some(FIXTURE_VERSIONS[2]));
}

#[tokio::test]
async fn new_migrations_are_applied_on_top_of_old_ones() {
    let db = TestDatabase::create().await.unwrap();
    let first = MigrationSet::builder()
        .adhoc("1_a", "CREATE TABLE a (id INT);")
        .build()
        .unwrap();
    TenantMigrator::new(first)
        .apply(&target(&db))
        .await
        .unwrap();

    let second = MigrationSet::builder()
        .adhoc("1_a", "CREATE TABLE a (id INT);")
        .adhoc(
            "20240127_add_new_field",
            "ALTER TABLE a ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);",
        )
        .build()
        .unwrap();
    let outcome = TenantMigrator::new(second)
        .apply(&target(&db))
        .await
        .unwrap();
    assert_eq!(
        (outcome.from_version, outcome.to_version),
        (Some(1), Some(20240127))
    );
    assert_eq!(outcome.steps.len(), 1);
    assert_eq!(outcome.steps[0].description, "add new field");
    assert!(column_exists(&db, "a", "new_field").await);
}

#[tokio::test]
async fn revert_runs_down_migrations_newest_first() {
    let db = TestDatabase::create().await.unwrap();
    let migrator = TenantMigrator::new(fixture_set());
    migrator.apply(&target(&db)).await.unwrap();

    let outcome = migrator
        .revert(&target(&db), FIXTURE_VERSIONS[0])
        .await
        .unwrap();
    let reverted: Vec<_> = outcome.steps.iter().map(|s| s.version).collect();
    assert_eq!(reverted, [FIXTURE_VERSIONS[2], FIXTURE_VERSIONS[1]]);
    assert_eq!(outcome.to_version, Some(FIXTURE_VERSIONS[0]));
    assert_eq!(history(&db).await, [(FIXTURE_VERSIONS[0], true)]);
    assert!(!column_exists(&db, "items", "price").await);
    assert!(!table_exists(&db, "items_name_idx").await);

    let status = migrator.status(&target(&db)).await.unwrap();
    assert_eq!(status.pending, FIXTURE_VERSIONS[1..]);

    let all = migrator.revert(&target(&db), 0).await.unwrap();
    assert_eq!(all.to_version, None);
    assert!(!table_exists(&db, "items").await);
    assert!(history(&db).await.is_empty());

    // And forward again.
    assert_eq!(migrator.apply(&target(&db)).await.unwrap().steps.len(), 3);
}

#[tokio::test]
async fn revert_refuses_an_irreversible_migration_before_touching_anything() {
    let db = TestDatabase::create().await.unwrap();
    let set = MigrationSet::builder()
        .file("1_a.up.sql", "CREATE TABLE a (id INT);")
        .file("1_a.down.sql", "DROP TABLE a;")
        .file("2_b.sql", "CREATE TABLE b (id INT);")
        .file("3_c.up.sql", "CREATE TABLE c (id INT);")
        .file("3_c.down.sql", "DROP TABLE c;")
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(set);
    migrator.apply(&target(&db)).await.unwrap();

    let error = migrator.revert(&target(&db), 0).await.unwrap_err();
    assert!(
        matches!(error, MigrateError::NotReversible { version: 2 }),
        "{error}"
    );
    assert_eq!(history(&db).await.len(), 3, "nothing reverted");
    assert!(table_exists(&db, "c").await);
}

#[tokio::test]
async fn a_failing_down_migration_keeps_its_history_row_and_stops_the_revert() {
    let db = TestDatabase::create().await.unwrap();
    let set = MigrationSet::builder()
        .file("1_a.up.sql", "CREATE TABLE a (id INT);")
        .file("1_a.down.sql", "DROP TABLE a;")
        .file(
            "2_b.up.sql",
            "CREATE TABLE b (id INT);\nCREATE TABLE c (id INT);",
        )
        .file("2_b.down.sql", "DROP TABLE c;\nDROP TABEL b;")
        .file("3_d.up.sql", "CREATE TABLE d (id INT);")
        .file("3_d.down.sql", "DROP TABLE d;")
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(set);
    migrator.apply(&target(&db)).await.unwrap();

    let error = migrator.revert(&target(&db), 0).await.unwrap_err();
    match &error {
        MigrateError::Execute {
            version: 2,
            file,
            line: Some(2),
            ..
        } => assert_eq!(file, "2_b.down.sql"),
        other => panic!("expected the down file's error, got {other}"),
    }
    // 3 was reverted with its row; 2's transaction rolled back whole; 1 untouched.
    assert_eq!(history(&db).await, [(1, true), (2, true)]);
    assert!(!table_exists(&db, "d").await);
    assert!(table_exists(&db, "c").await && table_exists(&db, "a").await);
}

#[tokio::test]
async fn timeouts_are_local_to_the_migration_transaction() {
    let db = TestDatabase::create().await.unwrap();
    let set = MigrationSet::builder()
        .adhoc(
            "1_capture",
            "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout, \
             current_setting('statement_timeout') AS statement_timeout;",
        )
        .adhoc(
            "2_capture_no_tx",
            "-- no-transaction\nCREATE TABLE seen_no_tx AS SELECT current_setting('lock_timeout') AS lock_timeout;",
        )
        .build()
        .unwrap();
    let options = MigrateOptions::default()
        .with_lock_timeout(Some(Duration::from_millis(1500)))
        .with_statement_timeout(Some(Duration::from_secs(42)));
    let migrator = TenantMigrator::new(set).with_options(options);
    let mut conn = connect(&db).await;
    migrator.apply_postgres(&mut conn).await.unwrap();

    let seen: (String, String) = sqlx::query_as("SELECT lock_timeout, statement_timeout FROM seen")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, ("1500ms".to_owned(), "42s".to_owned()));
    let no_tx: String = sqlx::query_scalar("SELECT lock_timeout FROM seen_no_tx")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(no_tx, "1500ms");
    let after: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, "0", "the caller's connection keeps its own settings");
}

#[tokio::test]
async fn lock_timeout_stops_a_migration_queueing_behind_a_long_transaction() {
    let db = TestDatabase::create().await.unwrap();
    let base = MigrationSet::builder()
        .adhoc("1_a", "CREATE TABLE a (id INT);")
        .build()
        .unwrap();
    TenantMigrator::new(base).apply(&target(&db)).await.unwrap();

    // A long-running reader holds ACCESS SHARE on `a`.
    let mut reader = connect(&db).await;
    let mut tx = reader.begin().await.unwrap();
    sqlx::query("SELECT * FROM a")
        .fetch_all(&mut *tx)
        .await
        .unwrap();

    let set = MigrationSet::builder()
        .adhoc("1_a", "CREATE TABLE a (id INT);")
        .adhoc("2_b", "ALTER TABLE a ADD COLUMN b INT;")
        .build()
        .unwrap();
    let options = MigrateOptions::default().with_lock_timeout(Some(Duration::from_millis(200)));
    let error = TenantMigrator::new(set)
        .with_options(options)
        .apply(&target(&db))
        .await
        .unwrap_err();
    match &error {
        MigrateError::Execute {
            version: 2, code, ..
        } => assert_eq!(code.as_deref(), Some("55P03")),
        other => panic!("expected a lock timeout, got {other}"),
    }
    assert!(error.is_retryable());
    tx.rollback().await.unwrap();
    assert_eq!(history(&db).await, [(1, true)]);
    assert!(!column_exists(&db, "a", "b").await);
}

#[tokio::test]
async fn schema_migrator_trait_reports_versions_and_classifies_errors() {
    let db = TestDatabase::create().await.unwrap();
    let migrator: Box<dyn SchemaMigrator> = Box::new(TenantMigrator::new(fixture_set()));
    let tenant = TenantId::new("acme").unwrap();

    let report = migrator.migrate(&tenant, &target(&db)).await.unwrap();
    assert_eq!(
        (report.from_version, report.to_version, report.applied),
        (None, Some(FIXTURE_VERSIONS[2]), 3)
    );
    let report = migrator.migrate(&tenant, &target(&db)).await.unwrap();
    assert_eq!(report.applied, 0);

    let unreachable = url("postgres://postgres@127.0.0.1:1/nowhere");
    let error = migrator.migrate(&tenant, &unreachable).await.unwrap_err();
    assert!(error.is_retryable());
    assert!(matches!(
        error.downcast_ref::<MigrateError>(),
        Some(MigrateError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn a_session_reads_status_then_applies_up_to_a_version_on_one_connection() {
    let db = TestDatabase::create().await.unwrap();
    let migrator = TenantMigrator::new(fixture_set());
    let mut session = migrator.connect(&target(&db)).await.unwrap();

    assert_eq!(session.status().await.unwrap().pending, FIXTURE_VERSIONS);
    let outcome = session.apply_to(FIXTURE_VERSIONS[1]).await.unwrap();
    assert_eq!(
        outcome.steps.iter().map(|s| s.version).collect::<Vec<_>>(),
        FIXTURE_VERSIONS[..2]
    );
    assert_eq!(
        session.status().await.unwrap().pending,
        [FIXTURE_VERSIONS[2]]
    );
    assert_eq!(
        session
            .revert(FIXTURE_VERSIONS[0])
            .await
            .unwrap()
            .steps
            .len(),
        1
    );
    assert_eq!(session.apply().await.unwrap().steps.len(), 2);
    session.close().await;
    assert_eq!(history(&db).await.len(), 3);
}

#[tokio::test]
async fn descriptions_with_quotes_and_backslashes_are_recorded_verbatim() {
    let db = TestDatabase::create().await.unwrap();
    let set = MigrationSet::builder()
        .file(
            r"20240101000000_o'brien's \table\ ''quoted''.sql",
            "CREATE TABLE quoted (id INT)",
        )
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(set.clone());
    migrator.apply(&target(&db)).await.unwrap();

    let mut conn = connect(&db).await;
    let (description, checksum): (String, Vec<u8>) =
        sqlx::query_as("SELECT description, checksum FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let migration = set.iter().next().unwrap();
    assert!(description.contains(r"o'brien's \table\ ''quoted''"));
    assert_eq!(description, migration.description());
    assert_eq!(checksum, migration.checksum());
}

#[tokio::test]
async fn a_history_row_that_cannot_be_written_undoes_its_step() {
    let db = TestDatabase::create().await.unwrap();
    let migrator = TenantMigrator::new(fixture_set());
    let mut conn = connect(&db).await;
    // The history table refuses the second fixture version (a transactional one).
    sqlx::raw_sql(&format!(
        "{ddl}; ALTER TABLE _sqlx_migrations ADD CONSTRAINT refuse_last CHECK (version <> {refused})",
        ddl = "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
               installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
               checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
        refused = FIXTURE_VERSIONS[1],
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    let error = migrator.apply(&target(&db)).await.unwrap_err();
    assert!(
        matches!(error, MigrateError::History { during, .. } if during.contains("_sqlx_migrations")),
        "{error:?}"
    );
    assert!(error.to_string().contains("_sqlx_migrations"), "{error}");
    // The first version landed; the refused one left nothing behind.
    assert_eq!(history(&db).await, vec![(FIXTURE_VERSIONS[0], true)]);
    assert!(!column_exists(&db, "items", "price").await);
}

/// Applies a one-file set whose SQL fails, and returns the error.
async fn apply_broken(db: &TestDatabase, file: &str, sql: &str) -> MigrateError {
    let set = MigrationSet::builder().file(file, sql).build().unwrap();
    TenantMigrator::new(set)
        .apply(&target(db))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_step_left_open_is_the_steps_error_with_its_line() {
    let db = TestDatabase::create().await.unwrap();
    // An unfinished last statement: the text sent after the step must not take
    // the blame (nor swallow the history row's statement).
    let error = apply_broken(
        &db,
        "1_open.sql",
        "CREATE TABLE fine (id INT);\nCREATE TABLE open (id INT",
    )
    .await;
    match &error {
        MigrateError::Execute {
            version: 1,
            file,
            line: Some(2),
            code: Some(code),
            ..
        } => assert_eq!((file.as_str(), code.as_str()), ("1_open.sql", "42601")),
        other => panic!("expected the step's syntax error, got {other:?}"),
    }
    assert!(!table_exists(&db, "fine").await, "rolled back");
    assert!(history(&db).await.is_empty());

    // An unterminated string reaches into the history row's statement.
    let error = apply_broken(&db, "1_quote.sql", "CREATE TABLE q (id INT);\nSELECT 'x)").await;
    assert!(
        matches!(error, MigrateError::Execute { version: 1, .. }),
        "{error:?}"
    );
    assert!(!table_exists(&db, "q").await && history(&db).await.is_empty());
}
