use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tenancy_core::{BackendError, DatabaseTarget, RetryDecision, RetryPolicy, TenantId};
use tokio::time::Instant;

use crate::SchemaVersion;

use super::progress::Listener;
use super::{
    ClaimedTenant, RolloutError, RolloutEvent, RolloutMigrator, RolloutPhase, RolloutRecord,
    RolloutStore, TenantFleet, TenantOutcome, TenantSession, TenantState,
};

/// What every tenant job of one runner shares.
pub(crate) struct JobContext {
    pub(crate) fleet: Arc<dyn TenantFleet>,
    pub(crate) migrator: Arc<dyn RolloutMigrator>,
    pub(crate) store: Arc<dyn RolloutStore>,
    pub(crate) listener: Listener,
    pub(crate) retry: RetryPolicy,
    pub(crate) rollout_id: i64,
    pub(crate) target_version: i64,
    pub(crate) owner: String,
    pub(crate) phase: RolloutPhase,
    /// What every migration this rollout commits leaves on the tenant's history.
    pub(crate) mark: String,
    /// The version the last tenant that needed migrating started from.
    pub(crate) usual_start: UsualStart,
}

impl JobContext {
    /// The mark of a rollout: its id, target and creation time, so that another
    /// state store's rollout of the same id does not pass for it.
    pub(crate) fn mark(rollout: &RolloutRecord) -> String {
        format!(
            "tenancy-kit rollout {} to {} created {}",
            rollout.id,
            rollout.key.target_version,
            rollout.created_at.unix_timestamp()
        )
    }
}

/// The version tenants start from: at first the version just below the target,
/// then the start of the last tenant that needed migrating (none after a tenant
/// found already at the target). The guess that lets the next tenant be
/// applied in one request.
#[derive(Debug)]
pub(crate) struct UsualStart(std::sync::Mutex<Option<i64>>);

impl UsualStart {
    pub(crate) fn new(first_guess: Option<i64>) -> Self {
        Self(std::sync::Mutex::new(first_guess))
    }

    fn set(&self, version: Option<i64>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = version;
    }

    fn get(&self) -> Option<i64> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("rollout_id", &self.rollout_id)
            .field("owner", &self.owner)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Why one attempt at a tenant stopped short of an outcome.
enum Stop {
    /// The tenant database failed; `version` is its version afterwards, if read.
    Backend {
        error: BackendError,
        version: Option<SchemaVersion>,
    },
    /// Another runner took the tenant over (our lease expired).
    LeaseLost,
    /// The state store failed.
    Store(RolloutError),
}

impl From<RolloutError> for Stop {
    fn from(error: RolloutError) -> Self {
        Self::Store(error)
    }
}

impl From<BackendError> for Stop {
    fn from(error: BackendError) -> Self {
        Self::Backend {
            error,
            version: None,
        }
    }
}

/// One tenant's job: find its database, migrate (or revert) it on one connection,
/// write the outcome. Returns the state written, or `None` if the lease was lost.
pub(crate) async fn run_job(
    ctx: Arc<JobContext>,
    claimed: ClaimedTenant,
) -> Result<Option<TenantState>, RolloutError> {
    ctx.listener.emit(RolloutEvent::TenantStarted {
        tenant: claimed.tenant_id.clone(),
        wave: claimed.wave,
        attempt: claimed.attempts,
    });
    let started = Instant::now();
    let mut job = Job {
        ctx: &ctx,
        claimed: &claimed,
        from: claimed
            .started
            .then(|| SchemaVersion::from(claimed.from_version)),
        seen: None,
    };
    let outcome = match job.database().await {
        Ok(Some(database)) => job.with_retries(&database).await,
        Ok(None) => Ok(skipped(
            None,
            "the fleet has no database to migrate for this tenant (not provisioned, being offboarded, or no longer listed)".into(),
        )),
        Err(stop) => Err(stop),
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(Stop::Backend { error, version }) => failed(version, job.from, &error),
        Err(Stop::LeaseLost) => return Ok(lease_lost(&claimed.tenant_id)),
        Err(Stop::Store(error)) => return Err(error),
    };
    let written = ctx
        .store
        .record_outcome(ctx.rollout_id, &claimed.tenant_id, &ctx.owner, &outcome)
        .await?;
    if !written {
        return Ok(lease_lost(&claimed.tenant_id));
    }
    ctx.listener.emit(event(
        &claimed.tenant_id,
        &outcome,
        job.seen.or(job.from),
        started.elapsed(),
    ));
    Ok(Some(outcome.state))
}

struct Job<'a> {
    ctx: &'a JobContext,
    claimed: &'a ClaimedTenant,
    /// The version the tenant started from, once recorded.
    from: Option<SchemaVersion>,
    /// The version this attempt found before migrating: what a resumed tenant
    /// reports moving from (`from` stays the rollout's start, for rollback).
    seen: Option<SchemaVersion>,
}

impl Job<'_> {
    async fn database(&self) -> Result<Option<DatabaseTarget>, Stop> {
        let database = self
            .ctx
            .fleet
            .database(&self.claimed.tenant_id)
            .await
            .map_err(BackendError::transient)?;
        Ok(database)
    }

    /// Attempts the job until it succeeds, fails permanently or the policy gives up.
    async fn with_retries(&mut self, database: &DatabaseTarget) -> Result<TenantOutcome, Stop> {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let stop = match self.attempt(database).await {
                Err(stop @ Stop::Backend { .. }) => stop,
                other => return other,
            };
            let decision = match &stop {
                Stop::Backend { error, .. } if error.is_retryable() => RetryDecision::Retry,
                _ => RetryDecision::GiveUp,
            };
            let elapsed = started.elapsed();
            match self.ctx.retry.next_delay(attempts, elapsed, decision) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(stop),
            }
        }
    }

    async fn attempt(&mut self, database: &DatabaseTarget) -> Result<TenantOutcome, Stop> {
        let mut session = self.ctx.migrator.connect(database).await?;
        let result = match self.ctx.phase {
            RolloutPhase::Forward => self.forward(session.as_mut()).await,
            RolloutPhase::Revert => self.revert(session.as_mut()).await,
        };
        session.close().await;
        result
    }

    async fn forward(&mut self, session: &mut dyn TenantSession) -> Result<TenantOutcome, Stop> {
        session.mark_commits(&self.ctx.mark);
        let mut refuted = false;
        if let Some(outcome) = self.forward_in_one_request(session, &mut refuted).await? {
            return Ok(outcome);
        }
        let current = match session.lock_version().await {
            Ok(current) => current,
            Err(error) => return Err(self.refused(session, error, refuted).await?),
        };
        let from = self.settle_start(session, current, refuted).await?;
        let target = self.ctx.target_version;
        if current >= Some(target) {
            if from < Some(target) {
                // An earlier attempt applied it and died before writing the outcome.
                return Ok(outcome(TenantState::Succeeded, current, true));
            }
            // The next tenant is read before anything is expected of it.
            self.ctx.usual_start.set(None);
            return Ok(skipped(
                Some(SchemaVersion::from(current)),
                format!("already at version {}", display(current)),
            ));
        }
        self.seen = Some(SchemaVersion::from(current));
        if current.is_some() {
            self.ctx.usual_start.set(current);
        }
        match session.apply(target).await {
            Ok(report) => Ok(outcome(
                TenantState::Succeeded,
                report.to_version,
                report.to_version != from,
            )),
            Err(error) => Err(Stop::Backend {
                version: session.version().await.ok().map(SchemaVersion::from),
                error,
            }),
        }
    }

    /// Why the tenant cannot be migrated, its version read before reading it
    /// under the lock failed. A refusal that will not pass on a retry (a
    /// migration never applied below the latest applied one, which the session
    /// reports rather than let the tenant pass for done): the start is settled
    /// now, while the tenant can be read, so that a start guessed for the one
    /// request is not left recorded.
    async fn refused(
        &mut self,
        session: &mut dyn TenantSession,
        error: BackendError,
        refuted: bool,
    ) -> Result<Stop, Stop> {
        if error.is_retryable() {
            return Ok(Stop::Backend {
                error,
                version: None,
            });
        }
        let version = session.version().await.ok();
        if let Some(current) = version {
            self.settle_start(session, current, refuted).await?;
        }
        Ok(Stop::Backend {
            error,
            version: version.map(SchemaVersion::from),
        })
    }

    /// On a first attempt, when the tenants before started from a known
    /// version: records it as this tenant's start, then applies in one request
    /// if the tenant is there. `Ok(None)`: take the locked path; `refuted` is
    /// set when the tenant was not there (nothing changed, the start recorded is wrong).
    async fn forward_in_one_request(
        &mut self,
        session: &mut dyn TenantSession,
        refuted: &mut bool,
    ) -> Result<Option<TenantOutcome>, Stop> {
        let target = self.ctx.target_version;
        let Some(usual) = self.ctx.usual_start.get() else {
            return Ok(None);
        };
        if self.from.is_some() || !session.applies_in_one_request(usual, target) {
            return Ok(None);
        }
        self.record_start(Some(usual)).await?;
        match session.apply_if_at(usual, target).await {
            Ok(Some(report)) => {
                self.seen = Some(SchemaVersion::from(Some(usual)));
                Ok(Some(outcome(
                    TenantState::Succeeded,
                    report.to_version,
                    true,
                )))
            }
            Ok(None) => {
                *refuted = true;
                Ok(None)
            }
            Err(error) => {
                // The step failed (the tenant was where expected), or the
                // connection did: settle the start while the tenant can be read.
                let version = session.version().await.ok();
                if let Some(current) = version {
                    self.settle_start(session, current, false).await?;
                }
                Err(Stop::Backend {
                    version: version.map(SchemaVersion::from),
                    error,
                })
            }
        }
    }

    async fn revert(&mut self, session: &mut dyn TenantSession) -> Result<TenantOutcome, Stop> {
        let Some(from) = self.from else {
            // Claimed for rollback before any forward attempt started: nothing to undo.
            return Ok(outcome(TenantState::Pending, None, false));
        };
        match session.revert(from.latest()).await {
            Ok(report) => Ok(outcome(TenantState::RolledBack, report.to_version, false)),
            Err(error) => Err(Stop::Backend {
                version: session.version().await.ok().map(SchemaVersion::from),
                error,
            }),
        }
    }

    /// The version the tenant started from, `current` being what it holds now:
    /// recorded now on a first attempt. A start recorded before stands unless
    /// it was a guess this rollout never acted on: `refuted` by the tenant, or
    /// differing from `current` on a tenant that carries no commit of this
    /// rollout; then `current` is recorded instead.
    async fn settle_start(
        &mut self,
        session: &mut dyn TenantSession,
        current: Option<i64>,
        refuted: bool,
    ) -> Result<Option<i64>, Stop> {
        let Some(recorded) = self.from.map(SchemaVersion::latest) else {
            return self.record_start(current).await;
        };
        if recorded == current {
            return Ok(recorded);
        }
        if !refuted && session.carries_mark(&self.ctx.mark).await? != Some(false) {
            return Ok(recorded);
        }
        self.from = None;
        self.record_start(current).await
    }

    /// Writes the starting version before anything changes, once per tenant.
    async fn record_start(&mut self, current: Option<i64>) -> Result<Option<i64>, Stop> {
        if let Some(from) = self.from {
            return Ok(from.latest());
        }
        let ctx = self.ctx;
        let recorded = ctx
            .store
            .record_start(ctx.rollout_id, &self.claimed.tenant_id, &ctx.owner, current)
            .await?;
        if !recorded {
            return Err(Stop::LeaseLost);
        }
        self.from = Some(SchemaVersion::from(current));
        Ok(current)
    }
}

fn outcome(state: TenantState, version: Option<i64>, migrated: bool) -> TenantOutcome {
    TenantOutcome {
        state,
        version: Some(SchemaVersion::from(version)),
        migrated,
        error: None,
    }
}

fn skipped(version: Option<SchemaVersion>, reason: String) -> TenantOutcome {
    TenantOutcome {
        state: TenantState::Skipped,
        version,
        migrated: false,
        error: Some(reason),
    }
}

fn failed(
    version: Option<SchemaVersion>,
    from: Option<SchemaVersion>,
    error: &BackendError,
) -> TenantOutcome {
    TenantOutcome {
        state: TenantState::Failed,
        // Unknown version or start: leave what is stored.
        migrated: matches!((version, from), (Some(v), Some(f)) if v != f),
        version,
        error: Some(error.to_string()),
    }
}

fn event(
    tenant: &TenantId,
    outcome: &TenantOutcome,
    from: Option<SchemaVersion>,
    elapsed: Duration,
) -> RolloutEvent {
    let tenant = tenant.clone();
    match outcome.state {
        TenantState::Failed => RolloutEvent::TenantFailed {
            tenant,
            error: outcome.error.clone().unwrap_or_default(),
        },
        TenantState::Skipped | TenantState::Pending => RolloutEvent::TenantSkipped {
            tenant,
            reason: outcome.error.clone().unwrap_or_default(),
        },
        TenantState::RolledBack => RolloutEvent::TenantRolledBack {
            tenant,
            to_version: outcome.version.and_then(SchemaVersion::latest),
            elapsed,
        },
        _ => RolloutEvent::TenantSucceeded {
            tenant,
            from_version: from.and_then(SchemaVersion::latest),
            to_version: outcome.version.and_then(SchemaVersion::latest),
            elapsed,
        },
    }
}

fn lease_lost(tenant: &TenantId) -> Option<TenantState> {
    tracing::warn!(%tenant, "lease lost: another runner took this tenant over; its outcome is theirs to record");
    None
}

fn display(version: Option<i64>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| v.to_string())
}
