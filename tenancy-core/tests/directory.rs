//! One conformance suite run against every `TenantDirectory` store.

use std::collections::BTreeSet;

use tenancy_core::testing::TestDatabase;
use tenancy_core::{
    DatabaseExport, DatabaseTarget, DatabaseUrl, DirectoryError, ExportFormat,
    MemoryTenantDirectory, NewTenant, OffboardingStep, OnboardingStep, PostgresTenantDirectory,
    SqliteTenantDirectory, StoredExport, Tenant, TenantDirectory, TenantFilter, TenantId,
    TenantStatus,
};
use time::macros::datetime;

fn tenant(name: &str, tags: &[&str]) -> Tenant {
    let mut signup =
        NewTenant::new(name, &format!("admin@{}.example", name.to_lowercase())).unwrap();
    for tag in tags {
        signup = signup.with_tag(tag).unwrap();
    }
    signup.into_tenant(datetime!(2026-01-01 0:00 UTC))
}

fn id(s: &str) -> TenantId {
    TenantId::try_from(s).unwrap()
}

async fn conformance(dir: &dyn TenantDirectory) {
    // insert + get round-trip every field
    let mut acme = tenant("Acme", &["beta", "eu"]);
    dir.insert(&acme).await.unwrap();
    assert_eq!(dir.get(&acme.id).await.unwrap().as_ref(), Some(&acme));
    assert!(matches!(
        dir.insert(&acme).await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    assert_eq!(dir.get(&id("nobody")).await.unwrap(), None);

    // update bumps the revision and stores status, database and tags
    acme.status = TenantStatus::Failed {
        step: OnboardingStep::Migrate,
        reason: "boom".into(),
        attempts: 3,
    };
    acme.database = Some(
        DatabaseTarget::new(DatabaseUrl::parse("postgres://u:secret@h:5432/acme").unwrap())
            .with_transaction_pooler_url(
                DatabaseUrl::parse("postgres://u:secret@pool:6543/acme").unwrap(),
            )
            .with_external_ref("abcd1234")
            .with_provisioning_note("replaced project zyxw, which had ended INIT_FAILED"),
    );
    acme.tags = BTreeSet::from(["beta".to_owned()]);
    acme.updated_at = datetime!(2026-01-02 0:00 UTC);
    let stored = dir.update(&acme).await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(dir.get(&acme.id).await.unwrap().unwrap(), stored);

    // a stale copy is refused and changes nothing
    let mut stale = acme.clone();
    stale.name = "Stale".into();
    assert!(matches!(
        dir.update(&stale).await,
        Err(DirectoryError::Conflict { revision: 0, .. })
    ));
    assert_eq!(dir.get(&acme.id).await.unwrap().unwrap().name, "Acme");
    let missing = tenant("Ghost", &[]);
    assert!(matches!(
        dir.update(&missing).await,
        Err(DirectoryError::NotFound(_))
    ));

    // list filters by tag (any of), by id, and pages by id
    for (name, tags) in [
        ("Bravo", &["staging"][..]),
        ("Charlie", &["eu"]),
        ("Delta", &[]),
    ] {
        dir.insert(&tenant(name, tags)).await.unwrap();
    }
    let ids = |ts: Vec<Tenant>| ts.into_iter().map(|t| t.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(dir.list(&TenantFilter::all()).await.unwrap()),
        ["acme", "bravo", "charlie", "delta"]
    );
    assert_eq!(
        ids(dir
            .list(&TenantFilter::all().with_tag("staging").with_tag("eu"))
            .await
            .unwrap()),
        ["bravo", "charlie"]
    );
    assert_eq!(
        ids(dir
            .list(&TenantFilter::all().with_id(id("delta")).with_id(id("acme")))
            .await
            .unwrap()),
        ["acme", "delta"]
    );
    // by state (acme failed, the others pending), with tags and paging
    assert_eq!(
        ids(dir
            .list(&TenantFilter::all().with_status("failed"))
            .await
            .unwrap()),
        ["acme"]
    );
    assert_eq!(
        ids(dir
            .list(
                &TenantFilter::all()
                    .with_status("pending")
                    .with_tag("eu")
                    .limit(5)
            )
            .await
            .unwrap()),
        ["charlie"]
    );
    assert!(dir
        .list(&TenantFilter::all().with_status("ready"))
        .await
        .unwrap()
        .is_empty());
    let page = TenantFilter::all().limit(2);
    assert_eq!(ids(dir.list(&page).await.unwrap()), ["acme", "bravo"]);
    assert_eq!(
        ids(dir.list(&page.clone().after(id("bravo"))).await.unwrap()),
        ["charlie", "delta"]
    );
    assert!(dir.list(&page.after(id("delta"))).await.unwrap().is_empty());

    offboarding_states_persist(dir).await;
}

/// Every offboarding state, the export record included, round-trips and is found
/// by its name.
async fn offboarding_states_persist(dir: &dyn TenantDirectory) {
    let export = DatabaseExport::new(
        StoredExport::new("/exports/echo-1767225600.dump", 4096, "ab".repeat(32)),
        ExportFormat::PgDumpCustom,
        datetime!(2026-01-01 0:05 UTC),
    );
    let states = [
        TenantStatus::Offboarding {
            step: OffboardingStep::Pause,
            started_at: datetime!(2026-01-01 0:00 UTC),
            onboarded: true,
            export: Some(export.clone()),
            last_error: Some("connection refused".into()),
            attempts: 2,
            claimed_at: Some(datetime!(2026-01-01 0:06 UTC)),
        },
        TenantStatus::Retained {
            until: datetime!(2026-01-31 0:05 UTC),
            onboarded: true,
            export: Some(export.clone()),
        },
        TenantStatus::Deleted {
            at: datetime!(2026-01-31 1:00 UTC),
            export: Some(export),
        },
    ];
    let mut echo = dir.insert(&tenant("Echo", &[])).await.unwrap();
    for status in states {
        let name = status.name();
        echo.status = status;
        echo = dir.update(&echo).await.unwrap();
        assert_eq!(dir.get(&echo.id).await.unwrap().as_ref(), Some(&echo));
        let found = dir
            .list(&TenantFilter::all().with_status(name))
            .await
            .unwrap();
        assert_eq!(
            found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["echo"]
        );
    }
}

#[tokio::test]
async fn memory_directory_conforms() {
    conformance(&MemoryTenantDirectory::new()).await;
}

#[tokio::test]
async fn sqlite_directory_conforms() {
    let dir = SqliteTenantDirectory::connect("sqlite::memory:")
        .await
        .unwrap();
    conformance(&dir).await;
}

#[tokio::test]
async fn sqlite_directory_persists_across_reopen() {
    let folder = std::env::temp_dir().join(format!("tk-dir-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let url = format!("sqlite:{}", folder.join("tenants.db").display());
    {
        let dir = SqliteTenantDirectory::connect(&url).await.unwrap();
        dir.insert(&tenant("Acme", &[])).await.unwrap();
        dir.pool().close().await;
    }
    let dir = SqliteTenantDirectory::connect(&url).await.unwrap();
    assert!(dir.get(&id("acme")).await.unwrap().is_some());
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn postgres_directory_conforms() {
    let db = TestDatabase::create().await.unwrap();
    let dir = PostgresTenantDirectory::connect(db.url().expose())
        .await
        .unwrap();
    conformance(&dir).await;
    dir.pool().close().await;
}

#[tokio::test]
async fn postgres_directory_concurrent_updates_never_overwrite() {
    let db = TestDatabase::create().await.unwrap();
    let dir = PostgresTenantDirectory::connect(db.url().expose())
        .await
        .unwrap();
    let acme = dir.insert(&tenant("Acme", &[])).await.unwrap();
    let writers = (0..8).map(|i| {
        let dir = dir.clone();
        let mut copy = acme.clone();
        copy.name = format!("writer {i}");
        tokio::spawn(async move { dir.update(&copy).await })
    });
    let results = futures_join(writers).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, DirectoryError::Conflict { .. })));
    dir.pool().close().await;
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked_on() {
    let dir = SqliteTenantDirectory::connect("sqlite::memory:")
        .await
        .unwrap();
    dir.insert(&tenant("Acme", &[])).await.unwrap();
    sqlx::query("UPDATE tenancy_tenants SET status_detail = '{\"state\":\"exploded\"}'")
        .execute(dir.pool())
        .await
        .unwrap();
    let err = dir.get(&id("acme")).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("acme"));
}

/// `tenancy_tenants` as the first release created it, before `provisioning_notes`.
const FIRST_RELEASE_TABLE: &str = "CREATE TABLE tenancy_tenants (
    id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, admin_email TEXT NOT NULL,
    status TEXT NOT NULL, status_detail TEXT NOT NULL, database_url TEXT, pooled_url TEXT,
    external_ref TEXT, tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, revision INTEGER NOT NULL)";

fn with_note(mut tenant: Tenant) -> Tenant {
    tenant.database = Some(
        DatabaseTarget::new(DatabaseUrl::parse("postgres://u@h:5432/acme").unwrap())
            .with_provisioning_note("restored paused project abcd"),
    );
    tenant
}

#[tokio::test]
async fn sqlite_directory_upgrades_a_first_release_table() {
    let folder = std::env::temp_dir().join(format!("tk-dir-up-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let url = format!("sqlite:{}?mode=rwc", folder.join("tenants.db").display());
    let old = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::raw_sql(FIRST_RELEASE_TABLE)
        .execute(&old)
        .await
        .unwrap();
    // A tenant that became ready before notices were recorded.
    sqlx::raw_sql(
        "INSERT INTO tenancy_tenants VALUES ('bravo', 'Bravo', 'a@bravo.example', 'ready', \
         '{\"state\":\"ready\"}', NULL, NULL, NULL, '[]', '2026-01-01T00:00:00Z', \
         '2026-01-02T00:00:00Z', 3)",
    )
    .execute(&old)
    .await
    .unwrap();
    old.close().await;

    let dir = SqliteTenantDirectory::connect(&url).await.unwrap();
    let bravo = dir.get(&id("bravo")).await.unwrap().unwrap();
    assert_eq!(
        bravo.ready_notified_at,
        Some(datetime!(2026-01-02 0:00 UTC)),
        "told when it became ready: never again"
    );
    let acme = dir.insert(&with_note(tenant("Acme", &[]))).await.unwrap();
    assert_eq!(dir.get(&acme.id).await.unwrap().unwrap(), acme);
    dir.pool().close().await;
    // Opening again finds the column and leaves it be.
    let again = SqliteTenantDirectory::connect(&url).await.unwrap();
    assert_eq!(again.get(&acme.id).await.unwrap().unwrap(), acme);
    again.pool().close().await;
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn postgres_directory_upgrades_a_first_release_table() {
    let db = TestDatabase::create().await.unwrap();
    let old = sqlx::PgPool::connect(db.url().expose()).await.unwrap();
    let table = FIRST_RELEASE_TABLE
        .replace(
            "tags TEXT NOT NULL DEFAULT '[]'",
            "tags TEXT[] NOT NULL DEFAULT '{}'",
        )
        .replace("created_at TEXT", "created_at TIMESTAMPTZ")
        .replace("updated_at TEXT", "updated_at TIMESTAMPTZ")
        .replace("revision INTEGER", "revision BIGINT");
    sqlx::raw_sql(&table).execute(&old).await.unwrap();
    old.close().await;

    let dir = PostgresTenantDirectory::connect(db.url().expose())
        .await
        .unwrap();
    let acme = dir.insert(&with_note(tenant("Acme", &[]))).await.unwrap();
    assert_eq!(dir.get(&acme.id).await.unwrap().unwrap(), acme);
    dir.pool().close().await;
}

/// A table created by a release that predates a column gets the column (and its
/// backfill) when the directory opens, once, even with several processes opening at
/// once; the recorded schema version says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_later_reaches_an_existing_postgres_table_once() {
    let db = TestDatabase::create().await.unwrap();
    let pool = db.pool().await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE tenancy_tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, \
         admin_email TEXT NOT NULL, status TEXT NOT NULL, status_detail TEXT NOT NULL, \
         database_url TEXT, pooled_url TEXT, external_ref TEXT, tags TEXT[] NOT NULL DEFAULT '{}', \
         created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, revision BIGINT NOT NULL);
         INSERT INTO tenancy_tenants VALUES ('acme', 'Acme', 'a@acme.example', 'ready', '{\"state\": \"ready\"}', \
         NULL, NULL, NULL, '{}', now(), now(), 1)",
    )
    .execute(&pool)
    .await
    .unwrap();

    let (first, second) = tokio::join!(
        PostgresTenantDirectory::from_pool(pool.clone()),
        PostgresTenantDirectory::from_pool(pool.clone())
    );
    let directory = first.unwrap();
    second.unwrap();
    let version: i64 = sqlx::query_scalar(
        "SELECT version FROM tenancy_schema_versions WHERE component = 'tenancy_tenants'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(version, 3);
    let acme = directory
        .get(&TenantId::try_from("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    // The backfill ran: a tenant ready before notices were recorded is not told again.
    assert!(acme.ready_notified_at.is_some());
}

/// A database upgraded by a newer release is refused rather than written with an
/// older idea of its tables.
#[tokio::test]
async fn a_schema_newer_than_this_release_is_refused() {
    let dir = std::env::temp_dir().join(format!("tk-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("newer.db").display());
    let directory = SqliteTenantDirectory::connect(&url).await.unwrap();
    sqlx::query(
        "UPDATE tenancy_schema_versions SET version = 99 WHERE component = 'tenancy_tenants'",
    )
    .execute(directory.pool())
    .await
    .unwrap();
    let error = SqliteTenantDirectory::from_pool(directory.pool().clone())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("newer"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}
