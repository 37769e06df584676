//! A typed client of the [Supabase Management API](https://api.supabase.com/api/v1)
//! with retries and rate limits, and a Supabase provisioner for database-per-tenant SaaS.
//!
//! Types, paths and enum values follow the official OpenAPI spec (v1); every request
//! goes through one send path that paces requests, reads the rate-limit headers,
//! retries through tenancy-core's [`RetryPolicy`](tenancy_core::RetryPolicy) and
//! decodes answers naming the JSON path of any field that does not match.
//!
//! # Contents
//!
//! - **Client**: [`ManagementClient`] (built with [`ManagementClientBuilder`]):
//!   organizations, projects (create, get, list, list an organization's page by page,
//!   find by name, delete, pause, restore), health, API keys, SQL queries, pooler
//!   config, available regions, database password.
//! - **Models**: [`Project`], [`OrganizationProject`], [`ProjectStatus`],
//!   [`CreateProjectRequest`] (with a required [`ProjectRegion`]), [`RegionSelection`],
//!   [`ServiceHealth`], [`ApiKey`], [`SupavisorConfig`],
//!   [`AvailableRegions`], … Enums mirroring the API are `#[non_exhaustive]` and keep
//!   values they do not know (`Unknown(String)`, `ProjectStatus::Other(String)`).
//! - **Readiness**: [`ManagementClient::wait_until_ready`] and
//!   [`ManagementClient::wait_until_ready_with`] ([`WaitOptions`], [`ReadinessProgress`]);
//!   [`ManagementClient::wait_until_paused`] and [`ManagementClient::wait_until_restored`].
//! - **Lifecycle**: [`ManagementClient::pause_project`] and
//!   [`ManagementClient::restore_project`] answer a [`ProjectChange`] (a project already
//!   paused, or already up, is not an error); [`ManagementClient::delete_project`]
//!   answers a [`ProjectDeletion`] (a project already gone, HTTP 404, is not an error).
//! - **Rate limits**: [`Pacing`] (client-side, per endpoint scope or global
//!   ([`PacingScope`]), shared by clones) and [`RateLimitHeaders`]; 429s are retried
//!   after `Retry-After` / `X-RateLimit-Reset`.
//! - **Errors**: [`ManagementError`], told apart by its predicates (`is_retryable`,
//!   `is_timeout`, `is_rate_limited`, `is_connect`, `status`, `retry_after`).
//! - **Connections**: [`SessionConnection`] (session pooler or direct host for
//!   migrations); see [Which URL is for what](#which-url-is-for-what).
//! - **tenancy-core integration**: [`SupabaseProvisioner`] (a
//!   [`DatabaseProvisioner`](tenancy_core::DatabaseProvisioner); passwords from
//!   [`DatabasePasswords`]) and [`SupabaseAdminUserCreator`] (an
//!   [`AdminUserCreator`](tenancy_core::AdminUserCreator)).
//!
//! # Example
//!
//! Provision a tenant's project and create its first admin, idempotently:
//!
//! ```no_run
//! use std::time::Duration;
//! use supabase_mgmt::{
//!     DatabasePasswords, ManagementClient, Region, SessionConnection, SupabaseAdminUserCreator,
//!     SupabaseProvisioner, WaitOptions,
//! };
//! use tenancy_core::{EmailAddress, TenantId};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ManagementClient::builder(std::env::var("SUPABASE_ACCESS_TOKEN")?.into()).build()?;
//! let passwords = DatabasePasswords::derived(std::env::var("DB_PASSWORD_SECRET")?.into())?;
//! let provisioner = SupabaseProvisioner::builder(client.clone(), "my-org-slug", passwords)
//!     .region(Region::EuCentral1) // or a smart group; unset: the recommended one
//!     .session_connection(SessionConnection::SessionPooler) // the default: IPv4-safe
//!     .name_prefix("tenant-")
//!     .wait(WaitOptions::new(Duration::from_secs(600)).on_progress(|p| eprintln!("{p}")))
//!     .build()?;
//!
//! let tenant = TenantId::try_from("acme-pharmacy")?;
//! let database = provisioner.provision_tenant(&tenant).await?;
//! println!("migrate with {}", database.url); // the password prints as [redacted]
//! if let Some(app) = &database.transaction_pooler_url {
//!     println!("serve requests through {app} with prepared statements off");
//! }
//!
//! let project_ref = database.external_ref.as_deref().unwrap_or_default();
//! let admin = SupabaseAdminUserCreator::new(client)
//!     .create_admin_user(project_ref, &EmailAddress::new("owner@acme.example")?)
//!     .await?;
//! println!("admin {} (created: {})", admin.user_id, admin.created);
//! # Ok(()) }
//! ```
//!
//! Both plug into [`tenancy_core::Onboarding`] as `Arc<dyn DatabaseProvisioner>` and
//! `Arc<dyn AdminUserCreator>`.
//!
//! # Rate limits
//!
//! The API allows 120 requests per minute per user in each endpoint scope (the method
//! and path template, such as `GET /v1/projects/{ref}`) and answers 429 beyond. By
//! default ([`Pacing::supabase_default`]) a client keeps one budget per scope, shared
//! by all its clones, so polling projects never waits for creates and concurrent
//! signups queue instead of being refused. A scope starts evenly spaced at 120 a
//! minute; once an answer carries `X-RateLimit-Remaining` and `X-RateLimit-Reset`,
//! the scope spends what is left at once and then waits for the reset (never counting
//! on requests still in flight, and ignoring late answers from a window that has
//! ended). [`Pacing::global`] keeps one evenly spaced budget for everything instead.
//! A 429 pauses its scope and is retried after the server's delay (`Retry-After`,
//! else `X-RateLimit-Reset`, read as seconds and capped at
//! [`RateLimitHeaders::MAX_SERVER_DELAY`]) through the one retry policy, since a
//! refused request did nothing; 5xx, timeouts and transport errors are retried only
//! for idempotent requests. A project create is never retried blindly:
//! [`SupabaseProvisioner`] looks the project up by name before creating it again.
//!
//! # Which URL is for what
//!
//! A provisioned tenant's [`DatabaseTarget`](tenancy_core::DatabaseTarget) carries two URLs:
//!
//! | field | where it points | use it for |
//! |---|---|---|
//! | `url` | the **session pooler** (pooler host, port 5432, user `postgres.<ref>`), or with [`SessionConnection::Direct`] the direct host `db.<ref>.supabase.co:5432` | migrations, advisory locks, anything that needs a session |
//! | `transaction_pooler_url` | the **transaction pooler** (same pooler host, port 6543) | the application's short requests, with prepared statements **off** |
//!
//! The direct host is served over IPv6 only unless the project buys the IPv4 add-on,
//! so hosts without IPv6 (GitHub Actions, Vercel, Render) cannot reach it; the
//! session pooler works everywhere. Transaction mode hands each transaction to any
//! server connection, so named prepared statements (which sqlx uses by default)
//! fail there with `prepared statement "sqlx_s_1" does not exist`. Both URLs are
//! the pooler config's `connection_string` with the password filled in.
//!
//! # Database passwords
//!
//! Supabase never returns a project's database password, so a provisioner that adopts
//! a project created by an interrupted earlier attempt must know it some other way.
//! [`DatabasePasswords::derived`] (recommended) computes it as HMAC-SHA256 of a
//! secret you keep and the project name: the same tenant always gets the same
//! 256-bit password, nothing per tenant is stored, and adoption needs no extra call.
//! [`DatabasePasswords::random`] draws a fresh password from the CSPRNG instead and
//! resets an adopted project's password through the API.
//!
//! # Health check form
//!
//! `GET /v1/projects/{ref}/health` takes `services` as an array query parameter with
//! the spec's default style (form, exploded): `?services=db&services=pooler`.
//!
//! # Feature flags
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `testing` | the `testing` module: a strict stand-in of the Management and Auth APIs for wiremock, optionally backed by local PostgreSQL databases | no |
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod admin_user;
mod client;
mod connection;
mod error;
mod models;
mod offboarding;
mod password;
mod provisioner;
mod rate_limit;
mod readiness;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;

pub use admin_user::{AdminUserMode, SupabaseAdminUserCreator, DEFAULT_PROJECT_URL_TEMPLATE};
pub use client::{ManagementClient, ManagementClientBuilder, DEFAULT_BASE_URL};
pub use connection::{SessionConnection, SESSION_PORT, TRANSACTION_PORT};
pub use error::ManagementError;
pub use models::{
    ApiKey, ApiKeyType, AvailableRegions, Continent, CreateApiKeyRequest, CreateProjectRequest,
    DeletedProject, HealthStatus, InstanceSize, NewApiKeyType, Organization, OrganizationProject,
    OrganizationProjectsPage, Pagination, PoolMode, PoolerDatabaseType, Project, ProjectChange,
    ProjectDatabase, ProjectDeletion, ProjectQuery, ProjectRegion, ProjectStatus, Readiness,
    Region, RegionCapacity, RegionList, RegionProvider, RegionRecommendations, RegionSelection,
    RunQueryRequest, ServiceHealth, ServiceName, SmartGroup, SmartGroupRegion, SpecificRegion,
    SupavisorConfig,
};
pub use offboarding::SupabaseProjectPauser;
pub use password::DatabasePasswords;
pub use provisioner::{SupabaseProvisioner, SupabaseProvisionerBuilder};
pub use rate_limit::{Pacing, PacingScope, RateLimitHeaders};
pub use readiness::{ProgressCallback, ReadinessProgress, ReadinessStage, WaitOptions};
