//! `POST /api/admin/migrations/run` and `GET /api/admin/migrations/status`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tenancy_core::TenantDirectory;
use tenant_migrate::{MigrationSet, Rollout, RolloutError, RolloutStore, Strategy};

use super::{ApiError, AppState};
use crate::assembly::Assembly;
use crate::migrations::{finding_json, AppMigrations, MigrationsError};
use crate::rollout_json;

/// Migration administration: the application's migrations and fleet rollouts.
#[derive(Clone)]
pub struct MigrationAdmin {
    migrations: AppMigrations,
    directory: Arc<dyn TenantDirectory>,
    store: Arc<dyn RolloutStore>,
}

impl std::fmt::Debug for MigrationAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationAdmin")
            .field("migrations", &self.migrations)
            .finish_non_exhaustive()
    }
}

impl MigrationAdmin {
    /// Administration of `assembly`'s migrations, rolled out over its tenants.
    pub fn new(assembly: &Assembly) -> Self {
        Self {
            migrations: assembly.migrations.clone(),
            directory: assembly.plane.directory.clone(),
            store: assembly.plane.rollouts.clone(),
        }
    }

    /// Runs the unfinished rollout of the current migrations, if there is one: after a
    /// restart, or one another server process started and left.
    pub async fn resume(&self) -> Result<(), RolloutError> {
        let Ok(set) = self.migrations.refresh().await else {
            return Ok(());
        };
        let rollout = self.rollout(&set, Strategy::AllAtOnce);
        if self.store.find_open(&rollout.key()?).await?.is_some() {
            let report = rollout.run().await?;
            tracing::info!(rollout = report.rollout_id, status = %report.status, "resumed rollout finished");
        }
        Ok(())
    }

    fn rollout(&self, set: &MigrationSet, strategy: Strategy) -> Rollout {
        Rollout::of_migrations(self.directory.clone(), set.clone(), self.store.clone())
            .strategy(strategy)
            .build()
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RunRequest {
    migration_sql: String,
    version: String,
    #[serde(default)]
    strategy: Option<String>,
}

/// `POST /api/admin/migrations/run {"migration_sql", "version", "strategy"}` → 202
/// `{"rollout_id"}`; 422 with the lint findings or a bad version.
pub(super) async fn run(
    State(state): State<AppState>,
    Json(request): Json<RunRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let admin = state.migrations();
    let strategy: Strategy = request
        .strategy
        .as_deref()
        .unwrap_or("all")
        .parse()
        .map_err(ApiError::unprocessable)?;
    let set = admin
        .migrations
        .add(&request.version, &request.migration_sql)
        .await
        .map_err(refusal)?;
    let rollout = admin.rollout(&set, strategy);
    let rollout_id = rollout.start().await.map_err(ApiError::internal)?.id;
    let shutdown = state.shutdown_token().clone();
    state.tasks().spawn(async move {
        tokio::select! {
            result = rollout.run() => match result {
                Ok(report) => tracing::info!(rollout = report.rollout_id, status = %report.status, "rollout finished"),
                Err(error) => tracing::error!(%error, "rollout stopped; rerun it to resume"),
            },
            () = shutdown.cancelled() => tracing::info!("rollout paused by shutdown; it resumes when run again"),
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "rollout_id": rollout_id })),
    ))
}

fn refusal(error: MigrationsError) -> ApiError {
    match error {
        MigrationsError::Lint(findings) => {
            let details = Value::Array(findings.iter().map(finding_json).collect());
            ApiError::unprocessable(MigrationsError::Lint(findings)).with_details(details)
        }
        MigrationsError::Storage(error) => ApiError::internal(error),
        other => ApiError::unprocessable(other),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct StatusQuery {
    after: Option<u32>,
    limit: Option<u32>,
}

/// `GET /api/admin/migrations/status[?after=POSITION&limit=N]`: the latest rollout of
/// the current migrations, with a page of its tenants (status and version).
pub(super) async fn status(
    State(state): State<AppState>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    let admin = state.migrations();
    let set = admin
        .migrations
        .refresh()
        .await
        .map_err(ApiError::internal)?;
    let rollout = admin.rollout(&set, Strategy::AllAtOnce);
    let Some(report) = rollout.status().await.map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(
            "no rollout of the current migrations yet; start one with POST /api/admin/migrations/run",
        ));
    };
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let page = rollout
        .tenants(report.rollout_id, query.after, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(rollout_json::report(&report, &page)))
}
