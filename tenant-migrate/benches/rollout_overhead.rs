//! The rollout's own bookkeeping per tenant, with the tenant databases taken out:
//! a migrator that answers from memory at once, so what is timed is planning,
//! claims, leases, status writes and events. Side by side for fleets of growing
//! size, on the SQLite state store and on PostgreSQL: the cost per tenant must
//! stay flat as the fleet grows (a claim that scanned finished tenants would
//! make it grow with the fleet).
//!
//! Run: `cargo bench -p tenant-migrate --bench rollout_overhead` (the PostgreSQL
//! store needs `DATABASE_URL` or the local server; `-- 1000 10000` picks sizes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::{
    BackendError, DatabaseTarget, DatabaseUrl, MemoryTenantDirectory, MigrationReport, NewTenant,
    TenantDirectory, TenantId,
};
use tenant_migrate::rollout::store::{PostgresRolloutStore, RolloutStore, SqliteRolloutStore};
use tenant_migrate::{Rollout, RolloutMigrator, TenantSession};
use time::OffsetDateTime;

const TARGET: i64 = 2;

/// Tenant "databases" as versions in memory: every operation is instant.
#[derive(Debug, Default)]
struct InstantMigrator {
    versions: Arc<Mutex<HashMap<String, Option<i64>>>>,
}

struct InstantSession {
    key: String,
    versions: Arc<Mutex<HashMap<String, Option<i64>>>>,
}

#[async_trait]
impl RolloutMigrator for InstantMigrator {
    fn target_version(&self) -> Option<i64> {
        Some(TARGET)
    }

    fn set_checksum(&self) -> String {
        "instant".into()
    }

    fn first_irreversible_above(&self, _version: Option<i64>) -> Option<i64> {
        None
    }

    async fn connect(
        &self,
        database: &DatabaseTarget,
    ) -> Result<Box<dyn TenantSession>, BackendError> {
        Ok(Box::new(InstantSession {
            key: database.url.expose().to_owned(),
            versions: Arc::clone(&self.versions),
        }))
    }
}

impl InstantSession {
    fn set(&self, version: Option<i64>) -> Option<i64> {
        let mut versions = self.versions.lock().unwrap();
        versions.insert(self.key.clone(), version).flatten()
    }
}

#[async_trait]
impl TenantSession for InstantSession {
    async fn version(&mut self) -> Result<Option<i64>, BackendError> {
        Ok(self
            .versions
            .lock()
            .unwrap()
            .get(&self.key)
            .copied()
            .flatten())
    }

    async fn apply(&mut self, target_version: i64) -> Result<MigrationReport, BackendError> {
        let from = self.set(Some(target_version));
        Ok(MigrationReport::new(from, Some(target_version), 1))
    }

    async fn revert(&mut self, to_version: Option<i64>) -> Result<MigrationReport, BackendError> {
        let from = self.set(to_version);
        Ok(MigrationReport::new(from, to_version, 1))
    }

    async fn close(self: Box<Self>) {}
}

async fn directory(tenants: usize) -> Arc<MemoryTenantDirectory> {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let now = OffsetDateTime::now_utc();
    for i in 0..tenants {
        let id = TenantId::new(format!("t{i:06}")).unwrap();
        let mut tenant = NewTenant::with_id(id, "bench", "ops@example.com")
            .unwrap()
            .into_tenant(now);
        let url = DatabaseUrl::parse(&format!("sqlite:/nonexistent/t{i:06}.db")).unwrap();
        tenant.database = Some(DatabaseTarget::new(url));
        directory.insert(&tenant).await.unwrap();
    }
    directory
}

/// One rollout over `tenants`, timed from planning to the final report.
async fn rollout(
    tenants: &Arc<MemoryTenantDirectory>,
    n: usize,
    store: Arc<dyn RolloutStore>,
) -> Duration {
    let directory: Arc<dyn TenantDirectory> = tenants.clone();
    let rollout = Rollout::builder(directory, Arc::new(InstantMigrator::default()), store)
        .concurrency(4)
        .build();
    let started = Instant::now();
    let report = rollout.run().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.counts.succeeded, n as u64);
    elapsed
}

async fn sqlite_store(file: &TempSqlite) -> Arc<dyn RolloutStore> {
    Arc::new(SqliteRolloutStore::open(&file.url()).await.unwrap())
}

async fn postgres_store() -> (TestDatabase, Arc<dyn RolloutStore>) {
    let db = TestDatabase::create_with_prefix("tk_bench").await.unwrap();
    let store = PostgresRolloutStore::connect(db.url()).await.unwrap();
    (db, Arc::new(store))
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("rollout bookkeeping per tenant (instant migrator, concurrency 4):");
        let mut baseline: Option<(f64, f64)> = None;
        for &n in &sizes {
            let tenants = directory(n).await;
            let file = TempSqlite::new();
            let sqlite = rollout(&tenants, n, sqlite_store(&file).await).await;
            let (_db, store) = postgres_store().await;
            let postgres = rollout(&tenants, n, store).await;
            let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
            let (s, p) = (per(sqlite), per(postgres));
            let (s0, p0) = *baseline.get_or_insert((s, p));
            println!(
                "{n:>7} tenants: SQLite store {s:>7.1} µs/tenant ({:.2}x the smallest fleet), \
                 PostgreSQL store {p:>7.1} µs/tenant ({:.2}x)",
                s / s0,
                p / p0
            );
        }
    });
}
