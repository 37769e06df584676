//! Bad input and faults on real PostgreSQL: each leaves the history exact and
//! returns a typed error.

mod support;

use std::time::Duration;

use sqlx::Connection;
use support::*;
use tenancy_core::testing::TestDatabase;
use tenant_migrate::{MigrateError, MigrateOptions, MigrationSet, TenantMigrator};

#[tokio::test]
async fn syntax_error_rolls_back_and_names_file_and_line() {
    let db = TestDatabase::create().await.unwrap();
    let set = MigrationSet::builder()
        .file("1_ok.sql", "CREATE TABLE ok_table (id INT);")
        .file(
            "2_broken.sql",
            "CREATE TABLE half_done (id INT);\n-- a comment\nCREATE TABEL broken (id INT);\n",
        )
        .build()
        .unwrap();

    let error = TenantMigrator::new(set)
        .apply(&target(&db))
        .await
        .unwrap_err();
    match &error {
        MigrateError::Execute {
            version,
            file,
            line,
            code,
            no_tx,
            ..
        } => {
            assert_eq!(
                (*version, file.as_str(), *line, *no_tx),
                (2, "2_broken.sql", Some(3), false)
            );
            assert_eq!(code.as_deref(), Some("42601"));
        }
        other => panic!("expected an execute error, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("2_broken.sql") && message.contains("line 3"),
        "{message}"
    );
    assert!(!error.is_retryable());
    assert_eq!(history(&db).await, [(1, true)]);
    assert!(table_exists(&db, "ok_table").await);
    assert!(
        !table_exists(&db, "half_done").await,
        "the failed migration's transaction was rolled back"
    );
}

#[tokio::test]
async fn unreachable_server_is_a_retryable_typed_error() {
    let migrator = TenantMigrator::new(fixture_set()).with_options(quick_options());
    let error = migrator
        .apply(&url("postgres://app:hunter2@127.0.0.1:1/tenant_x"))
        .await
        .unwrap_err();
    assert!(matches!(error, MigrateError::Unreachable { .. }), "{error}");
    assert!(error.is_retryable());
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "password leaked: {shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

#[tokio::test]
async fn refused_credentials_are_a_permanent_typed_error_and_nothing_is_written() {
    let db = TestDatabase::create().await.unwrap();
    let mut bad = db
        .url()
        .expose()
        .replacen("postgres@", "no_such_role:wrong_password@", 1);
    if !bad.contains("no_such_role") {
        bad = bad.replacen("://", "://no_such_role:wrong_password@", 1);
    }
    let error = TenantMigrator::new(fixture_set())
        .apply(&url(&bad))
        .await
        .unwrap_err();
    assert!(
        matches!(error, MigrateError::Authentication { .. }),
        "{error}"
    );
    assert!(!error.is_retryable());
    assert!(!format!("{error} {error:?}").contains("wrong_password"));
    assert!(!table_exists(&db, "_sqlx_migrations").await);
}

#[tokio::test]
async fn missing_database_is_a_typed_error() {
    let db = TestDatabase::create().await.unwrap();
    let missing = db.url().with_database("tk_test_does_not_exist");
    let error = TenantMigrator::new(fixture_set())
        .status(&tenancy_core::DatabaseTarget::new(missing))
        .await
        .unwrap_err();
    assert!(
        matches!(error, MigrateError::DatabaseMissing { .. }),
        "{error}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn migration_edited_after_apply_is_refused_and_nothing_is_applied() {
    let db = TestDatabase::create().await.unwrap();
    let original = MigrationSet::builder()
        .file("1_a.sql", "CREATE TABLE a (id INT);")
        .build()
        .unwrap();
    TenantMigrator::new(original)
        .apply(&target(&db))
        .await
        .unwrap();

    let edited = MigrationSet::builder()
        .file("1_a.sql", "CREATE TABLE a (id BIGINT);")
        .file("2_b.sql", "CREATE TABLE b (id INT);")
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(edited);
    let error = migrator.apply(&target(&db)).await.unwrap_err();
    assert!(
        matches!(&error, MigrateError::ChecksumMismatch { version: 1, file } if file == "1_a.sql"),
        "{error}"
    );
    assert!(!table_exists(&db, "b").await);
    assert_eq!(history(&db).await, [(1, true)]);

    let status = migrator.status(&target(&db)).await.unwrap();
    assert_eq!(
        (status.mismatched.as_slice(), status.pending.as_slice()),
        (&[1][..], &[2][..])
    );
}

#[tokio::test]
async fn dirty_history_is_refused() {
    let db = TestDatabase::create().await.unwrap();
    let set = fixture_set();
    let migrator = TenantMigrator::new(set.clone());
    migrator.apply(&target(&db)).await.unwrap();
    let mut conn = connect(&db).await;
    sqlx::query("UPDATE _sqlx_migrations SET success = FALSE WHERE version = $1")
        .bind(FIXTURE_VERSIONS[1])
        .execute(&mut conn)
        .await
        .unwrap();

    let error = migrator.revert(&target(&db), 0).await.unwrap_err();
    assert!(
        matches!(error, MigrateError::Dirty { version } if version == FIXTURE_VERSIONS[1]),
        "{error}"
    );
    assert_eq!(history(&db).await.len(), 3);
    assert_eq!(
        migrator.status(&target(&db)).await.unwrap().dirty,
        Some(FIXTURE_VERSIONS[1])
    );
}

#[tokio::test]
async fn two_migrators_at_once_apply_exactly_once() {
    let db = TestDatabase::create().await.unwrap();
    open_gate(&db, 0.5).await;
    let patient = MigrateOptions::default().with_lock_wait(Duration::from_secs(20));
    let migrator = TenantMigrator::new(slow_set()).with_options(patient);
    let target = target(&db);
    let (a, b) = tokio::join!(migrator.apply(&target), migrator.apply(&target));
    let applied = [a.unwrap().steps.len(), b.unwrap().steps.len()];
    assert_eq!(
        applied.iter().sum::<usize>(),
        1,
        "exactly one applied, the other waited: {applied:?}"
    );
    assert_eq!(history(&db).await, [(1, true)]);
    // sqlx's unit: nanoseconds (the migration slept 0.5 s).
    let nanos: i64 = sqlx::query_scalar("SELECT execution_time FROM _sqlx_migrations")
        .fetch_one(&mut connect(&db).await)
        .await
        .unwrap();
    assert!((500_000_000..60_000_000_000).contains(&nanos), "{nanos}");
}

#[tokio::test]
async fn a_migrator_that_cannot_get_the_lock_reports_locked() {
    let db = TestDatabase::create().await.unwrap();
    open_gate(&db, 2.0).await;
    let first = TenantMigrator::new(slow_set());
    let second = TenantMigrator::new(slow_set()).with_options(quick_options());
    let target = target(&db);
    let running = tokio::spawn({
        let target = target.clone();
        async move { first.apply(&target).await }
    });
    wait_for_migration_lock(&db).await;

    let error = second.apply(&target).await.unwrap_err();
    assert!(error.is_locked() && error.is_retryable(), "{error}");
    assert!(error.to_string().contains("lock"), "{error}");
    assert_eq!(running.await.unwrap().unwrap().steps.len(), 1);
    assert_eq!(history(&db).await, [(1, true)]);
}

#[tokio::test]
async fn connection_killed_mid_migration_then_rerun_applies_exactly_once() {
    let db = TestDatabase::create().await.unwrap();
    open_gate(&db, 30.0).await;
    let migrator = TenantMigrator::new(slow_set());
    let target = target(&db);
    let running = tokio::spawn({
        let (migrator, target) = (migrator.clone(), target.clone());
        async move { migrator.apply(&target).await }
    });

    let mut killer = connect(&db).await;
    let mut killed = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        killed = sqlx::query_scalar::<_, i64>(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut killer)
        .await
        .unwrap();
        if killed > 0 {
            break;
        }
    }
    assert_eq!(
        killed, 1,
        "the migration's backend was found and terminated"
    );
    let error = running.await.unwrap().unwrap_err();
    assert!(
        matches!(error, MigrateError::ConnectionLost { .. }),
        "{error}"
    );
    assert!(error.is_retryable());
    assert!(
        history(&db).await.is_empty(),
        "nothing recorded for the killed run"
    );
    assert!(
        !table_exists(&db, "before_sleep").await,
        "the killed transaction was rolled back"
    );

    open_gate(&db, 0.0).await;
    let rerun = migrator.apply(&target).await.unwrap();
    assert_eq!(rerun.steps.len(), 1);
    assert!(table_exists(&db, "before_sleep").await && table_exists(&db, "after_sleep").await);
    assert!(!migrator.apply(&target).await.unwrap().changed());
    assert_eq!(history(&db).await, [(1, true)]);
    killer.close().await.unwrap();
}

#[tokio::test]
async fn passwords_never_show_in_sessions_or_errors() {
    let db = TestDatabase::create().await.unwrap();
    // Check the password DATABASE_URL has; without one, add one (a trusting server ignores it).
    let raw = db.url().expose().to_owned();
    let (scheme, rest) = raw.split_once("://").unwrap();
    let (user_info, host) = rest.split_once('@').unwrap();
    let (with_password, password) = match user_info.split_once(':') {
        Some((_, password)) => (raw.clone(), password.to_owned()),
        None => (
            format!("{scheme}://{user_info}:s3cret-pw@{host}"),
            "s3cret-pw".to_owned(),
        ),
    };
    let broken = MigrationSet::builder()
        .file("1_broken.sql", "CREATE TABEL x ();")
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(broken);

    let session = migrator.connect(&url(&with_password)).await.unwrap();
    assert!(!format!("{session:?} {migrator:?}").contains(&password));
    session.close().await;
    let error = migrator.apply(&url(&with_password)).await.unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains(&password),
        "{error:?}"
    );
}

/// Advisory locks held by the session of `conn`.
async fn advisory_locks_held(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_failed_migration_releases_the_lock_on_a_connection_that_stays_open() {
    let db = TestDatabase::create().await.unwrap();
    let set = MigrationSet::builder()
        .file("1_ok.sql", "CREATE TABLE ok_table (id INT);")
        .file("2_broken.sql", "CREATE TABEL broken (id INT);")
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(set).with_options(quick_options());
    let mut conn = connect(&db).await;

    let error = migrator.apply_postgres(&mut conn).await.unwrap_err();
    assert!(
        matches!(error, MigrateError::Execute { version: 2, .. }),
        "{error}"
    );
    assert_eq!(advisory_locks_held(&mut conn).await, 0, "lock released");
    // The failed transaction is rolled back: the connection is usable, and
    // another migrator is not locked out.
    let other = migrator.apply(&target(&db)).await.unwrap_err();
    assert!(!other.is_locked(), "{other}");
    assert_eq!(history(&db).await, [(1, true)]);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_no_transaction_migration_records_nothing_and_says_it_may_be_partial() {
    let db = TestDatabase::create().await.unwrap();
    // Two concurrent builds in one file: PostgreSQL runs a multi-statement query
    // as one implicit transaction and refuses them, as the linter warns.
    let index_sql = "-- no-transaction\n\
                     CREATE INDEX CONCURRENTLY IF NOT EXISTS items_a ON items (a);\n\
                     CREATE INDEX CONCURRENTLY IF NOT EXISTS items_b ON items (b);\n";
    assert!(tenant_migrate::lint(index_sql)
        .iter()
        .any(|f| f.rule == tenant_migrate::Rule::BanConcurrentIndexCreationInTransaction));
    let set = MigrationSet::builder()
        .file("1_items.sql", "CREATE TABLE items (a INT, b INT);")
        .file("2_indexes.sql", index_sql)
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(set).with_options(quick_options());
    let mut conn = connect(&db).await;
    sqlx::query("SET lock_timeout = '7s'")
        .execute(&mut conn)
        .await
        .unwrap();

    let error = migrator.apply_postgres(&mut conn).await.unwrap_err();
    match &error {
        MigrateError::Execute {
            version: 2,
            file,
            code,
            no_tx: true,
            ..
        } => assert_eq!(
            (file.as_str(), code.as_deref()),
            ("2_indexes.sql", Some("25001"))
        ),
        other => panic!("expected a no-transaction execute error, got {other}"),
    }
    assert!(
        error.to_string().contains("may have applied in part"),
        "{error}"
    );
    assert_eq!(history(&db).await, [(1, true)], "nothing recorded for 2");
    assert_eq!(advisory_locks_held(&mut conn).await, 0, "lock released");
    let lock_timeout: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(lock_timeout, "7s", "the caller's own setting is restored");
    conn.close().await.unwrap();
}
