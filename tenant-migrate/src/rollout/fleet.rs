use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeSet;

use tenancy_core::{RetryPolicy, TenantId};

use super::job::{JobContext, UsualStart};
use super::progress::Listener;
use super::runner::Runner;
use super::{
    IntoFleet, RolloutError, RolloutEvent, RolloutKey, RolloutMigrator, RolloutPhase, RolloutPlan,
    RolloutRecord, RolloutReport, RolloutStatus, RolloutStatusView, RolloutStore, Strategy,
    Targeting, TenantFleet, TenantRecord,
};
use crate::{MigrationSet, TenantMigrator};

/// Tenants in flight at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// How long a claim holds without renewal unless told otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

static RUNNERS: AtomicU32 = AtomicU32::new(0);

/// A migration rolled out to a fleet of tenant databases: planned over a
/// [`TenantFleet`] (a tenant directory, or a [`FleetList`](crate::FleetList) such as a
/// fleet file), recorded in a [`RolloutStore`](super::store::RolloutStore), and run by any number of runners
/// that claim tenants from it.
///
/// [`run`](Self::run) creates the rollout for (target version, migration-set
/// checksum), or joins the unfinished one: a rerun after a crash, or a second runner
/// started at the same moment. Runners on several machines share a rollout through a
/// [`PostgresRolloutStore`](super::store::PostgresRolloutStore); a tenant whose runner died
/// is taken over when its lease expires and rechecked against its own history.
///
/// A canary rollout: the `staging` tenants first, then 10 %, 50 % and the rest,
/// halting beyond 2 % failures.
///
/// ```no_run
/// use std::{sync::Arc, time::Duration};
/// use tenancy_core::{DatabaseUrl, PostgresTenantDirectory};
/// use tenant_migrate::*;
/// use tenant_migrate::rollout::store::PostgresRolloutStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let directory = Arc::new(PostgresTenantDirectory::connect("postgres://ops@control/tenants").await?);
/// let store = Arc::new(PostgresRolloutStore::connect(&DatabaseUrl::parse("postgres://ops@control/rollouts")?).await?);
/// let waves = Strategy::waves([10, 50, 100])?.with_max_failures(FailureThreshold::Percent(2.0));
/// let canary = Strategy::canary(CanaryTenants::Tag("staging".into()), waves)?
///     .with_soak(Duration::from_secs(600));
/// let rollout = Rollout::of_migrations(directory, MigrationSet::from_dir("migrations")?, store)
///     .strategy(canary)
///     .concurrency(8)
///     .on_event(|event| println!("{event:?}"))
///     .build();
/// let report = rollout.run().await?;
/// println!("{} migrated, {} failed, halted: {}", report.counts.succeeded, report.counts.failed, report.is_halted());
/// # Ok(()) }
/// ```
pub struct Rollout {
    fleet: Arc<dyn TenantFleet>,
    migrator: Arc<dyn RolloutMigrator>,
    store: Arc<dyn RolloutStore>,
    strategy: Strategy,
    /// Whether the caller set the strategy (a joined rollout then says it keeps its own).
    strategy_given: bool,
    targeting: Targeting,
    concurrency: usize,
    lease: Duration,
    poll: Duration,
    retry: RetryPolicy,
    listener: Listener,
}

/// Configures a [`Rollout`]; reached through [`Rollout::builder`].
#[derive(Debug)]
#[must_use = "call .build() to get the Rollout"]
pub struct RolloutBuilder {
    rollout: Rollout,
}

impl Rollout {
    /// Starts a rollout of `migrator`'s migration set over `fleet` (see
    /// [`IntoFleet`]), recorded in `store`; all tenants at once,
    /// [`DEFAULT_CONCURRENCY`] in flight, unless configured.
    pub fn builder(
        fleet: impl IntoFleet,
        migrator: Arc<dyn RolloutMigrator>,
        store: Arc<dyn RolloutStore>,
    ) -> RolloutBuilder {
        RolloutBuilder {
            rollout: Self {
                fleet: fleet.into_fleet(),
                migrator,
                store,
                strategy: Strategy::AllAtOnce,
                strategy_given: false,
                targeting: Targeting::all(),
                concurrency: DEFAULT_CONCURRENCY,
                lease: DEFAULT_LEASE,
                poll: Duration::from_millis(500),
                retry: RetryPolicy::default()
                    .with_max_attempts(3)
                    .with_initial_delay(Duration::from_millis(200)),
                listener: Listener::silent(),
            },
        }
    }

    /// A rollout of `set` applied by a [`TenantMigrator`] with default options
    /// (use [`Rollout::builder`] with your own migrator to change them).
    pub fn of_migrations(
        fleet: impl IntoFleet,
        set: MigrationSet,
        store: Arc<dyn RolloutStore>,
    ) -> RolloutBuilder {
        Self::builder(fleet, Arc::new(TenantMigrator::new(set)), store)
    }

    /// What identifies this rollout in the state store; an empty migration set has
    /// nothing to roll out.
    pub fn key(&self) -> Result<RolloutKey, RolloutError> {
        Ok(RolloutKey {
            target_version: self
                .migrator
                .target_version()
                .ok_or(RolloutError::EmptyMigrationSet)?,
            set_checksum: self.migrator.set_checksum(),
        })
    }

    /// The plan a new rollout would follow (a dry run: nothing is written).
    pub async fn plan(&self) -> Result<RolloutPlan, RolloutError> {
        RolloutPlan::build(self.fleet.as_ref(), &self.targeting, &self.strategy).await
    }

    /// Runs the rollout until every tenant is done, it halts, or nothing is left that
    /// this runner may claim; returns the report as it then stands.
    ///
    /// Joins the unfinished rollout with the same key if there is one (keeping its
    /// plan and strategy): a halted rollout resumes, and failed tenants are retried
    /// when no runner is still at work on it.
    pub async fn run(&self) -> Result<RolloutReport, RolloutError> {
        self.run_until(std::future::pending()).await
    }

    /// [`run`](Self::run) until `stop` resolves (a shutdown signal, e.g.
    /// `tokio::signal::ctrl_c()`); then this runner claims no more tenants, lets
    /// those in flight finish and record their outcomes, and returns
    /// [`RolloutError::Interrupted`] (or the report, if that finished the
    /// rollout). Nothing is left half done: a migration's statement runs on its
    /// server until it ends whatever the client does, so it is waited for.
    /// Dropping the returned future instead abandons the tenants in flight: their
    /// leases expire, and the next run reads what their migrations committed.
    pub async fn run_until(
        &self,
        stop: impl Future<Output = ()>,
    ) -> Result<RolloutReport, RolloutError> {
        let (record, existing) = self.open_or_create().await?;
        if existing && self.strategy_given && record.strategy != self.strategy {
            self.listener.emit(RolloutEvent::StrategyKept {
                rollout_id: record.id,
                kept: record.strategy.clone(),
                given: self.strategy.clone(),
            });
        }
        let record = self.store.resume(record.id).await?;
        self.listener.emit(RolloutEvent::Joined {
            rollout_id: record.id,
            tenants: record.tenant_count,
            existing,
        });
        let id = record.id;
        self.runner(record, RolloutPhase::Forward).run(stop).await?;
        self.report(id).await
    }

    /// Records the rollout in the state store (or finds the unfinished one with this
    /// key) without migrating anything, so that a caller can answer with its id before
    /// the work starts; [`run`](Self::run) then does the work, here or in another process.
    pub async fn start(&self) -> Result<RolloutRecord, RolloutError> {
        self.open_or_create().await.map(|(record, _)| record)
    }

    /// The rollout of this migration set and `true`, or a newly recorded one and
    /// `false`. One rollout serves a migration set until it is rolled back: an
    /// unfinished one is joined, and a completed one is reused, so that a rerun that
    /// changes nothing records nothing and a rollback reverts what every run of the
    /// set migrated. Tenants that joined the fleet since are added to it.
    async fn open_or_create(&self) -> Result<(RolloutRecord, bool), RolloutError> {
        let key = self.key()?;
        let existing = match self.store.find_open(&key).await? {
            Some(record) => Some(record),
            None => self
                .store
                .find_latest(&key)
                .await?
                .filter(|r| r.status == RolloutStatus::Completed),
        };
        match existing {
            Some(record) if record.status == RolloutStatus::RollingBack => {
                Err(RolloutError::RollingBack {
                    rollout_id: record.id,
                })
            }
            Some(record) => {
                let joiners = self.joiners(&record).await?;
                if joiners.is_empty() {
                    return Ok((record, true));
                }
                let added = self.store.add_tenants(record.id, &joiners).await?;
                tracing::info!(
                    rollout = record.id,
                    added,
                    "tenants that joined the fleet were added to the rollout"
                );
                Ok((self.store.progress(record.id).await?.0, true))
            }
            None => {
                let plan = self.plan().await?;
                let record = self
                    .store
                    .create_or_join(&key, &self.strategy, &plan)
                    .await?;
                Ok((record, false))
            }
        }
    }

    /// Reverts exactly the tenants the latest rollout with this key migrated (and
    /// those it left half migrated) to the versions they came from.
    ///
    /// Fails with [`RolloutError::Irreversible`] before touching anything when a
    /// migration to undo has no down script.
    pub async fn rollback(&self) -> Result<RolloutReport, RolloutError> {
        self.rollback_until(std::future::pending()).await
    }

    /// [`rollback`](Self::rollback) until `stop` resolves; then it stops as
    /// [`run_until`](Self::run_until) does, and the next call resumes the rollback.
    pub async fn rollback_until(
        &self,
        stop: impl Future<Output = ()>,
    ) -> Result<RolloutReport, RolloutError> {
        let record = self.latest().await?;
        let id = record.id;
        if record.status != RolloutStatus::RolledBack {
            self.check_reversible(&record).await?;
            self.store
                .set_status(record.id, RolloutStatus::RollingBack, None)
                .await?;
            self.runner(record, RolloutPhase::Revert).run(stop).await?;
        }
        self.report(id).await
    }

    /// Checks, without changing anything, that [`rollback`](Self::rollback) can revert
    /// the latest rollout with this key: it exists, and every migration to undo has a
    /// down script. Returns its id.
    pub async fn check_rollback(&self) -> Result<i64, RolloutError> {
        let record = self.latest().await?;
        self.check_reversible(&record).await?;
        Ok(record.id)
    }

    async fn check_reversible(&self, record: &RolloutRecord) -> Result<(), RolloutError> {
        if let Some(floor) = self.store.rollback_floor(record.id).await? {
            if let Some(version) = self.migrator.first_irreversible_above(floor.latest()) {
                return Err(RolloutError::Irreversible { version });
            }
        }
        Ok(())
    }

    /// Stops the unfinished rollout: runners claim nothing more and let their
    /// tenants in flight finish. `run` resumes it. Returns `false` if none is open.
    pub async fn halt(&self, reason: &str) -> Result<bool, RolloutError> {
        let Some(record) = self.store.find_open(&self.key()?).await? else {
            return Ok(false);
        };
        self.store
            .set_status(record.id, RolloutStatus::Halted, Some(reason))
            .await?;
        Ok(true)
    }

    /// The report of the latest rollout with this key, if any.
    pub async fn status(&self) -> Result<Option<RolloutReport>, RolloutError> {
        match self.store.find_latest(&self.key()?).await? {
            Some(record) => self.report(record.id).await.map(Some),
            None => Ok(None),
        }
    }

    /// A page of a rollout's tenants in rollout order, after position `after`
    /// (`None` for the first page); each with its position, to pass as `after`.
    pub async fn tenants(
        &self,
        rollout_id: i64,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        self.store.tenants(rollout_id, after, limit).await
    }

    /// The targeted tenants of the fleet that the rollout does not list yet (they
    /// joined the fleet after it started): the next [`run`](Self::run) adds them.
    pub async fn unlisted(&self, rollout_id: i64) -> Result<Vec<TenantId>, RolloutError> {
        let record = self.store.progress(rollout_id).await?.0;
        Ok(self
            .joiners(&record)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    async fn joiners(&self, record: &RolloutRecord) -> Result<Vec<(TenantId, u32)>, RolloutError> {
        let mut listed = BTreeSet::new();
        let mut last_wave = 0;
        let mut after = None;
        loop {
            let page = self.store.tenants(record.id, after, 1000).await?;
            let Some((position, _)) = page.last() else {
                break;
            };
            after = Some(*position);
            for (_, tenant) in page {
                last_wave = last_wave.max(tenant.wave);
                listed.insert(tenant.tenant_id);
            }
        }
        RolloutPlan::joiners(
            self.fleet.as_ref(),
            &self.targeting,
            &record.strategy,
            &listed,
            last_wave,
        )
        .await
    }

    /// `report` with a page of its tenants in rollout order (after position
    /// `after`, at most `limit`), as the admin API and the command line show it.
    pub async fn view(
        &self,
        report: &RolloutReport,
        after: Option<u32>,
        limit: u32,
    ) -> Result<RolloutStatusView, RolloutError> {
        let page = self.tenants(report.rollout_id, after, limit).await?;
        Ok(RolloutStatusView::new(report, &page))
    }

    async fn latest(&self) -> Result<RolloutRecord, RolloutError> {
        let key = self.key()?;
        self.store
            .find_latest(&key)
            .await?
            .ok_or(RolloutError::NotFound {
                target_version: key.target_version,
            })
    }

    async fn report(&self, rollout_id: i64) -> Result<RolloutReport, RolloutError> {
        let (record, waves) = self.store.progress(rollout_id).await?;
        let versions = self.store.version_counts(rollout_id).await?;
        Ok(RolloutReport::new(record, waves, versions))
    }

    fn runner(&self, record: RolloutRecord, phase: RolloutPhase) -> Runner {
        let ctx = JobContext {
            fleet: Arc::clone(&self.fleet),
            migrator: Arc::clone(&self.migrator),
            store: Arc::clone(&self.store),
            listener: self.listener.clone(),
            retry: self.retry.clone(),
            rollout_id: record.id,
            target_version: record.key.target_version,
            owner: runner_name(),
            phase,
            mark: JobContext::mark(&record),
            usual_start: UsualStart::new(self.migrator.version_before(record.key.target_version)),
        };
        Runner {
            ctx: Arc::new(ctx),
            record,
            concurrency: self.concurrency,
            lease: self.lease,
            poll: self.poll.min(self.lease / 2),
        }
    }
}

impl fmt::Debug for Rollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rollout")
            .field("fleet", &self.fleet)
            .field("migrator", &self.migrator)
            .field("store", &self.store)
            .field("strategy", &self.strategy)
            .field("targeting", &self.targeting)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RolloutBuilder {
    /// Sets the strategy (default: [`Strategy::AllAtOnce`]); a joined rollout keeps its own.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.rollout.strategy = strategy;
        self.rollout.strategy_given = true;
        self
    }

    /// Sets which tenants are covered and their order (default: all, by id).
    pub fn targeting(mut self, targeting: Targeting) -> Self {
        self.rollout.targeting = targeting;
        self
    }

    /// Sets how many tenants this runner migrates at once (at least 1); each holds
    /// one tenant connection for the length of its job.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.rollout.concurrency = concurrency.max(1);
        self
    }

    /// Sets how long a claim holds without renewal (renewed every third of it while
    /// the job runs); a crashed runner's tenants are retried after it expires.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.rollout.lease = lease.max(Duration::from_millis(300));
        self
    }

    /// Sets how often a runner with nothing to claim looks again (default 500 ms).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.rollout.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// Sets how a tenant job retries transient errors (connection refused, lock busy).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.rollout.retry = retry;
        self
    }

    /// Calls `callback` with every [`RolloutEvent`]; it must return quickly. To
    /// consume events elsewhere (a UI, a log shipper), forward them into a channel:
    /// `.on_event(move |event| { let _ = sender.send(event.clone()); })`.
    pub fn on_event(mut self, callback: impl Fn(&RolloutEvent) + Send + Sync + 'static) -> Self {
        self.rollout.listener = Listener::new(callback);
        self
    }

    /// Finishes the configuration.
    pub fn build(self) -> Rollout {
        self.rollout
    }
}

/// A name unique to this runner, for lease ownership and logs.
fn runner_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "runner".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{host}-{}-{}-{nanos:08x}",
        std::process::id(),
        RUNNERS.fetch_add(1, Ordering::Relaxed)
    )
}
