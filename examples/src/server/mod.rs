//! The HTTP service with the service's routes (axum).
//!
//! | route | what it does |
//! |---|---|
//! | `POST /api/signup` | records a signup, answers 202, onboards in the background |
//! | `POST /api/webhooks/stripe` | verifies and processes a Stripe event |
//! | `GET /api/webhooks/stripe/test` | says whether a secret is configured and which events are handled |
//! | `POST /api/admin/migrations/run` | lints and rolls a migration out to every tenant |
//! | `GET /api/admin/migrations/status` | the rollout status report |
//! | `GET /api/admin/tenants/{id}` | a tenant record |
//! | `GET /api/admin/tenants/{id}/billing` | a tenant's billing state |
//!
//! Admin routes answer 401 without `Authorization: Bearer <ADMIN_TOKEN>`, and 503 when
//! `ADMIN_TOKEN` is unset.

mod api_error;
mod auth;
mod migrations;
mod signup;
mod state;
mod tenants;
mod webhooks;
mod workers;

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use api_error::ApiError;
pub use migrations::MigrationAdmin;
pub use state::{AppState, AppStateBuilder};

/// The largest webhook body accepted (Stripe's events are far smaller).
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// The service's routes over `state`.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/migrations/run", post(migrations::run))
        .route("/migrations/status", get(migrations::status))
        .route("/tenants/{id}", get(tenants::tenant))
        .route("/tenants/{id}/billing", get(tenants::billing))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route("/api/signup", post(signup::signup))
        .route(
            "/api/webhooks/stripe",
            post(webhooks::receive).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY)),
        )
        .route("/api/webhooks/stripe/test", get(webhooks::test))
        .nest("/api/admin", admin)
        .with_state(state)
}

/// Serves `state` on `listener` with its background tasks (onboarding resumption,
/// billing clock, effect delivery) until `shutdown` resolves; then lets in-flight
/// requests finish and stops the background tasks, leaving resumable state.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let workers = workers::start(state.clone());
    let result = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    workers.stop().await;
    result
}
