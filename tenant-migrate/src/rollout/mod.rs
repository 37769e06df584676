//! Fleet rollouts: one migration set rolled out to every tenant database.
//!
//! The crate root re-exports what a host uses to run and report rollouts
//! ([`Rollout`], [`Strategy`], [`RolloutReport`], the fleet inputs); [`store`] holds
//! the state store's interface and its PostgreSQL and SQLite implementations.

mod adapter;
mod error;
mod fleet;
mod fleet_list;
mod job;
mod members;
mod migrator;
mod plan;
mod progress;
mod report;
mod runner;
pub mod store;
mod strategy;

pub use error::RolloutError;
pub use fleet::{Rollout, RolloutBuilder, DEFAULT_CONCURRENCY, DEFAULT_LEASE};
pub use fleet_list::{FleetFileError, FleetList};
pub use members::{DirectoryFleet, FleetMember, IntoFleet, TenantFleet};
pub use migrator::{RolloutMigrator, TenantSession};
pub use plan::{PlannedTenant, RolloutPlan, Targeting};
pub use progress::RolloutEvent;
pub use report::{RolloutReport, RolloutStatusView, TenantRow, VersionCount};
pub(crate) use store::{
    ClaimRequest, ClaimedTenant, RolloutKey, RolloutPhase, RolloutRecord, RolloutStore,
    TenantOutcome, TenantRecord,
};
pub use store::{RolloutStatus, StateCounts, TenantState, WaveProgress};
pub use strategy::{CanaryTenants, FailureThreshold, Strategy};
