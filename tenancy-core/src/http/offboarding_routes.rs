use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};

use super::{ApiError, TenantView};
use crate::{DirectoryError, Offboarding, OffboardingError, Tenant, TenantId};

// Runs a started offboarding in the background (the host decides how: with
// retries, stopping at shutdown).
type OffboardingRunner = Arc<dyn Fn(TenantId) + Send + Sync>;

// Told about each restored tenant (the host resumes onboarding of a `pending` one).
type RestoredHook = Arc<dyn Fn(&Tenant) + Send + Sync>;

/// The state of [`offboarding_router`]: the offboarding pipeline and how to run a
/// started offboarding in the background.
#[derive(Clone)]
pub struct OffboardingRoutes {
    offboarding: Option<Offboarding>,
    run: OffboardingRunner,
    restored: RestoredHook,
}

impl fmt::Debug for OffboardingRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffboardingRoutes")
            .field("offboarding", &self.offboarding)
            .finish_non_exhaustive()
    }
}

impl OffboardingRoutes {
    /// Routes over `offboarding`; a started offboarding runs on a spawned task (once;
    /// see [`on_start`](Self::on_start) for retries and shutdown).
    pub fn new(offboarding: Offboarding) -> Self {
        let background = offboarding.clone();
        let run: OffboardingRunner = Arc::new(move |tenant: TenantId| {
            let offboarding = background.clone();
            tokio::spawn(async move {
                match offboarding.run(&tenant).await {
                    Ok(_) => {}
                    Err(error @ OffboardingError::Busy { .. }) => {
                        tracing::info!(%tenant, %error, "offboarding left to the process running it");
                    }
                    Err(error) => {
                        tracing::warn!(%tenant, %error, "offboarding stopped; run it again to resume");
                    }
                }
            });
        });
        Self {
            offboarding: Some(offboarding),
            run,
            restored: Arc::new(|_| {}),
        }
    }

    /// Routes of a host without offboarding: they answer 503.
    pub fn unavailable() -> Self {
        Self {
            offboarding: None,
            run: Arc::new(|_| {}),
            restored: Arc::new(|_| {}),
        }
    }

    /// Runs each started offboarding with `run` instead.
    pub fn on_start(mut self, run: impl Fn(TenantId) + Send + Sync + 'static) -> Self {
        self.run = Arc::new(run);
        self
    }

    /// Calls `restored` with each tenant a restore brought back. A tenant restored
    /// `pending` had not finished onboarding: nothing resumes it unless the host
    /// starts its onboarding here.
    pub fn on_restored(mut self, restored: impl Fn(&Tenant) + Send + Sync + 'static) -> Self {
        self.restored = Arc::new(restored);
        self
    }

    fn pipeline(&self) -> Result<&Offboarding, ApiError> {
        self.offboarding.as_ref().ok_or_else(|| {
            ApiError::unavailable(
                "offboarding is not configured on this service; give it an export destination",
            )
        })
    }
}

/// `DELETE /tenants/{id}` starts offboarding the tenant and answers 202 with its
/// record (`status.state` `offboarding`, or `retained` if it was already); the steps
/// run in the background. `POST /tenants/{id}/restore` restores a tenant being
/// offboarded or retained and answers 200 with its record (`ready`, or `pending` when
/// it had not finished onboarding: see [`OffboardingRoutes::on_restored`]). Both: 400 for an
/// invalid id, 404 for an unknown one, 409 for a deleted tenant (and, for restore,
/// one that is not offboarding or whose deletion started) or when another request
/// changed the tenant at the same moment (retry), 503 without offboarding. Restore
/// answers 502 when the tenant's database could not be resumed or migrated (the
/// tenant is still retained).
/// Admin routes: mount them behind [`require_admin_token`](super::require_admin_token).
pub fn offboarding_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    OffboardingRoutes: FromRef<S>,
{
    Router::new()
        .route("/tenants/{id}", delete(start::<S>))
        .route("/tenants/{id}/restore", post(restore::<S>))
}

async fn start<S>(
    State(state): State<S>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TenantView>), ApiError>
where
    OffboardingRoutes: FromRef<S>,
{
    let routes = OffboardingRoutes::from_ref(&state);
    let id = TenantId::try_from(id.as_str()).map_err(ApiError::bad_request)?;
    let tenant = routes.pipeline()?.start(&id).await.map_err(answer)?;
    (routes.run)(tenant.id.clone());
    Ok((StatusCode::ACCEPTED, Json(TenantView::from(&tenant))))
}

async fn restore<S>(
    State(state): State<S>,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError>
where
    OffboardingRoutes: FromRef<S>,
{
    let routes = OffboardingRoutes::from_ref(&state);
    let id = TenantId::try_from(id.as_str()).map_err(ApiError::bad_request)?;
    let tenant = routes.pipeline()?.restore(&id).await.map_err(answer)?;
    (routes.restored)(&tenant);
    Ok(Json(TenantView::from(&tenant)))
}

fn answer(error: OffboardingError) -> ApiError {
    match error {
        OffboardingError::Directory(DirectoryError::NotFound(id)) => {
            ApiError::not_found(format!("tenant `{id}` does not exist"))
        }
        OffboardingError::Directory(error @ DirectoryError::Conflict { .. }) => {
            tracing::info!(%error, "two requests changed one tenant at once");
            ApiError::conflict("another request changed this tenant; retry")
        }
        error @ (OffboardingError::Deleted { .. }
        | OffboardingError::Deleting(_)
        | OffboardingError::NotOffboarding { .. }) => ApiError::conflict(error),
        error @ (OffboardingError::Resume { .. } | OffboardingError::Migrate { .. }) => {
            ApiError::new(StatusCode::BAD_GATEWAY, error.to_string())
        }
        other => ApiError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_race_on_the_record_answers_409_retry() {
        let raced = OffboardingError::Directory(DirectoryError::Conflict {
            id: TenantId::try_from("acme").unwrap(),
            revision: 3,
        });

        let answered = answer(raced);

        assert_eq!(answered.status(), StatusCode::CONFLICT);
        assert_eq!(
            answered.message(),
            "another request changed this tenant; retry"
        );
    }
}
