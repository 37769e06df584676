//! Fixtures of the state-store tests: a fleet of SQLite tenant files, and a state
//! store that passes every call to a SQLite store while the test watches its claims,
//! holds its outcomes, or makes its pages small.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection;
use tenancy_core::testing::TempSqlite;
use tenancy_core::TenantId;
use tenant_migrate::rollout::store::{
    ClaimRequest, ClaimedTenant, RolloutKey, RolloutRecord, RolloutStore, SqliteRolloutStore,
    TenantOutcome, TenantRecord, VersionHolder,
};
use tenant_migrate::{
    FleetList, FleetMember, MigrationSet, RolloutError, RolloutPlan, RolloutStatus, SchemaVersion,
    Strategy, WaveProgress,
};
use tokio::sync::Barrier;

/// `count` tenants `t00`, `t01`, … on SQLite files; those in `with_notes` already
/// have a `notes` table, so creating it fails there.
pub async fn sqlite_fleet(count: usize, with_notes: &[usize]) -> (Vec<TempSqlite>, FleetList) {
    let mut files = Vec::new();
    let mut fleet = FleetList::new();
    for i in 0..count {
        let file = TempSqlite::new();
        if with_notes.contains(&i) {
            let mut conn = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
            sqlx::query("CREATE TABLE notes (id INTEGER)")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let id = TenantId::try_from(format!("t{i:02}").as_str()).unwrap();
        fleet.insert(FleetMember::new(id, file.target().unwrap()));
        files.push(file);
    }
    (files, fleet)
}

/// One migration that creates the `notes` table.
pub fn notes_set() -> MigrationSet {
    MigrationSet::builder()
        .file("1_create_notes.up.sql", "CREATE TABLE notes (id INTEGER);")
        .build()
        .unwrap()
}

/// A SQLite state store seen through the trait's default look-ups, with the
/// test's hooks.
#[derive(Debug)]
pub struct Observed {
    inner: SqliteRolloutStore,
    claims: Mutex<Vec<u32>>,
    held: Option<HeldOutcomes>,
    small_pages: bool,
}

/// The first `count` outcomes written wait for each other before their writers
/// go on, so that their jobs end together.
#[derive(Debug)]
struct HeldOutcomes {
    count: usize,
    written: AtomicUsize,
    barrier: Barrier,
}

impl Observed {
    pub fn new(inner: SqliteRolloutStore) -> Self {
        Self {
            inner,
            claims: Mutex::new(Vec::new()),
            held: None,
            small_pages: false,
        }
    }

    /// Pages of at most two tenants, so that the default look-ups walk several.
    pub fn with_small_pages(mut self) -> Self {
        self.small_pages = true;
        self
    }

    /// Holds the first `count` outcomes until all of them are written.
    pub fn holding_first_outcomes(mut self, count: usize) -> Self {
        self.held = Some(HeldOutcomes {
            count,
            written: AtomicUsize::new(0),
            barrier: Barrier::new(count),
        });
        self
    }

    /// The `limit` of every claim so far, in order.
    pub fn claim_limits(&self) -> Vec<u32> {
        self.claims.lock().unwrap().clone()
    }
}

#[async_trait]
impl RolloutStore for Observed {
    async fn find_open(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError> {
        self.inner.find_open(key).await
    }
    async fn find_latest(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError> {
        self.inner.find_latest(key).await
    }
    async fn add_tenants(&self, id: i64, tenants: &[(TenantId, u32)]) -> Result<u64, RolloutError> {
        self.inner.add_tenants(id, tenants).await
    }
    async fn create_or_join(
        &self,
        key: &RolloutKey,
        strategy: &Strategy,
        plan: &RolloutPlan,
    ) -> Result<RolloutRecord, RolloutError> {
        self.inner.create_or_join(key, strategy, plan).await
    }
    async fn resume(&self, id: i64) -> Result<RolloutRecord, RolloutError> {
        self.inner.resume(id).await
    }
    async fn claim(
        &self,
        id: i64,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<ClaimedTenant>, RolloutError> {
        self.claims.lock().unwrap().push(request.limit);
        self.inner.claim(id, request).await
    }
    async fn record_start(
        &self,
        id: i64,
        tenant: &TenantId,
        owner: &str,
        from: Option<i64>,
    ) -> Result<bool, RolloutError> {
        self.inner.record_start(id, tenant, owner, from).await
    }
    async fn record_outcome(
        &self,
        id: i64,
        tenant: &TenantId,
        owner: &str,
        outcome: &TenantOutcome,
    ) -> Result<bool, RolloutError> {
        let written = self.inner.record_outcome(id, tenant, owner, outcome).await;
        if let Some(held) = &self.held {
            if held.written.fetch_add(1, Ordering::SeqCst) < held.count {
                held.barrier.wait().await;
            }
        }
        written
    }
    async fn renew_leases(
        &self,
        id: i64,
        owner: &str,
        lease: Duration,
    ) -> Result<u64, RolloutError> {
        self.inner.renew_leases(id, owner, lease).await
    }
    async fn progress(&self, id: i64) -> Result<(RolloutRecord, Vec<WaveProgress>), RolloutError> {
        self.inner.progress(id).await
    }
    async fn set_status(
        &self,
        id: i64,
        status: RolloutStatus,
        reason: Option<&str>,
    ) -> Result<(), RolloutError> {
        self.inner.set_status(id, status, reason).await
    }
    async fn tenants(
        &self,
        id: i64,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        let limit = if self.small_pages {
            limit.min(2)
        } else {
            limit
        };
        self.inner.tenants(id, after, limit).await
    }
    async fn version_counts(&self, id: i64) -> Result<Vec<(Option<i64>, u64)>, RolloutError> {
        self.inner.version_counts(id).await
    }
    async fn rollback_floor(&self, id: i64) -> Result<Option<SchemaVersion>, RolloutError> {
        self.inner.rollback_floor(id).await
    }
    async fn tenants_holding(
        &self,
        version: i64,
        limit: u32,
    ) -> Result<Option<Vec<VersionHolder>>, RolloutError> {
        self.inner.tenants_holding(version, limit).await
    }
}
