//! HTTP routes for a host's axum service (feature `axum`): signup, tenant look-up and
//! offboarding (with restore) as composable [`Router`](axum::Router)s over state the host owns, the admin-token
//! layer that guards admin routes, and the JSON error answer every tenancy-kit router
//! uses.
//!
//! Paths are relative: the host mounts each router where it likes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::extract::FromRef;
//! use axum::Router;
//! use tenancy_core::http::{self, AdminToken, TenantRoutes};
//! use tenancy_core::{MemoryTenantDirectory, Onboarding};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     tenants: TenantRoutes,
//!     admin: AdminToken,
//! }
//! impl FromRef<AppState> for TenantRoutes {
//!     fn from_ref(state: &AppState) -> Self { state.tenants.clone() }
//! }
//! impl FromRef<AppState> for AdminToken {
//!     fn from_ref(state: &AppState) -> Self { state.admin.clone() }
//! }
//!
//! # fn assemble(onboarding: Onboarding, directory: Arc<MemoryTenantDirectory>) -> Router {
//! let state = AppState {
//!     tenants: TenantRoutes::new(onboarding, directory),
//!     admin: AdminToken::new(Some("an-admin-token-of-16+".into())),
//! };
//! let admin = http::tenant_router().route_layer(axum::middleware::from_fn_with_state(
//!     state.clone(),
//!     http::require_admin_token::<AppState>,
//! ));
//! Router::new()
//!     .nest("/api", http::signup_router())
//!     .nest("/api/admin", admin)
//!     .with_state(state)
//! # }
//! ```

mod admin_token;
mod api_error;
mod json_errors;
mod offboarding_routes;
#[cfg(feature = "pages")]
pub mod pages;
mod tenant_routes;

pub use admin_token::{require_admin_token, AdminToken};
pub use api_error::ApiError;
pub use json_errors::json_errors;
pub use offboarding_routes::{offboarding_router, OffboardingRoutes};
pub use tenant_routes::{
    signup_router, tenant_router, DatabaseView, SignupAccepted, SignupRequest, TenantRoutes,
    TenantView,
};

/// Formats a time as RFC 3339 (the tenancy-kit routes' time format).
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
