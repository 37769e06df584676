//! The shared vocabulary of **tenancy-kit**, the toolkit for database-per-tenant SaaS.
//!
//! Every other crate of the workspace depends on this one and on nothing else of
//! ours, so a host application can take any one of them alone and wire it through
//! these types and traits.
//!
//! - **Values**: [`TenantId`], [`Tenant`] and its [`TenantStatus`], [`NewTenant`]
//!   (a validated signup), [`EmailAddress`], [`DatabaseUrl`] and [`DatabaseTarget`],
//!   [`Secret`] for anything that must never be logged.
//! - **Traits** the other crates implement or consume: [`DatabaseProvisioner`],
//!   [`SchemaMigrator`], [`AdminUserCreator`], [`BillingStarter`], [`TenantDirectory`],
//!   [`Clock`], [`Notifier`]; for offboarding [`BillingCanceller`], [`DatabaseExporter`],
//!   [`ExportDestination`], [`DatabasePauser`].
//! - **Mechanisms**: [`RetryPolicy`] (the workspace's one backoff implementation),
//!   [`Onboarding`] (the resumable signup → provision → migrate → admin → billing →
//!   ready → ready notice pipeline) and its mirror [`Offboarding`] (cancel billing →
//!   export → pause → retained → deleted, restorable until deletion).
//! - **HTTP** (feature `axum`): `http::signup_router`, `http::tenant_router`,
//!   `http::offboarding_router`,
//!   `http::require_admin_token`, `http::ApiError`.
//! - **Stores**: [`MemoryTenantDirectory`], `SqliteTenantDirectory` (feature `sqlite`,
//!   the embedded default), `PostgresTenantDirectory` (feature `postgres`), and
//!   `persistence`, the policy every store of the workspace shares: pool settings,
//!   versioned table upgrades, advisory-lock keys.
//! - **Local databases**: `SqliteFileProvisioner` (one file per tenant),
//!   `PostgresServerProvisioner` (one database per tenant on your server) and
//!   `LocalAdminUserCreator`, for running without a cloud provider; [`DumpExporter`]
//!   (`pg_dump`, SQLite's `VACUUM INTO`) and [`DirectoryExportDestination`] for exports.
//!
//! # Example
//!
//! ```
//! use tenancy_core::{MemoryTenantDirectory, NewTenant, TenantDirectory, TenantFilter};
//! use time::OffsetDateTime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let directory = MemoryTenantDirectory::new();
//! let signup = NewTenant::new("Acme Pharmacy", "owner@acme.example")?.with_tag("beta")?;
//! directory.insert(&signup.into_tenant(OffsetDateTime::now_utc())).await?;
//!
//! let beta = directory.list(&TenantFilter::all().with_tag("beta")).await?;
//! assert_eq!(beta[0].id.as_str(), "acme-pharmacy");
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `sqlite` | [`TenantDirectory`] stored in SQLite; one SQLite file per tenant | no |
//! | `postgres` | [`TenantDirectory`] stored in PostgreSQL; one database per tenant on a server | no |
//! | `axum` | the `http` module: signup and tenant look-up routers, the admin-token layer, the routes' JSON error | no |
//! | `pages` | `http::pages`: the admin sign-in (session cookie, forgery tokens), the page layout, the fleet page other crates add sections to | no |
//! | `testing` | `testing::TestDatabase`, a throw-away PostgreSQL database per test | no |
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod admin_user;
mod backend_error;
mod billing;
mod clock;
mod database;
mod directory;
mod email;
#[cfg(feature = "axum")]
pub mod http;
mod in_flight;
mod local;
mod migrator;
mod notifier;
mod offboarding;
mod onboarding;
mod open_enum;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod persistence;
mod provisioner;
mod retry;
mod secret;
mod tenant;
mod tenant_id;
#[cfg(feature = "testing")]
pub mod testing;

pub use admin_user::{AdminUser, AdminUserCreator};
pub use backend_error::{BackendError, BoxError};
pub use billing::{BillingCanceller, BillingStarter};
pub use clock::{Clock, ManualClock, SystemClock};
pub use database::{DatabaseKind, DatabaseTarget, DatabaseUrl, DatabaseUrlError};
#[cfg(feature = "postgres")]
pub use directory::PostgresTenantDirectory;
#[cfg(feature = "sqlite")]
pub use directory::SqliteTenantDirectory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use directory::{DirectoryEngine, SqlTenantDirectory};
pub use directory::{DirectoryError, MemoryTenantDirectory, TenantDirectory, TenantFilter};
pub use email::{EmailAddress, EmailError};
pub use local::DumpExporter;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use local::LocalAdminUserCreator;
#[cfg(feature = "postgres")]
pub use local::PostgresServerProvisioner;
#[cfg(feature = "sqlite")]
pub use local::SqliteFileProvisioner;
pub use migrator::{MigrationReport, SchemaMigrator};
pub use notifier::{LoggingNotifier, Notification, NotificationKind, Notifier, RecordingNotifier};
pub use offboarding::{
    DatabaseExport, DatabaseExporter, DatabasePauser, DirectoryExportDestination,
    ExportDestination, ExportFormat, Offboarding, OffboardingError, OffboardingReport,
    OffboardingStep, StoredExport, DEFAULT_CLAIM_TIMEOUT, DEFAULT_RETENTION,
};
pub use onboarding::{Onboarding, OnboardingError};
pub use provisioner::DatabaseProvisioner;
pub use retry::{RetryDecision, RetryPolicy};
pub use secret::{Secret, SecretString, REDACTED};
pub use tenant::{validate_tag, NewTenant, OnboardingStep, Tenant, TenantError, TenantStatus};
pub use tenant_id::{TenantId, TenantIdError};

/// What [`open_enum!`] expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}
