//! The HTTP service with the service's routes (axum).
//!
//! | route | what it does |
//! |---|---|
//! | `POST /api/signup` | records a signup, answers 202, onboards in the background |
//! | `POST /api/webhooks/stripe` | verifies and processes a Stripe event |
//! | `GET /api/webhooks/stripe/test` | says whether a secret is configured and which events are handled |
//! | `POST /api/admin/migrations/run` | lints and rolls a migration out to every tenant |
//! | `GET /api/admin/migrations/status` | the rollout status report |
//! | `POST /api/admin/migrations/halt`, `/resume`, `/rollback` | stops, resumes or reverts the rollout |
//! | `DELETE /api/admin/migrations/{version}` | withdraws the latest migration while no tenant has it |
//! | `POST /api/admin/migrations/rehearse` | applies the pending (and a proposed) migration to a copy of the canary's database and reports durations and locks |
//! | `GET /api/admin/tenants/{id}` | a tenant record |
//! | `DELETE /api/admin/tenants/{id}` | starts offboarding the tenant (202 with its record) |
//! | `POST /api/admin/tenants/{id}/restore` | restores a tenant during its retention (409 after deletion) |
//! | `GET /api/admin/tenants/{id}/billing` | a tenant's billing state |
//! | `GET /api/admin/billing-links/{id}` | a fresh signed link to the tenant's billing page |
//! | `POST /api/admin/billing/reconcile` | applies missed Stripe events (or checks one tenant against its subscription) |
//! | `GET /admin` | the operator's page: the rollout, the fleet with onboarding, schema and billing |
//! | `GET /admin/login`, `POST /admin/login` | sign-in with the admin token (an HttpOnly, SameSite=Strict cookie) |
//! | `POST /admin/rollout/…` | the page's rollout actions (preview, start, halt, resume, roll back, withdraw) |
//! | `GET /billing/{tenant}?expires=…&sig=…` | the tenant's billing page; `POST …/checkout`, `…/portal` |
//!
//! Admin routes answer 401 without `Authorization: Bearer <ADMIN_TOKEN>`, and 503 when
//! `ADMIN_TOKEN` is unset. Every error, the framework's rejections included, is JSON
//! (`tenancy_core::http::json_errors`). Signup, tenant look-up, offboarding and the admin-token layer come from
//! `tenancy_core::http`; the webhook, the billing view and reconciliation from
//! `stripe_billing::http`;
//! the rollout routes from `tenant_migrate::http`. This module adds the state and the
//! background tasks.

mod migrations;
mod state;
mod workers;

use std::future::Future;

use axum::Router;
use stripe_billing::pages::{billing_link_router, billing_pages_router};
use tenancy_core::http::pages::{
    self, admin_login_router, admin_pages_router, require_admin_session,
};
use tenancy_core::http::{
    json_errors, offboarding_router, require_admin_token, signup_router, tenant_router,
};
use tokio::net::TcpListener;

pub use migrations::MigrationAdmin;
pub use state::{AppState, AppStateBuilder};
pub use tenancy_core::http::ApiError;

/// The service's routes over `state`: the libraries' routers, mounted where the
/// service wants them, with the admin ones behind the admin-token layer.
pub fn router(state: AppState) -> Router {
    let mut admin = Router::new()
        .nest("/migrations", tenant_migrate::http::rollout_router())
        .merge(tenant_router())
        .merge(offboarding_router())
        .merge(stripe_billing::http::billing_router())
        .merge(stripe_billing::http::reconcile_router());
    let signed_in = admin_pages_router()
        .nest("/rollout", tenant_migrate::pages::rollout_pages_router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_admin_session::<AppState>,
        ));
    let billing_pages = match state.billing_pages() {
        Some(billing) => {
            admin = admin.nest_service(
                "/billing-links",
                billing_link_router().with_state(billing.clone()),
            );
            billing_pages_router().with_state(billing.clone())
        }
        None => {
            admin = admin.route(
                "/billing-links/{id}",
                axum::routing::get(|| async { billing_links_off() }),
            );
            Router::new().fallback(billing_pages_off)
        }
    };
    let admin = admin.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        require_admin_token::<AppState>,
    ));
    Router::new()
        .nest("/admin", signed_in.merge(admin_login_router()))
        .nest_service("/billing", billing_pages)
        .nest("/api", signup_router())
        .nest(
            "/api/webhooks/stripe",
            stripe_billing::http::webhook_router(),
        )
        .nest("/api/admin", admin)
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// The admin route for billing links, where billing pages are off.
fn billing_links_off() -> ApiError {
    ApiError::unavailable(
        "billing links are off on this service: set BILLING_LINK_SECRET to turn them on",
    )
}

async fn billing_pages_off() -> axum::response::Response {
    pages::error_page(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "Billing pages off",
        "Billing pages are off on this service: set BILLING_LINK_SECRET to turn them on.",
    )
}

/// Serves `state` on `listener` with its background tasks (onboarding resumption,
/// billing clock, reconciliation with Stripe, effect delivery, offboarding) until `shutdown`
/// resolves; then lets in-flight requests finish and stops the background tasks,
/// leaving resumable state.
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
