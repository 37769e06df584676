//! The admin API of rollouts (`rollout_router`) called over HTTP, with SQLite
//! tenant databases and a control plane (stored catalog and state store) on
//! SQLite or PostgreSQL: a refused run stores nothing, and a migration that some
//! tenant may hold is never withdrawn nor replaced.
#![cfg(feature = "axum")]

use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use sqlx::Connection;
use tenancy_core::persistence::StorePoolOptions;
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::{
    DatabaseUrl, MemoryTenantDirectory, NewTenant, TenantDirectory, TenantFilter, TenantId,
    TenantStatus,
};
use tenant_migrate::http::{rollout_router, BackgroundTask, RolloutRoutes};
use tenant_migrate::rollout::store::{PostgresRolloutStore, RolloutStore, SqliteRolloutStore};
use tenant_migrate::{MigrationCatalog, MigrationSet, StoredCatalog};
use tower::ServiceExt;

/// Where the catalog and the rollout state live.
#[derive(Debug, Clone, Copy)]
enum Plane {
    Sqlite,
    Postgres,
}

/// What a control plane keeps alive: its files or its database.
#[allow(dead_code)]
enum Kept {
    Sqlite(TempSqlite, TempSqlite),
    Postgres(TestDatabase),
}

struct Api {
    router: Router,
    catalog: Arc<StoredCatalog>,
    /// The rollouts the routes started, not run until the test says so.
    background: Arc<Mutex<Vec<BackgroundTask>>>,
    tenant: TenantId,
    tenant_file: TempSqlite,
    _plane: Kept,
}

fn base_migrations() -> MigrationSet {
    MigrationSet::builder()
        .file(
            "1_create_notes.up.sql",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
        )
        .build()
        .unwrap()
}

/// The routes over one ready tenant (tagged nothing) on a SQLite file.
async fn api(plane: Plane) -> Api {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let tenant_file = TempSqlite::new();
    let mut tenant = NewTenant::new("Tenant 0", "admin@example.com")
        .unwrap()
        .into_tenant(time::OffsetDateTime::now_utc());
    tenant.status = TenantStatus::Ready;
    tenant.database = Some(tenant_file.target().unwrap());
    directory.insert(&tenant).await.unwrap();
    let tenant = directory.list(&TenantFilter::all()).await.unwrap()[0]
        .id
        .clone();

    let (pool, store, kept): (_, Arc<dyn RolloutStore>, _) = match plane {
        Plane::Sqlite => {
            let control = TempSqlite::new();
            let state = TempSqlite::new();
            let pool = StorePoolOptions::new()
                .open(&DatabaseUrl::parse(&control.url()).unwrap())
                .await
                .unwrap();
            let store = SqliteRolloutStore::open(&state.url()).await.unwrap();
            (pool, Arc::new(store), Kept::Sqlite(control, state))
        }
        Plane::Postgres => {
            let database = TestDatabase::create().await.unwrap();
            let pool = StorePoolOptions::new().open(database.url()).await.unwrap();
            let store = PostgresRolloutStore::connect(database.url()).await.unwrap();
            (pool, Arc::new(store), Kept::Postgres(database))
        }
    };
    let catalog = Arc::new(StoredCatalog::open(base_migrations(), pool).await.unwrap());
    let background: Arc<Mutex<Vec<BackgroundTask>>> = Arc::default();
    let queued = background.clone();
    let routes = RolloutRoutes::new(directory, store, catalog.clone())
        .on_background(move |task| queued.lock().unwrap().push(task));
    let router = Router::new()
        .nest("/migrations", rollout_router::<RolloutRoutes>())
        .with_state(routes);
    Api {
        router,
        catalog,
        background,
        tenant,
        tenant_file,
        _plane: kept,
    }
}

impl Api {
    async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn run(&self, version: &str, sql: &str, strategy: &str) -> (StatusCode, Value) {
        let body = json!({"migration_sql": sql, "version": version, "strategy": strategy});
        let request = Request::post("/migrations/run")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.call(request).await
    }

    async fn withdraw(&self, version: i64) -> (StatusCode, Value) {
        let request = Request::delete(format!("/migrations/{version}"))
            .body(Body::empty())
            .unwrap();
        self.call(request).await
    }

    /// Runs the rollouts started so far to their end.
    async fn run_background(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *self.background.lock().unwrap());
        for task in tasks {
            task.await;
        }
    }

    /// Forgets the rollouts started so far: recorded, never run.
    fn drop_background(&self) {
        self.background.lock().unwrap().clear();
    }

    async fn latest_stored(&self) -> Option<i64> {
        self.catalog.current().await.unwrap().latest_version()
    }

    /// The versions the tenant's database recorded as applied.
    async fn tenant_history(&self) -> Vec<i64> {
        let mut conn = sqlx::SqliteConnection::connect(&self.tenant_file.url())
            .await
            .unwrap();
        let versions =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY 1")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        versions
    }
}

async fn a_refused_run_stores_nothing(plane: Plane) {
    let api = api(plane).await;

    // No tenant is tagged `beta`: refused, and nothing is stored.
    let (status, body) = api
        .run(
            "20250101000000",
            "create table canary_only(x int);",
            "canary:tag=beta",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("the canary wave would be empty"), "{error}");
    assert_eq!(api.latest_stored().await, Some(1));
    assert!(api.background.lock().unwrap().is_empty());

    // An unknown strategy is refused alike.
    let (status, _) = api
        .run("20250101000000", "create table other(x int);", "sideways")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.latest_stored().await, Some(1));

    // The next run brings the tenant to its own migration only.
    let (status, body) = api
        .run("20250201000000", "create table later(x int);", "all")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.run_background().await;
    assert_eq!(api.tenant_history().await, vec![1, 20250201000000]);
    assert_eq!(api.latest_stored().await, Some(20250201000000));

    // A replacement refused for its strategy keeps the stored SQL: the same
    // version again with a strategy that cannot be planned changes nothing.
    let (status, body) = api
        .run("20250301000000", "create table later(x int);", "all")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.run_background().await; // fails: `later` exists
    assert_eq!(api.tenant_history().await, vec![1, 20250201000000]);
    let (status, body) = api
        .run(
            "20250301000000",
            "create table fixed(x int);",
            "canary:tag=beta",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let current = api.catalog.current().await.unwrap();
    let stored = current.iter().last().unwrap();
    assert_eq!(stored.version(), 20250301000000);
    assert_eq!(stored.sql(), "create table later(x int);");
}

async fn a_migration_applied_on_the_way_to_a_failed_target_is_not_withdrawn(plane: Plane) {
    let api = api(plane).await;

    // v1's rollout is recorded but never runs.
    let v1 = 20250101000000_i64;
    let (status, body) = api
        .run(&v1.to_string(), "create table first(x int);", "all")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.drop_background();
    // v2 fails (its table exists), after its rollout applied v1 on the way.
    let v2 = 20250201000000_i64;
    let (status, body) = api
        .run(&v2.to_string(), "create table first(x int);", "all")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.run_background().await;
    assert_eq!(api.tenant_history().await, vec![1, v1]);

    // No tenant has v2: withdrawn.
    let (status, body) = api.withdraw(v2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["latest_version"], v1);

    // The tenant has v1: neither withdrawn nor replaced, and the answer says who.
    let (status, body) = api.withdraw(v1).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains(api.tenant.as_str()), "{error}");
    assert!(
        error.contains("fix it forward with a new migration"),
        "{error}"
    );
    let (status, body) = api
        .run(&v1.to_string(), "create table other(x int);", "all")
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(api.latest_stored().await, Some(v1));

    // Fixed forward, the fleet goes on.
    let (status, body) = api
        .run("20250301000000", "create table second(x int);", "all")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.run_background().await;
    assert_eq!(api.tenant_history().await, vec![1, v1, 20250301000000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_run_stores_nothing_on_sqlite() {
    a_refused_run_stores_nothing(Plane::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_run_stores_nothing_on_postgres() {
    a_refused_run_stores_nothing(Plane::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_applied_on_the_way_to_a_failed_target_is_not_withdrawn_on_sqlite() {
    a_migration_applied_on_the_way_to_a_failed_target_is_not_withdrawn(Plane::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_applied_on_the_way_to_a_failed_target_is_not_withdrawn_on_postgres() {
    a_migration_applied_on_the_way_to_a_failed_target_is_not_withdrawn(Plane::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_may_be_a_json_number() {
    let api = api(Plane::Sqlite).await;
    let post = |body: Value| {
        Request::post("/migrations/run")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };

    // Refused by the JSON extractor, which answers in plain text.
    let refused = api
        .router
        .clone()
        .oneshot(post(
            json!({"migration_sql": "create table n(x int);", "version": {}}),
        ))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let said = to_bytes(refused.into_body(), usize::MAX).await.unwrap();
    let said = String::from_utf8_lossy(&said);
    assert!(said.contains("whole number"), "{said}");
    assert_eq!(api.latest_stored().await, Some(1));

    let (status, body) = api
        .call(post(
            json!({"migration_sql": "create table n(x int);", "version": 20250101000000_u64}),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.run_background().await;
    assert_eq!(api.tenant_history().await, vec![1, 20250101000000]);
}
