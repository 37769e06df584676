//! Fixtures of the rollout tests: a fleet of real PostgreSQL tenant databases, a
//! small real per-tenant migrator, and helpers to read what happened to each tenant.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection};
use tenancy_core::testing::{server_url, TestDatabase};
use tenancy_core::{
    BackendError, DatabaseProvisioner, DatabaseTarget, DatabaseUrl, MemoryTenantDirectory,
    MigrationReport, NewTenant, PostgresServerProvisioner, TenantDirectory, TenantId,
};
use tenant_migrate::rollout::store::{PostgresRolloutStore, RolloutStore};
use tenant_migrate::{
    MigrationSet, Rollout, RolloutBuilder, RolloutEvent, RolloutMigrator, TenantMigrator,
    TenantSession,
};
use time::OffsetDateTime;

static FLEETS: AtomicU32 = AtomicU32::new(0);

/// `n` tenants `t00`, `t01`, … each with its own database on the test server, in a
/// memory directory. The databases are dropped when the fleet is dropped.
#[derive(Debug)]
pub struct Fleet {
    pub directory: Arc<MemoryTenantDirectory>,
    pub ids: Vec<TenantId>,
    pub provisioner: PostgresServerProvisioner,
    prefix: String,
}

impl Fleet {
    pub async fn create(n: usize) -> Self {
        Self::create_tagged(n, |_| Vec::new()).await
    }

    /// A fleet whose tenant `i` has the tags `tags(i)`.
    pub async fn create_tagged(n: usize, tags: impl Fn(usize) -> Vec<&'static str>) -> Self {
        let prefix = format!(
            "tk_ro_{}_{}_{:04x}_",
            std::process::id(),
            FLEETS.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                & 0xffff
        );
        let server = DatabaseUrl::parse(&with_password(&server_url())).unwrap();
        let provisioner = PostgresServerProvisioner::new(server).with_prefix(&prefix);
        let directory = Arc::new(MemoryTenantDirectory::new());
        let mut ids = Vec::new();
        for i in 0..n {
            let id = TenantId::new(format!("t{i:02}")).unwrap();
            let mut signup =
                NewTenant::with_id(id.clone(), &format!("Tenant {i}"), "ops@example.com").unwrap();
            for tag in tags(i) {
                signup = signup.with_tag(tag).unwrap();
            }
            let mut tenant = signup.into_tenant(OffsetDateTime::now_utc());
            tenant.database = Some(provisioner.provision(&tenant).await.unwrap());
            directory.insert(&tenant).await.unwrap();
            ids.push(id);
        }
        Self {
            directory,
            ids,
            provisioner,
            prefix,
        }
    }

    pub fn id(&self, i: usize) -> &TenantId {
        &self.ids[i]
    }

    pub async fn target(&self, i: usize) -> DatabaseTarget {
        let tenant = self.directory.get(&self.ids[i]).await.unwrap().unwrap();
        tenant.database.unwrap()
    }

    pub async fn connect(&self, i: usize) -> PgConnection {
        PgConnection::connect(self.target(i).await.url.expose())
            .await
            .unwrap()
    }

    /// Drops tenant `i`'s database: its migration will fail.
    pub async fn break_by_dropping(&self, i: usize) {
        self.provisioner.delete(&self.ids[i]).await.unwrap();
    }

    /// Creates a table that conflicts with the test migrations' first statement.
    pub async fn break_by_conflict(&self, i: usize) {
        let mut conn = self.connect(i).await;
        sqlx::query("CREATE TABLE items (id TEXT, conflicting BOOLEAN NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// Removes the conflicting table (the tenant can then be migrated).
    pub async fn repair(&self, i: usize) {
        let mut conn = self.connect(i).await;
        sqlx::query("DROP TABLE items")
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// Versions recorded as applied in tenant `i`'s history (`_sqlx_migrations`, or
    /// the test migrator's table), ascending.
    pub async fn history(&self, i: usize) -> Vec<i64> {
        let mut conn = self.connect(i).await;
        for sql in [
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            "SELECT version FROM rollout_test_history ORDER BY version",
        ] {
            let table = sql.split(' ').nth(3).unwrap();
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            if exists {
                return sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap();
            }
        }
        Vec::new()
    }

    /// Asserts that no migration reached these tenants.
    pub async fn assert_untouched(&self, tenants: impl IntoIterator<Item = usize>) {
        for i in tenants {
            assert_eq!(
                self.history(i).await,
                Vec::<i64>::new(),
                "t{i} must be untouched"
            );
        }
    }

    /// How many times each up migration's SQL ran on tenant `i` (by version).
    pub async fn applications(&self, i: usize) -> Vec<(i64, i64)> {
        let mut conn = self.connect(i).await;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('applied_log') IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if !exists {
            return Vec::new();
        }
        sqlx::query_as(
            "SELECT version, count(*) FROM applied_log GROUP BY version ORDER BY version",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let pattern = format!("{}%", self.prefix.replace('_', "\\_"));
        let admin_url = server_url();
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await.unwrap();
                let names: Vec<String> =
                    sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
                        .bind(&pattern)
                        .fetch_all(&mut admin)
                        .await
                        .unwrap();
                for name in names {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(error) = sqlx::query(&sql).execute(&mut admin).await {
                        eprintln!("could not drop {name}: {error}");
                    }
                }
            });
        });
        let _ = handle.join();
    }
}

/// The password put in tenant URLs: the test server trusts local connections, so
/// it is never checked, but it must never show in logs or the state store.
pub const TENANT_PASSWORD: &str = "s3cret-tenant-pw";

/// The server URL with [`TENANT_PASSWORD`] (unless it has a password already).
pub fn with_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => {
            format!("{scheme}://{user}:{TENANT_PASSWORD}@{host}")
        }
        _ => url.to_owned(),
    }
}

/// One test migration: version, up SQL, down SQL.
#[derive(Debug, Clone)]
pub struct TestMigration {
    pub version: i64,
    pub up: String,
    pub down: Option<String>,
}

/// Version 1: a table (conflicts with [`Fleet::break_by_conflict`]).
pub fn v1() -> TestMigration {
    TestMigration {
        version: 1,
        up: "CREATE TABLE items (id BIGINT PRIMARY KEY); \
             CREATE TABLE applied_log (version BIGINT NOT NULL); \
             INSERT INTO applied_log VALUES (1);"
            .into(),
        down: Some("DROP TABLE items; DROP TABLE applied_log;".into()),
    }
}

/// Version 2: a column, reversible.
pub fn v2() -> TestMigration {
    TestMigration {
        version: 2,
        up: "ALTER TABLE items ADD COLUMN name TEXT; INSERT INTO applied_log VALUES (2);".into(),
        down: Some("ALTER TABLE items DROP COLUMN name;".into()),
    }
}

/// `migration` with a pause first, to catch runners mid-migration.
pub fn slow(migration: TestMigration, pause: Duration) -> TestMigration {
    TestMigration {
        up: format!("SELECT pg_sleep({}); {}", pause.as_secs_f64(), migration.up),
        ..migration
    }
}

/// Version 2 without a down script.
pub fn v2_irreversible() -> TestMigration {
    TestMigration { down: None, ..v2() }
}

/// The crate's own migrator for these migrations (reversible ones as `.up.sql`
/// and `.down.sql` pairs): what the fault tests run against.
pub fn real_migrator(migrations: &[TestMigration]) -> Arc<dyn RolloutMigrator> {
    Arc::new(TenantMigrator::new(migration_set(migrations)))
}

pub fn migration_set(migrations: &[TestMigration]) -> MigrationSet {
    let mut builder = MigrationSet::builder();
    for m in migrations {
        builder = match &m.down {
            Some(down) => builder
                .file(format!("{}_step.up.sql", m.version), m.up.clone())
                .file(format!("{}_step.down.sql", m.version), down.clone()),
            None => builder.file(format!("{}_step.sql", m.version), m.up.clone()),
        };
    }
    builder.build().unwrap()
}

/// A second, minimal real migrator (one transaction per apply under an advisory
/// lock, a `rollout_test_history` table): shows that a rollout drives any
/// [`RolloutMigrator`], not only the crate's own.
#[derive(Debug, Clone)]
pub struct PgTestMigrator {
    migrations: Arc<Vec<TestMigration>>,
}

impl PgTestMigrator {
    pub fn new(migrations: Vec<TestMigration>) -> Self {
        Self {
            migrations: Arc::new(migrations),
        }
    }
}

fn classify(error: sqlx::Error) -> BackendError {
    match &error {
        sqlx::Error::Database(_) => BackendError::permanent(error),
        _ => BackendError::transient(error),
    }
}

#[async_trait]
impl RolloutMigrator for PgTestMigrator {
    fn target_version(&self) -> Option<i64> {
        self.migrations.last().map(|m| m.version)
    }

    fn set_checksum(&self) -> String {
        self.migrations
            .iter()
            .map(|m| format!("{}:{}", m.version, m.up.len()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn first_irreversible_above(&self, version: Option<i64>) -> Option<i64> {
        self.migrations
            .iter()
            .find(|m| Some(m.version) > version && m.down.is_none())
            .map(|m| m.version)
    }

    async fn connect(
        &self,
        database: &DatabaseTarget,
    ) -> Result<Box<dyn TenantSession>, BackendError> {
        let conn = PgConnection::connect(database.url.expose())
            .await
            .map_err(classify)?;
        Ok(Box::new(PgTestSession {
            migrator: self.clone(),
            conn,
        }))
    }
}

struct PgTestSession {
    migrator: PgTestMigrator,
    conn: PgConnection,
}

const HISTORY: &str =
    "CREATE TABLE IF NOT EXISTS rollout_test_history (version BIGINT PRIMARY KEY)";

impl PgTestSession {
    /// Runs a script of `;`-separated statements (the test scripts hold no other `;`).
    async fn script(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Runs `body` in a transaction holding the database's migration lock.
    async fn in_transaction(
        &mut self,
        revert: bool,
        target: Option<i64>,
    ) -> Result<MigrationReport, sqlx::Error> {
        sqlx::query("BEGIN").execute(&mut self.conn).await?;
        let result = self.locked(revert, target).await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(end).execute(&mut self.conn).await?;
        result
    }

    async fn locked(
        &mut self,
        revert: bool,
        target: Option<i64>,
    ) -> Result<MigrationReport, sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(4242)")
            .execute(&mut self.conn)
            .await?;
        sqlx::query(HISTORY).execute(&mut self.conn).await?;
        let from: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM rollout_test_history")
            .fetch_one(&mut self.conn)
            .await?;
        let migrations = self.migrator.migrations.clone();
        let mut changed = 0;
        if revert {
            let undo: Vec<TestMigration> = migrations
                .iter()
                .rev()
                .filter(|m| Some(m.version) <= from && Some(m.version) > target)
                .cloned()
                .collect();
            for m in undo {
                let down = m
                    .down
                    .clone()
                    .ok_or_else(|| sqlx::Error::Protocol(format!("{} has no down", m.version)))?;
                self.script(&down).await?;
                sqlx::query("DELETE FROM rollout_test_history WHERE version = $1")
                    .bind(m.version)
                    .execute(&mut self.conn)
                    .await?;
                changed += 1;
            }
        } else {
            let todo: Vec<TestMigration> = migrations
                .iter()
                .filter(|m| Some(m.version) > from && Some(m.version) <= target)
                .cloned()
                .collect();
            for m in todo {
                self.script(&m.up).await?;
                sqlx::query("INSERT INTO rollout_test_history (version) VALUES ($1)")
                    .bind(m.version)
                    .execute(&mut self.conn)
                    .await?;
                changed += 1;
            }
        }
        let to: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM rollout_test_history")
            .fetch_one(&mut self.conn)
            .await?;
        Ok(MigrationReport::new(from, to, changed))
    }
}

#[async_trait]
impl TenantSession for PgTestSession {
    async fn version(&mut self) -> Result<Option<i64>, BackendError> {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('rollout_test_history') IS NOT NULL")
                .fetch_one(&mut self.conn)
                .await
                .map_err(classify)?;
        if !exists {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT max(version) FROM rollout_test_history")
            .fetch_one(&mut self.conn)
            .await
            .map_err(classify)
    }

    async fn apply(&mut self, target_version: i64) -> Result<MigrationReport, BackendError> {
        self.in_transaction(false, Some(target_version))
            .await
            .map_err(classify)
    }

    async fn revert(&mut self, to_version: Option<i64>) -> Result<MigrationReport, BackendError> {
        self.in_transaction(true, to_version)
            .await
            .map_err(classify)
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

/// A control-plane database with the rollout tables, and a store on it.
pub async fn control_plane() -> (TestDatabase, Arc<PostgresRolloutStore>) {
    let db = TestDatabase::create_with_prefix("tk_ro_ctl").await.unwrap();
    let store = Arc::new(PostgresRolloutStore::connect(db.url()).await.unwrap());
    (db, store)
}

/// A second store on the same control plane (as another process would open it).
pub async fn another_store(db: &TestDatabase) -> Arc<PostgresRolloutStore> {
    Arc::new(PostgresRolloutStore::connect(db.url()).await.unwrap())
}

/// Records every event a rollout emits.
#[derive(Debug, Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<RolloutEvent>>>);

impl Events {
    pub fn all(&self) -> Vec<RolloutEvent> {
        self.0.lock().unwrap().clone()
    }

    /// How many recorded events match.
    pub fn count(&self, matches: impl Fn(&RolloutEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| matches(e)).count()
    }
}

/// A rollout of `migrator` over `fleet`, recorded in `store`, with fast leases,
/// polls and retries, and its events recorded.
pub fn rollout(
    fleet: &Fleet,
    migrator: Arc<dyn RolloutMigrator>,
    store: Arc<dyn RolloutStore>,
) -> (RolloutBuilder, Events) {
    let events = Events::default();
    let sink = events.clone();
    let builder = Rollout::builder(fleet.directory.clone(), migrator, store)
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(50))
        .retry_policy(
            tenancy_core::RetryPolicy::default()
                .with_max_attempts(2)
                .with_initial_delay(Duration::from_millis(20)),
        )
        .on_event(move |event| sink.0.lock().unwrap().push(event.clone()));
    (builder, events)
}
