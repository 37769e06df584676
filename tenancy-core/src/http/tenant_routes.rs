use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{rfc3339, ApiError};
use crate::{
    DatabaseTarget, NewTenant, Onboarding, OnboardingError, Tenant, TenantDirectory, TenantId,
    TenantStatus,
};

// Starts onboarding a signed-up tenant in the background (the host decides how:
// with retries, bounded concurrency, stopping at shutdown).
type OnboardingStarter = Arc<dyn Fn(TenantId) + Send + Sync>;

/// The state of [`signup_router`] and [`tenant_router`]: the onboarding pipeline, the
/// tenant directory, and how to start onboarding after a signup.
#[derive(Clone)]
pub struct TenantRoutes {
    onboarding: Onboarding,
    directory: Arc<dyn TenantDirectory>,
    start: OnboardingStarter,
}

impl fmt::Debug for TenantRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantRoutes")
            .field("onboarding", &self.onboarding)
            .finish_non_exhaustive()
    }
}

impl TenantRoutes {
    /// Routes over `onboarding` and `directory`; a signup's onboarding runs on a
    /// spawned task (once; see [`on_signup`](Self::on_signup) for retries and limits).
    pub fn new(onboarding: Onboarding, directory: Arc<dyn TenantDirectory>) -> Self {
        let background = onboarding.clone();
        let start: OnboardingStarter = Arc::new(move |tenant: TenantId| {
            let onboarding = background.clone();
            tokio::spawn(async move {
                if let Err(error) = onboarding.run(&tenant).await {
                    tracing::warn!(%tenant, %error, "onboarding stopped; run it again to resume");
                }
            });
        });
        Self {
            onboarding,
            directory,
            start,
        }
    }

    /// Starts each signup's onboarding with `start` instead.
    pub fn on_signup(mut self, start: impl Fn(TenantId) + Send + Sync + 'static) -> Self {
        self.start = Arc::new(start);
        self
    }
}

/// The body of `POST /signup`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct SignupRequest {
    /// The company's name (the tenant id is derived from it).
    pub company: String,
    /// The email of the tenant's first admin user.
    pub email: String,
}

/// The answer to a signup: 202, onboarding runs in the background.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SignupAccepted {
    /// The new tenant's id.
    pub tenant_id: TenantId,
}

/// A tenant as the admin routes show it (database passwords redacted).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantView {
    /// The tenant's id.
    pub id: TenantId,
    /// Its display name.
    pub name: String,
    /// Its first admin's email.
    pub admin_email: String,
    /// Its onboarding status (`{"state": …}`, with the step and reason when failed).
    pub status: TenantStatus,
    /// Its database, once provisioned.
    pub database: Option<DatabaseView>,
    /// Its tags.
    pub tags: BTreeSet<String>,
    /// When it signed up (RFC 3339).
    pub created_at: String,
    /// When its record last changed (RFC 3339).
    pub updated_at: String,
    /// When its admins were told it is ready (RFC 3339), if they were.
    pub ready_notified_at: Option<String>,
}

/// A tenant's database as the admin routes show it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DatabaseView {
    /// The session URL, password redacted.
    pub url: String,
    /// The transaction pooler's URL, password redacted.
    pub transaction_pooler_url: Option<String>,
    /// The provider's reference.
    pub external_ref: Option<String>,
    /// What the provider repaired while provisioning.
    pub provisioning_notes: Vec<String>,
}

impl From<&DatabaseTarget> for DatabaseView {
    fn from(database: &DatabaseTarget) -> Self {
        Self {
            url: database.url.to_string(),
            transaction_pooler_url: database
                .transaction_pooler_url
                .as_ref()
                .map(ToString::to_string),
            external_ref: database.external_ref.clone(),
            provisioning_notes: database.provisioning_notes.clone(),
        }
    }
}

impl From<&Tenant> for TenantView {
    fn from(tenant: &Tenant) -> Self {
        Self {
            id: tenant.id.clone(),
            name: tenant.name.clone(),
            admin_email: tenant.admin_email.to_string(),
            status: tenant.status.clone(),
            database: tenant.database.as_ref().map(DatabaseView::from),
            tags: tenant.tags.clone(),
            created_at: rfc3339(tenant.created_at),
            updated_at: rfc3339(tenant.updated_at),
            ready_notified_at: tenant.ready_notified_at.map(rfc3339),
        }
    }
}

/// `POST /signup {"company", "email"}` → 202 [`SignupAccepted`]; 422 for an invalid
/// signup, 409 when the company is signed up with another admin email, or its id
/// belongs to a deleted or offboarding tenant (answered "this tenant id is not
/// available"; the reason, for an admin, goes to the log).
pub fn signup_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    TenantRoutes: FromRef<S>,
{
    Router::new().route("/signup", post(signup::<S>))
}

/// `GET /tenants/{id}` → [`TenantView`]; 400 for an invalid id, 404 for an unknown
/// one. An admin route: mount it behind [`require_admin_token`](super::require_admin_token).
pub fn tenant_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    TenantRoutes: FromRef<S>,
{
    Router::new().route("/tenants/{id}", get(tenant::<S>))
}

async fn signup<S>(
    State(state): State<S>,
    Json(request): Json<SignupRequest>,
) -> Result<(StatusCode, Json<SignupAccepted>), ApiError>
where
    TenantRoutes: FromRef<S>,
{
    let routes = TenantRoutes::from_ref(&state);
    let signup =
        NewTenant::new(&request.company, &request.email).map_err(ApiError::unprocessable)?;
    let tenant = routes
        .onboarding
        .signup(signup)
        .await
        .map_err(|error| match error {
            OnboardingError::AlreadySignedUp(_) => ApiError::conflict(error),
            // The admin's hint (restore it, the id is retired) stays in the log: the
            // caller is anonymous.
            OnboardingError::IdRetired(_) | OnboardingError::Offboarded(_) => {
                tracing::info!(%error, "signup refused");
                ApiError::conflict(
                    "this tenant id is not available; sign up under another company name",
                )
            }
            other => ApiError::internal(other),
        })?;
    (routes.start)(tenant.id.clone());
    let accepted = SignupAccepted {
        tenant_id: tenant.id,
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

async fn tenant<S>(
    State(state): State<S>,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError>
where
    TenantRoutes: FromRef<S>,
{
    let routes = TenantRoutes::from_ref(&state);
    let tenant = find_tenant(routes.directory.as_ref(), &id).await?;
    Ok(Json(TenantView::from(&tenant)))
}

/// The tenant `id` names: 400 for an invalid id, 404 for an unknown one.
pub(crate) async fn find_tenant(
    directory: &dyn TenantDirectory,
    id: &str,
) -> Result<Tenant, ApiError> {
    let id = TenantId::try_from(id).map_err(ApiError::bad_request)?;
    directory
        .get(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("tenant `{id}` does not exist")))
}
