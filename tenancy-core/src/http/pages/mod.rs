//! Server-rendered pages for axum hosts (feature `pages`): the admin sign-in, the
//! shared layout, and the admin page that other crates add panels and columns to.
//!
//! Pages are [maud] templates, checked at compile time; every value is escaped, so a
//! company name such as `<script>` shows as text. No front-end build step.
//!
//! The host nests [`admin_pages_router`] (behind [`require_admin_session`]) and
//! [`admin_login_router`] (open) at the same base path, `/admin` by default:
//!
//! ```
//! use std::sync::Arc;
//! use axum::extract::FromRef;
//! use axum::Router;
//! use tenancy_core::http::pages::{self, AdminPage, AdminSessions};
//! use tenancy_core::MemoryTenantDirectory;
//!
//! #[derive(Clone)]
//! struct AppState {
//!     sessions: AdminSessions,
//!     admin: AdminPage,
//! }
//! impl FromRef<AppState> for AdminSessions {
//!     fn from_ref(state: &AppState) -> Self { state.sessions.clone() }
//! }
//! impl FromRef<AppState> for AdminPage {
//!     fn from_ref(state: &AppState) -> Self { state.admin.clone() }
//! }
//!
//! let state = AppState {
//!     sessions: AdminSessions::new(Some("an-admin-token-of-16+".into())),
//!     admin: AdminPage::new(Arc::new(MemoryTenantDirectory::new())),
//!         // .section(a rollout panel, a billing column, …)
//! };
//! let signed_in = pages::admin_pages_router().route_layer(axum::middleware::from_fn_with_state(
//!     state.clone(),
//!     pages::require_admin_session::<AppState>,
//! ));
//! let app: Router = Router::new()
//!     .nest("/admin", signed_in.merge(pages::admin_login_router()))
//!     .with_state(state);
//! ```

mod fleet;
mod layout;
mod session;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;

pub use fleet::{top_bar, AdminPage, AdminSection, FleetColumn};
pub use layout::{notice, page, STYLE};
pub use maud;
pub use session::{
    error_page, redirect, require_admin_session, AdminSession, AdminSessions, CSRF_FIELD,
    DEFAULT_SESSION_LIFETIME, MAX_FORM_BODY, SESSION_COOKIE,
};

/// The signed-in admin pages: `GET /` (the fleet, with the sections' panels and
/// columns) and `POST /logout`. Put [`require_admin_session`] on it.
pub fn admin_pages_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminPage: FromRef<S>,
    AdminSessions: FromRef<S>,
{
    Router::new()
        .route("/", get(fleet::admin_home::<S>))
        .route("/logout", post(session::logout::<S>))
}

/// The sign-in form: `GET /login` and `POST /login` (open: it is how one signs in).
pub fn admin_login_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminSessions: FromRef<S>,
{
    Router::new().route(
        "/login",
        get(session::login_page::<S>).post(session::login::<S>),
    )
}
