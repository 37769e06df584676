//! Versioned SQL migrations for every tenant database.
//!
//! - **Sources**: [`MigrationSet`] from a directory in sqlx's naming
//!   ([`MigrationSet::from_dir`]), embedded at compile time
//!   ([`embedded_migrations!`]), or ad-hoc ([`MigrationSetBuilder::adhoc`]).
//! - **Applying**: [`TenantMigrator`] on PostgreSQL or SQLite, with
//!   [`MigrateOptions`], per call or through a [`MigrationSession`] (one connection,
//!   several operations); results are a [`MigrationOutcome`] or a typed
//!   [`MigrateError`] (`is_retryable()`, `is_locked()`).
//! - **Status**: [`MigrationStatus`], one query per tenant.
//! - **Round trips**: on PostgreSQL, applying takes one request to lock and read the
//!   history under the lock (none after [`MigrationSession::lock_status`]), then one
//!   per pending migration: its transaction with its history row, the unlock riding
//!   with the last.
//! - **Drift**: [`drift::DriftSurvey`] groups a fleet by (version, schema
//!   fingerprint) and reports each tenant that differs from its version's reference,
//!   with its differences and history anomalies; [`drift::DriftPolicy`] makes a
//!   rollout require a clean fleet or leave drifted tenants out.
//! - **Rehearsal** (feature `postgres`): [`rehearse::Rehearsal`] applies the pending
//!   migrations to a scratch copy of one tenant's database and reports each one's
//!   duration, table locks and schema fingerprint; the copy is always removed.
//! - **Linting**: [`lint`] returns [`Finding`]s (rule, [`Severity`], line, fix hint).
//! - **Fleet rollouts**: [`Rollout`] takes a migration set to every tenant of a
//!   [`TenantFleet`] (a `TenantDirectory`, or a [`FleetList`] read from a fleet file) with a [`Strategy`] (all at once, waves, canary), resumable state
//!   in a [`RolloutStore`](rollout::store::RolloutStore)
//!   ([`PostgresRolloutStore`](rollout::store::PostgresRolloutStore) for several runners,
//!   [`SqliteRolloutStore`](rollout::store::SqliteRolloutStore) embedded), [`RolloutEvent`]s and a [`RolloutReport`]; see
//!   [`Rollout`] for a canary rollout in a dozen lines.
//!
//! The history lives in sqlx's own `_sqlx_migrations` table, created with sqlx's DDL
//! and filled with the same SHA-384 checksums: a database migrated with
//! `sqlx migrate run` is up to date for this crate, and the other way round. The
//! PostgreSQL advisory-lock key is sqlx's too, so the two never run at once.
//!
//! # Example
//!
//! ```no_run
//! use tenancy_core::{DatabaseTarget, DatabaseUrl};
//! use tenant_migrate::{lint, MigrationSet, Severity, TenantMigrator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let set = MigrationSet::builder()
//!     .file("20240101_create_items.up.sql", "CREATE TABLE items (id BIGINT PRIMARY KEY);")
//!     .file("20240101_create_items.down.sql", "DROP TABLE items;")
//!     .adhoc("20240127_add_new_field", "ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);")
//!     .build()?;
//! for migration in &set {
//!     let errors = lint(migration.sql()).into_iter().filter(|f| f.severity == Severity::Error);
//!     assert_eq!(errors.count(), 0, "{} is not backward compatible", migration.file());
//! }
//!
//! let migrator = TenantMigrator::new(set);
//! let tenant = DatabaseTarget::new(DatabaseUrl::parse("postgres://postgres@127.0.0.1/tenant_acme")?);
//! let outcome = migrator.apply(&tenant).await?;
//! assert_eq!(outcome.to_version, Some(20240127));
//! assert!(migrator.status(&tenant).await?.is_up_to_date());
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `postgres` | tenant databases on PostgreSQL | yes |
//! | `sqlite` | tenant databases on SQLite | yes |
//! | `axum` | `http::rollout_router`: the admin API of rollouts (run, status, halt, resume, rollback) | no |
//! | `pages` | `pages::RolloutSection` and `pages::rollout_pages_router`: the rollout panel, schema column and forms of the admin page | no |
//! | `testing` | `testing::TestFleet` and small migrations, for tests of rollouts | no |
#![warn(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!(
    "tenant-migrate needs a database: enable its `postgres` feature, its `sqlite` feature, or both"
);

mod backend;
mod catalog;
mod connection;
pub mod drift;
mod engine;
mod error;
pub mod fingerprint;
mod history;
#[cfg(feature = "axum")]
pub mod http;
mod lint;
#[cfg(feature = "postgres")]
mod lock;
mod migration;
mod migration_set;
#[cfg(feature = "postgres")]
mod optimistic;
mod options;
mod outcome;
#[cfg(feature = "pages")]
pub mod pages;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
pub mod rehearse;
pub mod rollout;
mod schema_version;
mod session;
mod source;
mod source_error;
#[cfg(feature = "sqlite")]
mod sqlite;
mod status;
mod stored_catalog;
mod tenant_migrator;
#[cfg(feature = "testing")]
pub mod testing;

pub use catalog::{CatalogError, MigrationCatalog};
pub use error::MigrateError;
pub use lint::{lint, Finding, Rule, Severity};
pub use migration::Migration;
pub use migration_set::{MigrationSet, MigrationSetBuilder};
pub use options::MigrateOptions;
pub use outcome::{MigrationOutcome, MigrationStep};
pub use rollout::{
    CanaryTenants, DirectoryFleet, FailureThreshold, FleetFileError, FleetList, FleetMember,
    IntoFleet, PlannedTenant, Rollout, RolloutBuilder, RolloutError, RolloutEvent, RolloutMigrator,
    RolloutPlan, RolloutReport, RolloutStatus, RolloutStatusView, StateCounts, Strategy, Targeting,
    TenantFleet, TenantRow, TenantSession, TenantState, VersionCount, WaveProgress,
    DEFAULT_CONCURRENCY, DEFAULT_LEASE,
};
pub use schema_version::SchemaVersion;
pub use session::MigrationSession;
pub use source_error::MigrationSourceError;
pub use status::MigrationStatus;
pub use stored_catalog::StoredCatalog;
pub use tenant_migrator::TenantMigrator;
