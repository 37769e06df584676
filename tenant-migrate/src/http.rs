//! HTTP routes for a host's axum service (feature `axum`): the admin API of fleet
//! rollouts (run, status, halt, resume, rollback) as a composable [`Router`] over
//! state the host owns ([`FromRef`]). Paths are relative; mount it behind the host's
//! admin guard (e.g. `tenancy_core::http::require_admin_token`).
//!
//! | route | answer |
//! |---|---|
//! | `POST /run {"migration_sql", "version", "strategy"}` | 202 [`RolloutStarted`]; 422 with lint findings in `details` |
//! | `GET /status[?after=POSITION&limit=N]` | [`RolloutStatusView`] of the latest rollout of the current migrations |
//! | `POST /halt {"reason"}` | [`Halted`]: whether an unfinished rollout was halted |
//! | `POST /resume` | 202 [`RolloutStarted`]: the unfinished (or halted) rollout runs again |
//! | `POST /rollback` | 202 [`RolloutStarted`]: the latest rollout is reverted; 404 without one, 422 when a migration has no down script |
//! | `DELETE /{version}` | [`Withdrawn`]: the latest migration, added at run time and applied by no tenant, is withdrawn; 409 once a tenant applied it |
//!
//! `POST /run` with the version of the latest migration replaces its SQL, on the
//! same condition as `DELETE`: a migration that failed everywhere can be fixed or
//! taken back without touching the control plane by hand. An empty
//! `migration_sql` is refused (422).

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
use tenancy_core::TenantDirectory;

use crate::rollout::store::RolloutStore;
use crate::{
    CatalogError, Migration, MigrationCatalog, MigrationSet, Rollout, RolloutError, RolloutStatus,
    RolloutStatusView, Strategy,
};

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
    /// its rollout reached a tenant, and halts that rollout when it is still open
    /// (its runners stop claiming; the changed set gets a rollout of its own).
    async fn release_latest(&self, set: &MigrationSet) -> Result<(), ApiError> {
        let rollout = self.rollout(set, Strategy::AllAtOnce);
        let Some(report) = rollout.status().await.map_err(rollout_error)? else {
            return Ok(());
        };
        let reached = report.counts.succeeded + report.counts.skipped;
        if reached > 0 {
            return Err(ApiError::conflict(format!(
                "migration {} is applied on {reached} tenants already; fix it forward with a new migration",
                report.target_version
            )));
        }
        if matches!(report.status, RolloutStatus::Active | RolloutStatus::Halted) {
            let reason = "its migration was replaced or withdrawn";
            self.store
                .set_status(report.rollout_id, RolloutStatus::Halted, Some(reason))
                .await
                .map_err(rollout_error)?;
        }
        Ok(())
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
}

/// The body of `POST /run`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct RunRequest {
    /// The migration's SQL.
    pub migration_sql: String,
    /// Its version and description, in sqlx's naming (`20240127120000_add_field`).
    pub version: String,
    /// `all` (default), `waves:10,50,100`, `canary:N` or `canary:tag=TAG`.
    #[serde(default)]
    pub strategy: Option<String>,
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
    Router::new()
        .route("/run", post(run::<S>))
        .route("/status", get(status::<S>))
        .route("/halt", post(halt::<S>))
        .route("/resume", post(resume::<S>))
        .route("/rollback", post(rollback::<S>))
        .route("/{version}", delete(withdraw::<S>))
}

async fn run<S>(
    State(state): State<S>,
    Json(request): Json<RunRequest>,
) -> Result<(StatusCode, Json<RolloutStarted>), ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let strategy: Strategy = request
        .strategy
        .as_deref()
        .unwrap_or("all")
        .parse()
        .map_err(ApiError::unprocessable)?;
    let migration = Migration::parse_adhoc(&request.version, &request.migration_sql)
        .map_err(ApiError::unprocessable)?;
    let current = routes.current().await?;
    let set = if current.latest_version() == Some(migration.version()) {
        // The same version again: a replacement of a migration no tenant applied.
        routes.release_latest(&current).await?;
        let set = routes
            .catalog
            .replace(&request.version, &request.migration_sql)
            .await
            .map_err(refusal)?;
        routes.migrations_changed();
        set
    } else {
        routes
            .catalog
            .add(&request.version, &request.migration_sql)
            .await
            .map_err(refusal)?
    };
    let rollout = routes.rollout(&set, strategy);
    let rollout_id = rollout.start().await.map_err(rollout_error)?.id;
    run_in_background(&routes, rollout);
    Ok((StatusCode::ACCEPTED, Json(RolloutStarted { rollout_id })))
}

async fn status<S>(
    State(state): State<S>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<RolloutStatusView>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let rollout = routes.rollout(&routes.current().await?, Strategy::AllAtOnce);
    let Some(report) = rollout.status().await.map_err(rollout_error)? else {
        return Err(ApiError::not_found(
            "no rollout of the current migrations yet; start one with POST …/run",
        ));
    };
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let view = rollout
        .view(&report, query.after, limit)
        .await
        .map_err(rollout_error)?;
    Ok(Json(view))
}

async fn halt<S>(
    State(state): State<S>,
    request: Option<Json<HaltRequest>>,
) -> Result<Json<Halted>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let rollout = routes.rollout(&routes.current().await?, Strategy::AllAtOnce);
    let reason = request
        .and_then(|Json(r)| r.reason)
        .unwrap_or_else(|| "halted through the admin API".into());
    let halted = rollout.halt(&reason).await.map_err(rollout_error)?;
    Ok(Json(Halted { halted }))
}

async fn resume<S>(State(state): State<S>) -> Result<(StatusCode, Json<RolloutStarted>), ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let set = routes.current().await?;
    let rollout = routes.rollout(&set, Strategy::AllAtOnce);
    let key = rollout.key().map_err(rollout_error)?;
    let Some(open) = routes.store.find_open(&key).await.map_err(rollout_error)? else {
        return Err(ApiError::not_found(
            "no unfinished rollout of the current migrations to resume",
        ));
    };
    run_in_background(&routes, rollout);
    Ok((
        StatusCode::ACCEPTED,
        Json(RolloutStarted {
            rollout_id: open.id,
        }),
    ))
}

async fn rollback<S>(State(state): State<S>) -> Result<(StatusCode, Json<RolloutStarted>), ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let rollout = routes.rollout(&routes.current().await?, Strategy::AllAtOnce);
    // Refused here, before answering, when it cannot succeed (nothing to roll back,
    // a migration without a down script).
    let rollout_id = rollout.check_rollback().await.map_err(rollout_error)?;
    (routes.spawn)(Box::pin(async move {
        match rollout.rollback().await {
            Ok(report) => {
                tracing::info!(rollout = report.rollout_id, status = %report.status, "rollback finished")
            }
            Err(error) => tracing::error!(%error, "rollback stopped; ask for it again to resume"),
        }
    }));
    Ok((StatusCode::ACCEPTED, Json(RolloutStarted { rollout_id })))
}

async fn withdraw<S>(
    State(state): State<S>,
    Path(version): Path<String>,
) -> Result<Json<Withdrawn>, ApiError>
where
    RolloutRoutes: FromRef<S>,
{
    let routes = RolloutRoutes::from_ref(&state);
    let version: i64 = version.parse().map_err(|_| {
        ApiError::unprocessable(format!(
            "`{version}` is not a migration version; use its number, e.g. 20240127120000"
        ))
    })?;
    let current = routes.current().await?;
    if current.latest_version() != Some(version) {
        return Err(ApiError::unprocessable(format!(
            "migration {version} is not the latest migration; only the latest can be withdrawn"
        )));
    }
    routes.release_latest(&current).await?;
    let set = routes.catalog.withdraw(version).await.map_err(refusal)?;
    routes.migrations_changed();
    Ok(Json(Withdrawn {
        withdrawn: version,
        latest_version: set.latest_version(),
    }))
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
