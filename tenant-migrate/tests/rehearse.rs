//! Rehearsals on real PostgreSQL and SQLite: the pending migrations run on a copy
//! of the tenant's database, report their locks, durations and schema, and leave
//! the tenant untouched and no copy behind, whether they pass, fail or are
//! cancelled.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::DatabaseTarget;
use tenant_migrate::fingerprint::{read_schema, SchemaScope};
use tenant_migrate::rehearse::{CopyMethod, Rehearsal, RehearsalError};
use tenant_migrate::{MigrateOptions, MigrationSet, TenantMigrator};

const CREATE_ITEMS: &str = "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT);\
     INSERT INTO items VALUES (1, 'spoon'), (2, NULL);";
const ADD_NOTE: &str = "ALTER TABLE items ADD COLUMN note TEXT;";
const INDEX_NAME: &str = "CREATE INDEX items_name_idx ON items (name);";
/// Fails only where the tenant's rows came along: item 2 has no name.
const REQUIRE_NAME: &str = "ALTER TABLE items ALTER COLUMN name SET NOT NULL;";

fn set(files: &[(&str, &str)]) -> MigrationSet {
    files
        .iter()
        .fold(MigrationSet::builder(), |builder, (name, sql)| {
            builder.file(*name, *sql)
        })
        .build()
        .unwrap()
}

fn initial() -> MigrationSet {
    set(&[("1_create_items.sql", CREATE_ITEMS)])
}

async fn migrated_postgres() -> (TestDatabase, DatabaseTarget) {
    let db = TestDatabase::create_with_prefix("tk_rehearse")
        .await
        .unwrap();
    let target = DatabaseTarget::new(db.url().clone());
    TenantMigrator::new(initial()).apply(&target).await.unwrap();
    (db, target)
}

/// The scratch databases left on the server beside `db`.
async fn scratch_databases(db: &TestDatabase) -> Vec<String> {
    let mut conn = PgConnection::connect(&tenancy_core::testing::server_url())
        .await
        .unwrap();
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{}_rehearsal_%", db.name()))
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    names
}

async fn fingerprint(target: &DatabaseTarget) -> String {
    read_schema(target, &SchemaScope::default(), &MigrateOptions::default())
        .await
        .unwrap()
        .fingerprint()
        .to_string()
}

#[tokio::test]
async fn a_rehearsal_reports_each_migrations_locks_and_schema_and_leaves_the_tenant_alone() {
    let (db, canary) = migrated_postgres().await;
    let before = fingerprint(&canary).await;
    let next = set(&[
        ("1_create_items.sql", CREATE_ITEMS),
        ("2_add_note.sql", ADD_NOTE),
        ("3_index_name.sql", INDEX_NAME),
    ]);

    let report = Rehearsal::new(TenantMigrator::new(next.clone()))
        .copy_method(CopyMethod::Template)
        .run(&canary)
        .await
        .unwrap();

    assert!(report.passed(), "{report:?}");
    assert_eq!(report.copy_method, Some(CopyMethod::Template));
    assert_eq!(report.from_version, Some(1));
    assert_eq!(report.fingerprint_before.to_string(), before);
    let versions: Vec<i64> = report.migrations.iter().map(|m| m.version).collect();
    assert_eq!(versions, [2, 3]);
    let add_note: Vec<String> = report.migrations[0]
        .locks
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        add_note,
        ["AccessExclusiveLock on public.items"],
        "{report:?}"
    );
    let index = &report.migrations[1].locks;
    assert!(
        index
            .iter()
            .any(|l| l.mode == "ShareLock" && l.relation == "public.items"),
        "{index:?}"
    );
    assert!(index.iter().all(|l| !l.blocks_reads()), "{index:?}");
    let read_blocking: Vec<i64> = report.read_blocking_locks().map(|(v, _)| v).collect();
    assert_eq!(read_blocking, [2]);
    let (after_note, after_index) = (
        report.migrations[0].fingerprint_after,
        report.migrations[1].fingerprint_after,
    );
    assert_ne!(after_note, report.fingerprint_before);
    assert_ne!(after_index, after_note);

    // The canary itself did not move, and the copy is gone.
    let status = TenantMigrator::new(next).status(&canary).await.unwrap();
    assert_eq!(status.current_version, Some(1));
    assert_eq!(fingerprint(&canary).await, before);
    assert_eq!(scratch_databases(&db).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_busy_tenant_is_copied_by_dump_and_restore_with_its_rows() {
    let (db, canary) = migrated_postgres().await;
    // The tenant's service is connected: the default copy goes on beside it.
    let mut busy = PgConnection::connect(canary.url.expose()).await.unwrap();
    let next = set(&[
        ("1_create_items.sql", CREATE_ITEMS),
        ("2_require_name.sql", REQUIRE_NAME),
    ]);

    let report = Rehearsal::new(TenantMigrator::new(next.clone()))
        .run(&canary)
        .await
        .unwrap();

    assert_eq!(report.copy_method, Some(CopyMethod::DumpRestore));
    // The rows came along: the migration fails on item 2 as it would on the tenant.
    let failure = report.failure.as_ref().expect("the migration must fail");
    assert_eq!(failure.version, 2);
    assert!(failure.error.contains("null"), "{}", failure.error);
    assert!(report.migrations.is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&mut busy)
        .await
        .unwrap();
    assert_eq!(rows, 2);
    busy.close().await.unwrap();
    let status = TenantMigrator::new(next).status(&canary).await.unwrap();
    assert_eq!((status.current_version, status.dirty), (Some(1), None));
    assert_eq!(scratch_databases(&db).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_forced_template_copy_that_cannot_be_made_is_a_clear_error() {
    let (db, canary) = migrated_postgres().await;
    let busy = PgConnection::connect(canary.url.expose()).await.unwrap();
    let next = set(&[
        ("1_create_items.sql", CREATE_ITEMS),
        ("2_add_note.sql", ADD_NOTE),
    ]);

    let error = Rehearsal::new(TenantMigrator::new(next))
        .copy_method(CopyMethod::Template)
        .run(&canary)
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            RehearsalError::Copy {
                method: CopyMethod::Template,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("being accessed by other users"),
        "{error}"
    );
    busy.close().await.unwrap();
    assert_eq!(scratch_databases(&db).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_cancelled_rehearsal_removes_its_copy() {
    let (db, canary) = migrated_postgres().await;
    let next = set(&[
        ("1_create_items.sql", CREATE_ITEMS),
        ("2_slow.sql", "SELECT pg_sleep(60);"),
    ]);
    let scratch_busy = async {
        // Cancel once the slow migration is running on the copy.
        for _ in 0..400 {
            let mut conn = PgConnection::connect(&tenancy_core::testing::server_url())
                .await
                .unwrap();
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1 AND query LIKE '%pg_sleep(60)%'",
            )
            .bind(format!("{}_rehearsal_%", db.name()))
            .fetch_one(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            if running > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the slow migration never started on the copy");
    };

    let error = Rehearsal::new(TenantMigrator::new(next))
        .run_until(&canary, scratch_busy)
        .await
        .unwrap_err();

    assert!(matches!(error, RehearsalError::Cancelled), "{error:?}");
    assert_eq!(scratch_databases(&db).await, Vec::<String>::new());
}

#[tokio::test]
async fn nothing_pending_copies_nothing() {
    let (_db, canary) = migrated_postgres().await;
    let report = Rehearsal::new(TenantMigrator::new(initial()))
        .run(&canary)
        .await
        .unwrap();
    assert_eq!(report.copy_method, None);
    assert!(report.passed() && report.migrations.is_empty());
}

#[tokio::test]
async fn sqlite_tenants_are_rehearsed_on_a_file_copy() {
    let file = TempSqlite::new();
    let canary = file.target().unwrap();
    TenantMigrator::new(initial()).apply(&canary).await.unwrap();
    let before = fingerprint(&canary).await;
    let dir = file.path().parent().unwrap().to_owned();
    let stem = file
        .path()
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let copies = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&format!("{stem}.rehearsal-")))
            .collect::<Vec<_>>()
    };

    let passing = set(&[
        ("1_create_items.sql", CREATE_ITEMS),
        ("2_add_note.sql", ADD_NOTE),
    ]);
    let report = Rehearsal::new(TenantMigrator::new(passing.clone()))
        .run(&canary)
        .await
        .unwrap();
    assert_eq!(report.copy_method, Some(CopyMethod::FileCopy));
    assert!(report.passed(), "{report:?}");
    assert_eq!(report.migrations.len(), 1);
    assert!(report.migrations[0].locks.is_empty());
    assert_ne!(
        report.migrations[0].fingerprint_after,
        report.fingerprint_before
    );

    // SQLite cannot add NOT NULL in place; a table rebuild that copies item 2
    // fails on its missing name, on the copy only.
    let failing = set(&[
        ("1_create_items.sql", CREATE_ITEMS),
        (
            "2_require_name.sql",
            "CREATE TABLE items_new (id BIGINT PRIMARY KEY, name TEXT NOT NULL);\
             INSERT INTO items_new SELECT id, name FROM items;",
        ),
    ]);
    let report = Rehearsal::new(TenantMigrator::new(failing))
        .run(&canary)
        .await
        .unwrap();
    let failure = report.failure.expect("the rebuild must fail on item 2");
    assert_eq!(failure.version, 2);
    assert!(failure.error.contains("NOT NULL"), "{}", failure.error);

    let status = TenantMigrator::new(passing).status(&canary).await.unwrap();
    assert_eq!(status.current_version, Some(1));
    assert_eq!(fingerprint(&canary).await, before);
    assert_eq!(copies(), Vec::<String>::new());
}

async fn admin(sql: &str) {
    let mut conn = PgConnection::connect(&tenancy_core::testing::server_url())
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_copy_left_behind_a_day_ago_is_removed_by_the_next_rehearsal() {
    let (db, canary) = migrated_postgres().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale = format!("{}_rehearsal_{}_beef", db.name(), now - 2 * 24 * 3600);
    let running = format!("{}_rehearsal_{}_cafe", db.name(), now - 60);
    admin(&format!("CREATE DATABASE \"{stale}\"")).await;
    admin(&format!("CREATE DATABASE \"{running}\"")).await;
    let next = set(&[
        ("1_create_items.sql", CREATE_ITEMS),
        ("2_add_note.sql", ADD_NOTE),
    ]);

    let report = Rehearsal::new(TenantMigrator::new(next))
        .run(&canary)
        .await
        .unwrap();

    assert!(report.passed(), "{report:?}");
    // The day-old copy is gone; one made a minute ago may be another rehearsal's.
    assert_eq!(scratch_databases(&db).await, vec![running.clone()]);
    admin(&format!("DROP DATABASE \"{running}\"")).await;
}
