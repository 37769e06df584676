//! HTTP routes for a host's axum service (feature `axum`): the admin API of fleet
//! rollouts (run, status, halt, resume, rollback) as a composable [`Router`] over
//! state the host owns ([`FromRef`]). Paths are relative; mount it behind the host's
//! admin guard (e.g. `tenancy_core::http::require_admin_token`).
//!
//! | route | answer |
//! |---|---|
//! | `POST /run {"migration_sql", "version", "strategy"}` | 202 [`RolloutStarted`]; 422 with lint findings in `details`, or when the strategy cannot be planned (no tenants, an empty canary wave); a refused migration is not stored |
//! | `GET /status[?after=POSITION&limit=N]` | [`RolloutStatusView`] of the latest rollout of the current migrations |
//! | `POST /halt {"reason"}` | [`Halted`]: whether an unfinished rollout was halted |
//! | `POST /resume` | 202 [`RolloutStarted`]: the unfinished (or halted) rollout runs again |
//! | `POST /rollback` | 202 [`RolloutStarted`]: the latest rollout is reverted; 404 without one, 422 when a migration has no down script |
//! | `DELETE /{version}` | [`Withdrawn`]: the latest migration, added at run time and applied by no tenant, is withdrawn; 409 once a rollout recorded a tenant at its version or later (also on the way to a later target that failed), or has one in flight towards it |
//! | `POST /rehearse {"tenant"?, "version"?, "migration_sql"?}` | [`Rehearsed`]: the pending migrations (with the proposed one, if given) applied to a copy of the tenant's database (default: the first, a `canary:1` rollout's); 404 for an unknown tenant, 422 for a bad proposal |
//!
//! `POST /run` with the version of the latest migration replaces its SQL, on the
//! same condition as `DELETE`: a migration that failed everywhere can be fixed or
//! taken back without touching the control plane by hand. An empty
//! `migration_sql` is refused (422).
//!
//! Each route calls one method of [`RolloutRoutes`] ([`start`](RolloutRoutes::start),
//! [`status`](RolloutRoutes::status), [`halt`](RolloutRoutes::halt),
//! [`resume`](RolloutRoutes::resume), [`rollback`](RolloutRoutes::rollback),
//! [`withdraw`](RolloutRoutes::withdraw), [`rehearse`](RolloutRoutes::rehearse)); the admin page's forms (feature
//! `pages`) call the same methods, so both refuse alike.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tenancy_core::http::ApiError;
use tenancy_core::{TenantDirectory, TenantId};

#[cfg(feature = "postgres")]
use crate::rehearse::{choose_canary, Rehearsal, RehearsalError, RehearsalReport};
use crate::rollout::store::{RolloutKey, RolloutStore, TenantRecord};
use crate::{
    CatalogError, Migration, MigrationCatalog, MigrationSet, Rollout, RolloutError, RolloutPlan,
    RolloutReport, RolloutStatus, RolloutStatusView, Strategy, TenantState,
};
#[cfg(feature = "postgres")]
use crate::{DirectoryFleet, TenantMigrator};

/// A task the routes hand to the host to run in the background.
pub type BackgroundTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

type Spawner = Arc<dyn Fn(BackgroundTask) + Send + Sync>;

/// The state of [`rollout_router`]: the tenants, the rollout store, the catalog of
/// migrations, and how to run a rollout in the background.
#[derive(Clone)]
pub struct RolloutRoutes {
    directory: Arc<dyn TenantDirectory>,
    store: Arc<dyn RolloutStore>,
    catalog: Arc<dyn MigrationCatalog>,
    spawn: Spawner,
    changed: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for RolloutRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RolloutRoutes").finish_non_exhaustive()
    }
}

impl RolloutRoutes {
    /// Routes rolling `catalog`'s migrations out to `directory`'s tenants, with their
    /// state in `store`; rollouts run on spawned tasks (see
    /// [`on_background`](Self::on_background)).
    pub fn new(
        directory: Arc<dyn TenantDirectory>,
        store: Arc<dyn RolloutStore>,
        catalog: Arc<dyn MigrationCatalog>,
    ) -> Self {
        Self {
            directory,
            store,
            catalog,
            spawn: Arc::new(|task| {
                tokio::spawn(task);
            }),
            changed: None,
        }
    }

    /// Calls `callback` after a migration was replaced or withdrawn, so that the
    /// host can resume what failed on the old one (signups stopped at their
    /// migrate step, say).
    pub fn on_migrations_changed(mut self, callback: impl Fn() + Send + Sync + 'static) -> Self {
        self.changed = Some(Arc::new(callback));
        self
    }

    /// Before the latest migration of `set` is replaced or withdrawn: refuses when
    /// its rollout reached a tenant, or when any rollout recorded a tenant at its
    /// version or later (on the way to a later target, say) or has one in flight
    /// towards it; then halts its rollout when it is still open (its runners stop
    /// claiming; the changed set gets a rollout of its own).
    async fn release_latest(&self, set: &MigrationSet) -> Result<(), ApiError> {
        let Some(version) = set.latest_version() else {
            return Ok(());
        };
        let rollout = self.rollout(set, Strategy::AllAtOnce);
        let report = rollout.status().await.map_err(rollout_error)?;
        if let Some(report) = &report {
            let reached = report.counts.succeeded + report.counts.skipped;
            if reached > 0 {
                return Err(ApiError::conflict(format!(
                    "migration {} is applied on {reached} tenants already; fix it forward with a new migration",
                    report.target_version
                )));
            }
        }
        self.refuse_if_held(version, false).await?;
        let Some(report) = report else {
            return Ok(());
        };
        if matches!(report.status, RolloutStatus::Active | RolloutStatus::Halted) {
            let reason = "its migration was replaced or withdrawn";
            self.store
                .set_status(report.rollout_id, RolloutStatus::Halted, Some(reason))
                .await
                .map_err(rollout_error)?;
            // A runner may have claimed a tenant between the check and the halt.
            self.refuse_if_held(version, true).await?;
        }
        Ok(())
    }

    /// Refuses (409) when the rollout state cannot show that no tenant holds
    /// migration `version`: a rollout recorded a tenant at it or later, has one in
    /// flight towards it, or the store cannot tell. `halted`: the caller halted the
    /// migration's rollout just before.
    async fn refuse_if_held(&self, version: i64, halted: bool) -> Result<(), ApiError> {
        const SHOWN: usize = 5;
        let limit = u32::try_from(SHOWN + 1).unwrap_or(u32::MAX);
        let holders = self
            .store
            .tenants_holding(version, limit)
            .await
            .map_err(rollout_error)?;
        let Some(holders) = holders else {
            return Err(ApiError::conflict(format!(
                "migration {version} cannot be replaced or withdrawn: this rollout state store cannot tell whether a tenant applied it; fix it forward with a new migration"
            )));
        };
        if holders.is_empty() {
            return Ok(());
        }
        let mut listed: Vec<String> = holders
            .iter()
            .take(SHOWN)
            .map(|holder| match (holder.in_flight, holder.version) {
                (true, _) => format!("`{}` (being migrated now)", holder.tenant_id),
                (false, Some(at)) => format!("`{}` (at version {at})", holder.tenant_id),
                (false, None) => format!("`{}`", holder.tenant_id),
            })
            .collect();
        if holders.len() > SHOWN {
            listed.push("more".into());
        }
        let advice = if holders.iter().any(|holder| holder.in_flight) {
            "halt its rollout (POST …/halt), wait for the tenants being migrated to finish (those of a runner that stopped are finished by POST …/resume) and ask again; if they applied it, fix it forward with a new migration"
        } else {
            "fix it forward with a new migration"
        };
        let halted = if halted {
            " (its rollout was halted; POST …/resume continues it)"
        } else {
            ""
        };
        Err(ApiError::conflict(format!(
            "migration {version} may be applied already: rollouts recorded tenants {}{halted}; {advice}",
            listed.join(", ")
        )))
    }

    fn migrations_changed(&self) {
        if let Some(changed) = &self.changed {
            changed();
        }
    }

    /// Runs rollouts with `spawn` instead (a task tracker that waits for them at
    /// shutdown, say). A rollout stopped halfway resumes when run again.
    pub fn on_background(mut self, spawn: impl Fn(BackgroundTask) + Send + Sync + 'static) -> Self {
        self.spawn = Arc::new(spawn);
        self
    }

    fn rollout(&self, set: &MigrationSet, strategy: Strategy) -> Rollout {
        Rollout::of_migrations(self.directory.clone(), set.clone(), self.store.clone())
            .strategy(strategy)
            .build()
    }

    async fn current(&self) -> Result<MigrationSet, ApiError> {
        self.catalog.current().await.map_err(ApiError::internal)
    }

    /// Adds `migration_sql` to the catalog as migration `version` (sqlx's naming,
    /// `20240127120000_add_field`) and starts its rollout with `strategy` in the
    /// background (what `POST /run` does).
    ///
    /// The version of the latest migration replaces its SQL instead, when no tenant
    /// applied it: its open rollout is halted and the changed set gets a rollout of
    /// its own. Refused with 422 (a bad version, empty SQL, lint errors, no
    /// tenants, an empty canary wave), 409 (the migration it would replace is
    /// applied somewhere); a refused request stores nothing, as the migration and
    /// the rollout's plan are checked before the migration is stored.
    pub async fn start(
        &self,
        version: &str,
        migration_sql: &str,
        strategy: Strategy,
    ) -> Result<RolloutStarted, ApiError> {
        let migration =
            Migration::parse_adhoc(version, migration_sql).map_err(ApiError::unprocessable)?;
        let current = self.current().await?;
        // Everything that may refuse the request comes before the migration is
        // stored: a tenant onboarded meanwhile would apply a stored one.
        let proposed = self
            .catalog
            .propose(version, migration_sql)
            .await
            .map_err(refusal)?;
        let planned = self
            .plan_start(&self.rollout(&proposed, strategy.clone()))
            .await?;
        let replacing = current.latest_version() == Some(migration.version());
        let set = if replacing {
            // The same version again: a replacement of a migration no tenant applied.
            self.release_latest(&current).await?;
            let set = self
                .catalog
                .replace(version, migration_sql)
                .await
                .map_err(refusal)?;
            self.migrations_changed();
            set
        } else {
            self.catalog
                .add(version, migration_sql)
                .await
                .map_err(refusal)?
        };
        let rollout = self.rollout(&set, strategy.clone());
        match self.record_start(&rollout, &strategy, planned).await {
            Ok(rollout_id) => {
                run_in_background(self, rollout);
                Ok(RolloutStarted { rollout_id })
            }
            Err(error) if error.status().is_client_error() => {
                let previous = replacing
                    .then(|| current.iter().find(|m| m.version() == migration.version()))
                    .flatten();
                Err(self.take_back(error, &migration, previous).await)
            }
            Err(error) => Err(error),
        }
    }

    /// Checks, storing nothing, that `rollout` can start: the unfinished (or
    /// completed) rollout of its set that it would join is not rolling back, or
    /// else the fleet gives a plan (some tenants, a canary wave that is not
    /// empty). Returns what [`record_start`](Self::record_start) needs.
    async fn plan_start(&self, rollout: &Rollout) -> Result<PlannedStart, ApiError> {
        let key = rollout.key().map_err(rollout_error)?;
        let existing = match self.store.find_open(&key).await.map_err(rollout_error)? {
            Some(open) => Some(open),
            None => self
                .store
                .find_latest(&key)
                .await
                .map_err(rollout_error)?
                .filter(|latest| latest.status == RolloutStatus::Completed),
        };
        match existing {
            Some(record) if record.status == RolloutStatus::RollingBack => {
                Err(rollout_error(RolloutError::RollingBack {
                    rollout_id: record.id,
                }))
            }
            Some(_) => Ok(PlannedStart { key, plan: None }),
            None => {
                let plan = rollout.plan().await.map_err(rollout_error)?;
                Ok(PlannedStart {
                    key,
                    plan: Some(plan),
                })
            }
        }
    }

    /// Records `rollout` in the state store with the plan checked before its
    /// migration was stored; plans again when another request changed the set
    /// meanwhile. Returns its id.
    async fn record_start(
        &self,
        rollout: &Rollout,
        strategy: &Strategy,
        planned: PlannedStart,
    ) -> Result<i64, ApiError> {
        let key = rollout.key().map_err(rollout_error)?;
        let planned = if key == planned.key {
            planned
        } else {
            self.plan_start(rollout).await?
        };
        let record = match &planned.plan {
            Some(plan) => {
                self.store
                    .create_or_join(&planned.key, strategy, plan)
                    .await
            }
            None => rollout.start().await,
        };
        Ok(record.map_err(rollout_error)?.id)
    }

    /// After a rollout was refused once its migration was stored (the fleet or the
    /// catalog changed since the checks): withdraws `migration` again, or puts
    /// `previous` back when it replaced one, and returns `refused` (with what to do
    /// when the catalog could not be restored).
    async fn take_back(
        &self,
        refused: ApiError,
        migration: &Migration,
        previous: Option<&Migration>,
    ) -> ApiError {
        let restored = match previous {
            Some(previous) => self
                .catalog
                .replace(previous.file(), previous.sql())
                .await
                .map(drop),
            None => self.catalog.withdraw(migration.version()).await.map(drop),
        };
        match restored {
            Ok(()) => {
                if previous.is_some() {
                    self.migrations_changed();
                }
                refused
            }
            Err(error) => {
                tracing::error!(%error, version = migration.version(), "a refused migration could not be taken out of the catalog");
                ApiError::new(
                    refused.status(),
                    format!(
                        "{}; migration {} stays stored, as taking it back failed ({error}): withdraw it with DELETE …/{}",
                        refused.message(),
                        migration.version(),
                        migration.version()
                    ),
                )
            }
        }
    }

    /// The latest rollout of the current migrations with a page of its tenants
    /// (after position `after`, `limit` clamped to 1–10,000), as `GET /status`
    /// answers; 404 when there is none yet.
    pub async fn status(
        &self,
        after: Option<u32>,
        limit: u32,
    ) -> Result<RolloutStatusView, ApiError> {
        let rollout = self.rollout(&self.current().await?, Strategy::AllAtOnce);
        let Some(report) = rollout.status().await.map_err(rollout_error)? else {
            return Err(ApiError::not_found(
                "no rollout of the current migrations yet; start one with POST …/run",
            ));
        };
        let limit = limit.clamp(1, 10_000);
        rollout
            .view(&report, after, limit)
            .await
            .map_err(rollout_error)
    }

    /// The latest rollout of the current migrations for a page: its report, its
    /// strategy and its first `failed` failed tenants (in rollout order). `None`
    /// when the current migrations have no rollout yet (or there are none).
    pub async fn overview(&self, failed: u32) -> Result<Option<RolloutOverview>, ApiError> {
        let set = self.current().await?;
        if set.latest_version().is_none() {
            return Ok(None);
        }
        let key = self
            .rollout(&set, Strategy::AllAtOnce)
            .key()
            .map_err(rollout_error)?;
        let Some(latest) = self.store.find_latest(&key).await.map_err(rollout_error)? else {
            return Ok(None);
        };
        let (record, waves) = self
            .store
            .progress(latest.id)
            .await
            .map_err(rollout_error)?;
        let versions = self
            .store
            .version_counts(latest.id)
            .await
            .map_err(rollout_error)?;
        let failed = if failed == 0 {
            Vec::new()
        } else {
            self.store
                .tenants_in_state(latest.id, TenantState::Failed, failed)
                .await
                .map_err(rollout_error)?
                .into_iter()
                .map(|(_, tenant)| tenant)
                .collect()
        };
        let strategy = record.strategy.clone();
        Ok(Some(RolloutOverview {
            report: RolloutReport::new(record, waves, versions),
            strategy,
            failed,
        }))
    }

    /// The rows of `tenants` in the latest rollout of the current migrations
    /// (state, versions, error), in rollout order; tenants it does not list, or
    /// all when there is no rollout, are left out. One query for a page of tenants.
    pub async fn tenant_rows(&self, tenants: &[TenantId]) -> Result<Vec<TenantRecord>, ApiError> {
        let set = self.current().await?;
        if set.latest_version().is_none() || tenants.is_empty() {
            return Ok(Vec::new());
        }
        let key = self
            .rollout(&set, Strategy::AllAtOnce)
            .key()
            .map_err(rollout_error)?;
        let Some(latest) = self.store.find_latest(&key).await.map_err(rollout_error)? else {
            return Ok(Vec::new());
        };
        let rows = self
            .store
            .tenant_rows(latest.id, tenants)
            .await
            .map_err(rollout_error)?;
        Ok(rows.into_iter().map(|(_, tenant)| tenant).collect())
    }

    /// Halts the unfinished rollout of the current migrations with `reason` (shown
    /// in its status): runners claim no more tenants and let those in flight
    /// finish (what `POST /halt` does).
    pub async fn halt(&self, reason: &str) -> Result<Halted, ApiError> {
        let rollout = self.rollout(&self.current().await?, Strategy::AllAtOnce);
        let halted = rollout.halt(reason).await.map_err(rollout_error)?;
        Ok(Halted { halted })
    }

    /// Runs the unfinished (or halted) rollout of the current migrations again in
    /// the background; failed tenants are retried (what `POST /resume` does). 404
    /// when none is unfinished.
    pub async fn resume(&self) -> Result<RolloutStarted, ApiError> {
        let set = self.current().await?;
        let rollout = self.rollout(&set, Strategy::AllAtOnce);
        let key = rollout.key().map_err(rollout_error)?;
        let Some(open) = self.store.find_open(&key).await.map_err(rollout_error)? else {
            return Err(ApiError::not_found(
                "no unfinished rollout of the current migrations to resume",
            ));
        };
        run_in_background(self, rollout);
        Ok(RolloutStarted {
            rollout_id: open.id,
        })
    }

    /// Reverts, in the background, the tenants the latest rollout of the current
    /// migrations migrated (what `POST /rollback` does). Refused before anything
    /// changes when it cannot succeed: 404 without a rollout, 422 when a migration
    /// to undo has no down script.
    pub async fn rollback(&self) -> Result<RolloutStarted, ApiError> {
        let rollout = self.rollout(&self.current().await?, Strategy::AllAtOnce);
        // Refused here, before answering, when it cannot succeed (nothing to roll back,
        // a migration without a down script).
        let rollout_id = rollout.check_rollback().await.map_err(rollout_error)?;
        (self.spawn)(Box::pin(async move {
            match rollout.rollback().await {
                Ok(report) => {
                    tracing::info!(rollout = report.rollout_id, status = %report.status, "rollback finished")
                }
                Err(error) => {
                    tracing::error!(%error, "rollback stopped; ask for it again to resume")
                }
            }
        }));
        Ok(RolloutStarted { rollout_id })
    }

    /// Withdraws the latest migration, `version` (its number, e.g.
    /// `20240127120000`), added at run time and applied by no tenant (what
    /// `DELETE /{version}` does). 422 for another version; 409 once a tenant
    /// may have applied it: a rollout (of any set) recorded a tenant at that
    /// version or later, failed attempts included, or has one in flight towards
    /// it, or the state store cannot tell.
    pub async fn withdraw(&self, version: &str) -> Result<Withdrawn, ApiError> {
        let version: i64 = version.parse().map_err(|_| {
            ApiError::unprocessable(format!(
                "`{version}` is not a migration version; use its number, e.g. 20240127120000"
            ))
        })?;
        let current = self.current().await?;
        if current.latest_version() != Some(version) {
            return Err(ApiError::unprocessable(format!(
                "migration {version} is not the latest migration; only the latest can be withdrawn"
            )));
        }
        self.release_latest(&current).await?;
        let set = self.catalog.withdraw(version).await.map_err(refusal)?;
        self.migrations_changed();
        Ok(Withdrawn {
            withdrawn: version,
            latest_version: set.latest_version(),
        })
    }

    /// Applies the current migrations that `tenant` (default: the fleet's first
    /// tenant with a database, the one a `canary:1` rollout starts with) has not
    /// applied, plus `proposed` (version in sqlx's naming, SQL) if given, to a
    /// scratch copy of its database, and reports each one's duration, locks and
    /// schema (what `POST /rehearse` does). The tenant is not changed; the copy is
    /// removed, also when the request is dropped. A migration failing on the copy
    /// is reported in the answer, not refused. (Needs the `postgres` feature.)
    #[cfg(feature = "postgres")]
    pub async fn rehearse(
        &self,
        tenant: Option<&TenantId>,
        proposed: Option<(&str, &str)>,
    ) -> Result<Rehearsed, ApiError> {
        let mut set = self.current().await?;
        if let Some((version, sql)) = proposed {
            set = with_proposed(&set, version, sql)?;
        }
        let fleet = DirectoryFleet::new(self.directory.clone());
        let (tenant, target) = choose_canary(&fleet, tenant)
            .await
            .map_err(rehearsal_error)?;
        let report = Rehearsal::new(TenantMigrator::new(set))
            .run(&target)
            .await
            .map_err(rehearsal_error)?;
        Ok(Rehearsed { tenant, report })
    }

    /// The migrations rollouts bring tenants to now (the catalog's current set).
    pub async fn migrations(&self) -> Result<MigrationSet, ApiError> {
        self.current().await
    }
}

/// A rollout checked before its migration is stored: its key, and the plan to
/// record it with (`None`: it joins the rollout of its set already recorded).
#[derive(Debug)]
struct PlannedStart {
    key: RolloutKey,
    plan: Option<RolloutPlan>,
}

/// The latest rollout of the current migrations as a page shows it (see
/// [`RolloutRoutes::overview`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RolloutOverview {
    /// Its report: status, counts per state, per wave and per version.
    pub report: RolloutReport,
    /// The strategy it was planned with.
    pub strategy: Strategy,
    /// Its first failed tenants, in rollout order, with their errors.
    pub failed: Vec<TenantRecord>,
}

/// The body of `POST /run`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct RunRequest {
    /// The migration's SQL.
    pub migration_sql: String,
    /// Its version and description, in sqlx's naming (`20240127120000_add_field`);
    /// a bare version may be given as a JSON number.
    #[serde(deserialize_with = "version_text")]
    pub version: String,
    /// `all` (default), `waves:10,50,100`, `canary:N` or `canary:tag=TAG`.
    #[serde(default)]
    pub strategy: Option<String>,
}

/// A migration's version as text, given as a JSON string or a bare integer.
fn version_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Number(u64),
    }
    Ok(
        match Text::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "version must be a string such as \"20240127120000_add_field\" or a whole number",
            )
        })? {
            Text::Text(text) => text,
            Text::Number(number) => number.to_string(),
        },
    )
}

/// The body of `POST /halt`.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct HaltRequest {
    /// Why (shown in the status).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The query of `GET /status`.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct StatusQuery {
    /// The position after which the page of tenants starts.
    pub after: Option<u32>,
    /// The page size (default 1,000, at most 10,000).
    pub limit: Option<u32>,
}

/// A rollout accepted to run in the background.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RolloutStarted {
    /// Its id (see `GET /status`).
    pub rollout_id: i64,
}

/// The answer of `DELETE /{version}`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Withdrawn {
    /// The withdrawn migration's version.
    pub withdrawn: i64,
    /// The latest version of the migrations now.
    pub latest_version: Option<i64>,
}

/// The body of `POST /rehearse`: all optional.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct RehearseRequest {
    /// The tenant whose database is copied (default: the first with one).
    #[serde(default)]
    pub tenant: Option<TenantId>,
    /// A proposed migration's version and description (`20240127120000_add_field`),
    /// rehearsed after the current ones; with `migration_sql`.
    #[serde(default)]
    pub version: Option<String>,
    /// The proposed migration's SQL; with `version`.
    #[serde(default)]
    pub migration_sql: Option<String>,
}

/// The answer of `POST /rehearse`: the tenant and the
/// [`RehearsalReport`]'s fields.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Rehearsed {
    /// The tenant whose database was copied.
    pub tenant: TenantId,
    /// What the rehearsal found.
    #[serde(flatten)]
    pub report: RehearsalReport,
}

/// The answer of `POST /halt`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Halted {
    /// Whether an unfinished rollout was halted (`false`: none was running).
    pub halted: bool,
}

/// The admin rollout routes (see the [module](self) docs).
pub fn rollout_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    RolloutRoutes: FromRef<S>,
{
    let router = Router::new()
        .route("/run", post(run::<S>))
        .route("/status", get(status::<S>))
        .route("/halt", post(halt::<S>))
        .route("/resume", post(resume::<S>))
        .route("/rollback", post(rollback::<S>))
        .route("/{version}", delete(withdraw::<S>));
    #[cfg(feature = "postgres")]
    let router = router.route("/rehearse", post(rehearse::<S>));
    router
}

#[cfg(feature = "postgres")]
async fn rehearse<S>(
    State(state): State<S>,
    request: Option<Json<RehearseRequest>>,
) -> Result<Json<Rehearsed>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let Json(request) = request.unwrap_or_default();
    let proposed = match (request.version.as_deref(), request.migration_sql.as_deref()) {
        (Some(version), Some(sql)) => Some((version, sql)),
        (None, None) => None,
        _ => {
            return Err(ApiError::unprocessable(
                "a proposed migration needs both `version` and `migration_sql`",
            ))
        }
    };
    Ok(Json(
        routes.rehearse(request.tenant.as_ref(), proposed).await?,
    ))
}

/// `set` with migration `version` set to `sql` (added, or replacing the one of
/// that version), or a 422 saying what is wrong with it.
#[cfg(feature = "postgres")]
fn with_proposed(set: &MigrationSet, version: &str, sql: &str) -> Result<MigrationSet, ApiError> {
    if sql.trim().is_empty() {
        return Err(ApiError::unprocessable("`migration_sql` is empty"));
    }
    let proposed = Migration::parse_adhoc(version, sql).map_err(ApiError::unprocessable)?;
    set.iter()
        .filter(|migration| migration.version() != proposed.version())
        .cloned()
        .fold(MigrationSet::builder(), |builder, m| builder.migration(m))
        .migration(proposed)
        .build()
        .map_err(ApiError::unprocessable)
}

#[cfg(feature = "postgres")]
fn rehearsal_error(error: RehearsalError) -> ApiError {
    match &error {
        RehearsalError::UnknownTenant { .. } | RehearsalError::EmptyFleet => {
            ApiError::not_found(error)
        }
        RehearsalError::Migrate(migrate) if !migrate.is_retryable() => ApiError::conflict(error),
        RehearsalError::Unsupported { .. } => ApiError::unprocessable(error),
        RehearsalError::Fleet(_) => ApiError::internal(error),
        // The tenant's server is unreachable, or refuses to make or drop a copy:
        // worth showing, and worth retrying.
        _ => ApiError::unavailable(error),
    }
}

async fn run<S>(
    State(state): State<S>,
    Json(request): Json<RunRequest>,
) -> Result<(StatusCode, Json<RolloutStarted>), ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let strategy = parse_strategy(request.strategy.as_deref())?;
    let started = routes
        .start(&request.version, &request.migration_sql, strategy)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

async fn status<S>(
    State(state): State<S>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<RolloutStatusView>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let limit = query.limit.unwrap_or(1000);
    Ok(Json(routes.status(query.after, limit).await?))
}

async fn halt<S>(
    State(state): State<S>,
    request: Option<Json<HaltRequest>>,
) -> Result<Json<Halted>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let reason = request
        .and_then(|Json(r)| r.reason)
        .unwrap_or_else(|| "halted through the admin API".into());
    Ok(Json(routes.halt(&reason).await?))
}

async fn resume<S>(State(state): State<S>) -> Result<(StatusCode, Json<RolloutStarted>), ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    Ok((StatusCode::ACCEPTED, Json(routes.resume().await?)))
}

async fn rollback<S>(State(state): State<S>) -> Result<(StatusCode, Json<RolloutStarted>), ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    Ok((StatusCode::ACCEPTED, Json(routes.rollback().await?)))
}

async fn withdraw<S>(
    State(state): State<S>,
    Path(version): Path<String>,
) -> Result<Json<Withdrawn>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    Ok(Json(routes.withdraw(&version).await?))
}

/// The strategy named by `text` (`all` when absent), or a 422 saying how to write one.
pub(crate) fn parse_strategy(text: Option<&str>) -> Result<Strategy, ApiError> {
    text.unwrap_or("all")
        .parse()
        .map_err(ApiError::unprocessable)
}

fn run_in_background(routes: &RolloutRoutes, rollout: Rollout) {
    (routes.spawn)(Box::pin(async move {
        match rollout.run().await {
            Ok(report) => {
                tracing::info!(rollout = report.rollout_id, status = %report.status, "rollout finished")
            }
            Err(error) => tracing::error!(%error, "rollout stopped; resume it to go on"),
        }
    }));
}

fn refusal(error: CatalogError) -> ApiError {
    match error {
        CatalogError::Refused { message, findings } if !findings.is_empty() => {
            let details = serde_json::to_value(&findings).unwrap_or_default();
            ApiError::unprocessable(message).with_details(details)
        }
        CatalogError::Refused { message, .. } => ApiError::unprocessable(message),
        CatalogError::Applied(message) => ApiError::conflict(message),
        CatalogError::Storage(error) => ApiError::internal(error),
    }
}

fn rollout_error(error: RolloutError) -> ApiError {
    match error {
        RolloutError::NotFound { .. } => ApiError::not_found(error),
        RolloutError::RollingBack { .. } => ApiError::conflict(error),
        RolloutError::Irreversible { .. }
        | RolloutError::InvalidStrategy(_)
        | RolloutError::NoTenants
        | RolloutError::EmptyCanary { .. }
        | RolloutError::EmptyMigrationSet => ApiError::unprocessable(error),
        other => ApiError::internal(other),
    }
}
