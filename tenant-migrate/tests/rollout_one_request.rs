//! Rollouts that apply in one request: the start a rollout records before
//! touching a tenant is a guess there, and must end up the tenant's true start
//! (what rollback reverts to) whether the guess was right, wrong, or its request
//! went unanswered.

mod rollout_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rollout_support::{control_plane, real_migrator, records, rollout, v1, v2, Fleet};
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport, TenantId};
use tenant_migrate::rollout::store::TenantRecord;
use tenant_migrate::{RolloutMigrator, RolloutStatus, TenantMigrator, TenantSession, TenantState};

fn record<'r>(records: &'r [TenantRecord], id: &TenantId) -> &'r TenantRecord {
    records.iter().find(|r| &r.tenant_id == id).unwrap()
}

/// Every tenant at version 1, then tenant 2 brought to version 2 by hand and
/// tenant 4 reverted to nothing (an empty history).
async fn mixed_fleet() -> Fleet {
    let fleet = Fleet::create(6).await;
    let (_control, store) = control_plane().await;
    let (base, _) = rollout(&fleet, real_migrator(&[v1()]), store);
    assert!(base.build().run().await.unwrap().is_complete());
    let both = TenantMigrator::new(rollout_support::migration_set(&[v1(), v2()]));
    let mut session = both.connect(&fleet.target(2).await).await.unwrap();
    session.apply_to(2).await.unwrap();
    session.close().await;
    let mut session = both.connect(&fleet.target(4).await).await.unwrap();
    session.revert(0).await.unwrap();
    session.close().await;
    fleet
}

/// Runs a rollout to version 2 with `migrator` one tenant at a time (so that
/// what each tenant shows decides what is expected of the next), checks the start
/// recorded for each tenant, then rolls back and checks each is back there.
async fn roll_forward_and_back(fleet: &Fleet, migrator: Arc<dyn RolloutMigrator>) {
    let (_control, store) = control_plane().await;
    let (builder, _) = rollout(fleet, migrator, store);
    let rollout = builder.concurrency(1).build();
    let forward = rollout.run().await.unwrap();
    assert_eq!(forward.status, RolloutStatus::Completed, "{forward:?}");
    assert_eq!(
        (forward.counts.succeeded, forward.counts.skipped),
        (5, 1),
        "{forward:?}"
    );

    let records = records(&rollout, forward.rollout_id).await;
    for i in [0, 1, 3, 5] {
        let tenant = record(&records, fleet.id(i));
        assert_eq!(tenant.state, TenantState::Succeeded, "t{i}");
        assert_eq!(tenant.from_version, Some(1), "t{i} started at 1");
        assert_eq!(fleet.history(i).await, vec![1, 2], "t{i}");
    }
    let ahead = record(&records, fleet.id(2));
    assert_eq!(ahead.state, TenantState::Skipped);
    assert_eq!(
        ahead.from_version,
        Some(2),
        "the guess is replaced by the tenant's version"
    );
    let empty = record(&records, fleet.id(4));
    assert_eq!(empty.state, TenantState::Succeeded);
    assert_eq!(empty.from_version, None, "started from an empty history");
    for i in 0..6 {
        let applied = fleet.applications(i).await;
        assert!(
            applied.iter().all(|(_, times)| *times == 1 || i == 4),
            "t{i}: {applied:?}"
        );
    }

    let back = rollout.rollback().await.unwrap();
    assert_eq!(back.status, RolloutStatus::RolledBack, "{back:?}");
    for i in [0, 1, 3, 5] {
        assert_eq!(fleet.history(i).await, vec![1], "t{i} back at its start");
    }
    assert_eq!(
        fleet.history(2).await,
        vec![1, 2],
        "t02 was at 2 before: not this rollout's"
    );
    assert_eq!(
        fleet.history(4).await,
        Vec::<i64>::new(),
        "t04 back to nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_that_miss_are_replaced_by_the_tenants_version_before_anything_changes() {
    let fleet = mixed_fleet().await;
    let migrator = Arc::new(CountingMigrator::new(false));
    roll_forward_and_back(&fleet, migrator.clone()).await;
    // The first tenant is expected at version 1, the one below the target.
    // After t02, found at the target, t03 is read first: five tenants were
    // tried in one request, and three at version 1 (t00, t01, t05) applied so.
    assert_eq!(migrator.tried.load(Ordering::SeqCst), 5);
    assert_eq!(migrator.applied.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unanswered_request_is_settled_by_the_rollouts_mark_on_the_next_attempt() {
    let fleet = mixed_fleet().await;
    let migrator = Arc::new(CountingMigrator::new(true));
    roll_forward_and_back(&fleet, migrator.clone()).await;
    assert_eq!(migrator.tried.load(Ordering::SeqCst), 5);
    assert_eq!(migrator.applied.load(Ordering::SeqCst), 3);
}

/// The crate's migrator, counting one-request applies; when `lose`, every such
/// apply is sent and then its answer lost, along with the connection: the
/// runner cannot tell whether it committed until it reconnects.
#[derive(Debug)]
struct CountingMigrator {
    inner: TenantMigrator,
    lose: bool,
    tried: Arc<AtomicUsize>,
    applied: Arc<AtomicUsize>,
}

impl CountingMigrator {
    fn new(lose: bool) -> Self {
        Self {
            inner: TenantMigrator::new(rollout_support::migration_set(&[v1(), v2()])),
            lose,
            tried: Arc::default(),
            applied: Arc::default(),
        }
    }
}

struct LosingSession {
    inner: Box<dyn TenantSession>,
    lose: bool,
    lost: bool,
    tried: Arc<AtomicUsize>,
    applied: Arc<AtomicUsize>,
}

fn lost() -> BackendError {
    BackendError::transient(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the answer was lost",
    ))
}

#[async_trait]
impl RolloutMigrator for CountingMigrator {
    fn target_version(&self) -> Option<i64> {
        RolloutMigrator::target_version(&self.inner)
    }

    fn set_checksum(&self) -> String {
        self.inner.set_checksum()
    }

    fn first_irreversible_above(&self, version: Option<i64>) -> Option<i64> {
        self.inner.first_irreversible_above(version)
    }

    fn version_before(&self, version: i64) -> Option<i64> {
        self.inner.version_before(version)
    }

    async fn connect(
        &self,
        database: &DatabaseTarget,
    ) -> Result<Box<dyn TenantSession>, BackendError> {
        let inner = RolloutMigrator::connect(&self.inner, database).await?;
        Ok(Box::new(LosingSession {
            inner,
            lose: self.lose,
            lost: false,
            tried: self.tried.clone(),
            applied: self.applied.clone(),
        }))
    }
}

impl LosingSession {
    fn check(&self) -> Result<(), BackendError> {
        if self.lost {
            return Err(lost());
        }
        Ok(())
    }
}

#[async_trait]
impl TenantSession for LosingSession {
    async fn version(&mut self) -> Result<Option<i64>, BackendError> {
        self.check()?;
        self.inner.version().await
    }

    async fn lock_version(&mut self) -> Result<Option<i64>, BackendError> {
        self.check()?;
        self.inner.lock_version().await
    }

    async fn apply(&mut self, target_version: i64) -> Result<MigrationReport, BackendError> {
        self.check()?;
        self.inner.apply(target_version).await
    }

    fn applies_in_one_request(&mut self, expected: i64, target_version: i64) -> bool {
        self.inner.applies_in_one_request(expected, target_version)
    }

    async fn apply_if_at(
        &mut self,
        expected: i64,
        target_version: i64,
    ) -> Result<Option<MigrationReport>, BackendError> {
        self.check()?;
        self.tried.fetch_add(1, Ordering::SeqCst);
        let report = self.inner.apply_if_at(expected, target_version).await?;
        if report.is_some() {
            self.applied.fetch_add(1, Ordering::SeqCst);
        }
        if self.lose {
            self.lost = true;
            return Err(lost());
        }
        Ok(report)
    }

    fn mark_commits(&mut self, mark: &str) {
        self.inner.mark_commits(mark);
    }

    async fn carries_mark(&mut self, mark: &str) -> Result<Option<bool>, BackendError> {
        self.check()?;
        self.inner.carries_mark(mark).await
    }

    async fn revert(&mut self, to_version: Option<i64>) -> Result<MigrationReport, BackendError> {
        self.check()?;
        self.inner.revert(to_version).await
    }

    async fn close(self: Box<Self>) {
        self.inner.close().await;
    }
}
