//! Fleet rollouts: one migration set rolled out to every tenant database.

mod adapter;
mod error;
mod fleet;
mod job;
mod migrator;
mod plan;
mod progress;
mod report;
mod runner;
mod store;
#[cfg(feature = "postgres")]
mod store_postgres;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod store_rows;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod store_sql;
#[cfg(feature = "sqlite")]
mod store_sqlite;
mod strategy;

pub use error::RolloutError;
pub use fleet::{Rollout, RolloutBuilder, DEFAULT_CONCURRENCY, DEFAULT_LEASE};
pub use migrator::{RolloutMigrator, TenantSession};
pub use plan::{Plan, PlannedTenant, Targeting};
pub use progress::RolloutEvent;
pub use report::{RolloutReport, RolloutStatusView, TenantRow, VersionCount};
pub use store::{
    ClaimRequest, ClaimedTenant, Phase, RolloutKey, RolloutRecord, RolloutStatus, RolloutStore,
    StateCounts, TenantOutcome, TenantRecord, TenantState, WaveProgress,
};
#[cfg(feature = "postgres")]
pub use store_postgres::PostgresRolloutStore;
#[cfg(feature = "sqlite")]
pub use store_sqlite::SqliteRolloutStore;
pub use strategy::{CanaryTenants, FailureThreshold, Strategy};
