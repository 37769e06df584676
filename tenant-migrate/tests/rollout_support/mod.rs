//! Fixtures of the rollout tests: a fleet of real PostgreSQL tenant databases, a
//! small real per-tenant migrator, and helpers to read what happened to each tenant.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection};
use tenancy_core::testing::TestDatabase;
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport};
use tenant_migrate::rollout::store::{PostgresRolloutStore, RolloutStore, TenantRecord};
use tenant_migrate::{
    MigrationSet, Rollout, RolloutBuilder, RolloutEvent, RolloutMigrator, TenantMigrator,
    TenantSession,
};

#[allow(unused_imports)]
pub use tenant_migrate::testing::{
    slow, v1, v2, v2_irreversible, with_password, TestFleet as Fleet, TestMigration,
    TENANT_PASSWORD,
};

/// The crate's own migrator for these migrations (reversible ones as `.up.sql`
/// and `.down.sql` pairs): what the fault tests run against.
pub fn real_migrator(migrations: &[TestMigration]) -> Arc<dyn RolloutMigrator> {
    Arc::new(TenantMigrator::new(migration_set(migrations)))
}

pub fn migration_set(migrations: &[TestMigration]) -> MigrationSet {
    TestMigration::set(migrations)
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

/// Every tenant record of a rollout.
pub async fn records(rollout: &Rollout, rollout_id: i64) -> Vec<TenantRecord> {
    rollout
        .tenants(rollout_id, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, record)| record)
        .collect()
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
