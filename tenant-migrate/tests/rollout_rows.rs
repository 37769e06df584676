//! The state stores' look-ups for a page of tenants: rows by tenant id, and the
//! first tenants in a state, on both engines.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use sqlx::Connection;
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::TenantId;
use tenant_migrate::rollout::store::{
    ClaimRequest, ClaimedTenant, PostgresRolloutStore, RolloutKey, RolloutRecord, RolloutStore,
    SqliteRolloutStore, TenantOutcome, TenantRecord,
};
use tenant_migrate::{
    FleetList, FleetMember, MigrationSet, Rollout, RolloutError, RolloutPlan, RolloutStatus,
    SchemaVersion, Strategy, TenantState, WaveProgress,
};

/// Five tenants on SQLite files; `t03` already has the table, so it fails.
async fn fleet() -> (Vec<TempSqlite>, FleetList) {
    let mut files = Vec::new();
    let mut fleet = FleetList::new();
    for i in 0..5 {
        let file = TempSqlite::new();
        if i == 3 {
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

fn set() -> MigrationSet {
    MigrationSet::builder()
        .file("1_create_notes.up.sql", "CREATE TABLE notes (id INTEGER);")
        .build()
        .unwrap()
}

async fn check(store: Arc<dyn RolloutStore>) {
    let (_files, fleet) = fleet().await;
    let report = Rollout::of_migrations(fleet, set(), store.clone())
        .build()
        .run()
        .await
        .unwrap();
    let id = report.rollout_id;
    let ids = |names: &[&str]| -> Vec<TenantId> {
        names
            .iter()
            .map(|n| TenantId::try_from(*n).unwrap())
            .collect()
    };

    let rows = store
        .tenant_rows(id, &ids(&["t04", "t00", "t03", "nobody"]))
        .await
        .unwrap();
    let listed: Vec<(&str, TenantState, Option<i64>)> = rows
        .iter()
        .map(|(_, r)| (r.tenant_id.as_str(), r.state, r.to_version))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("t00", TenantState::Succeeded, Some(1)),
            ("t03", TenantState::Failed, None),
            ("t04", TenantState::Succeeded, Some(1)),
        ]
    );
    assert!(rows[1]
        .1
        .error
        .as_deref()
        .is_some_and(|e| e.contains("notes")));
    assert!(store.tenant_rows(id, &[]).await.unwrap().is_empty());

    let failed = store
        .tenants_in_state(id, TenantState::Failed, 20)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1.tenant_id.as_str(), "t03");
    let succeeded = store
        .tenants_in_state(id, TenantState::Succeeded, 2)
        .await
        .unwrap();
    let names: Vec<&str> = succeeded
        .iter()
        .map(|(_, r)| r.tenant_id.as_str())
        .collect();
    assert_eq!(names, vec!["t00", "t01"]);
}

#[tokio::test]
async fn sqlite_finds_rows_by_tenant_and_by_state() {
    let file = TempSqlite::new();
    check(Arc::new(
        SqliteRolloutStore::open(&file.url()).await.unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn postgres_finds_rows_by_tenant_and_by_state() {
    let db = TestDatabase::create_with_prefix("tk_ro_rows")
        .await
        .unwrap();
    check(Arc::new(
        PostgresRolloutStore::connect(db.url()).await.unwrap(),
    ))
    .await;
}

/// A store of its own: the SQLite store behind the trait's default look-ups.
#[derive(Debug)]
struct Defaults(SqliteRolloutStore);

#[async_trait]
impl RolloutStore for Defaults {
    async fn find_open(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError> {
        self.0.find_open(key).await
    }
    async fn find_latest(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError> {
        self.0.find_latest(key).await
    }
    async fn add_tenants(&self, id: i64, tenants: &[(TenantId, u32)]) -> Result<u64, RolloutError> {
        self.0.add_tenants(id, tenants).await
    }
    async fn create_or_join(
        &self,
        key: &RolloutKey,
        strategy: &Strategy,
        plan: &RolloutPlan,
    ) -> Result<RolloutRecord, RolloutError> {
        self.0.create_or_join(key, strategy, plan).await
    }
    async fn resume(&self, id: i64) -> Result<RolloutRecord, RolloutError> {
        self.0.resume(id).await
    }
    async fn claim(
        &self,
        id: i64,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<ClaimedTenant>, RolloutError> {
        self.0.claim(id, request).await
    }
    async fn record_start(
        &self,
        id: i64,
        tenant: &TenantId,
        owner: &str,
        from: Option<i64>,
    ) -> Result<bool, RolloutError> {
        self.0.record_start(id, tenant, owner, from).await
    }
    async fn record_outcome(
        &self,
        id: i64,
        tenant: &TenantId,
        owner: &str,
        outcome: &TenantOutcome,
    ) -> Result<bool, RolloutError> {
        self.0.record_outcome(id, tenant, owner, outcome).await
    }
    async fn renew_leases(
        &self,
        id: i64,
        owner: &str,
        lease: Duration,
    ) -> Result<u64, RolloutError> {
        self.0.renew_leases(id, owner, lease).await
    }
    async fn progress(&self, id: i64) -> Result<(RolloutRecord, Vec<WaveProgress>), RolloutError> {
        self.0.progress(id).await
    }
    async fn set_status(
        &self,
        id: i64,
        status: RolloutStatus,
        reason: Option<&str>,
    ) -> Result<(), RolloutError> {
        self.0.set_status(id, status, reason).await
    }
    async fn tenants(
        &self,
        id: i64,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        // Small pages, so that the default look-ups walk several.
        self.0.tenants(id, after, limit.min(2)).await
    }
    async fn version_counts(&self, id: i64) -> Result<Vec<(Option<i64>, u64)>, RolloutError> {
        self.0.version_counts(id).await
    }
    async fn rollback_floor(&self, id: i64) -> Result<Option<SchemaVersion>, RolloutError> {
        self.0.rollback_floor(id).await
    }
}

#[tokio::test]
async fn the_default_look_ups_agree() {
    let file = TempSqlite::new();
    let store = SqliteRolloutStore::open(&file.url()).await.unwrap();
    check(Arc::new(Defaults(store))).await;
}
