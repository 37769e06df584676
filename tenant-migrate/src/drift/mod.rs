//! Fleet schema drift: which tenants' schemas differ from their peers at the same
//! version, and whose migration history is wrong.
//!
//! A [`DriftSurvey`] reads every tenant of a fleet (its history rows and its schema
//! digest, on one connection), then the schema of one tenant per distinct digest,
//! groups the fleet by (database kind, applied version, fingerprint), takes at
//! each version, within each kind, the largest group as the reference (or the group
//! of a named reference tenant, for its own kind), and reports in a
//! [`DriftReport`] each tenant
//! outside it with its [`SchemaDifference`](crate::fingerprint::SchemaDifference)s,
//! each [`HistoryAnomaly`] (a version the set lacks, a checksum that differs from
//! the file, a failed row, a version never applied that sorts before the latest
//! applied one), and each tenant it could not read. Schemas of SQLite and
//! PostgreSQL tenants are never compared with each other.
//!
//! A rollout can require a clean fleet or leave drifted tenants out
//! ([`DriftPolicy`]); [`DriftRecords`] keeps each tenant's last result in the state
//! store, and [`FleetStatus`] counts versions and drift for `migrate status`.
//!
//! ```no_run
//! use tenant_migrate::drift::{DriftRecords, DriftSurvey};
//! use tenant_migrate::{FleetList, MigrationSet};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let fleet = FleetList::from_csv_path("tenants.csv".as_ref())?;
//! let report = DriftSurvey::new(MigrationSet::from_dir("migrations")?).run(&fleet).await?;
//! for tenant in &report.drifted {
//!     for difference in &tenant.differences {
//!         println!("{}: {difference}", tenant.tenant); // acme: index public.items_sku_idx missing
//!     }
//! }
//! DriftRecords::open(&"sqlite:migrate-state.db".parse()?).await?.record(&report).await?;
//! # Ok(()) }
//! ```

mod anomaly;
mod error;
mod fleet_status;
mod gate;
mod groups;
mod reading;
mod records;
mod report;
mod survey;
mod visit;

pub use anomaly::HistoryAnomaly;
pub use error::DriftError;
pub use fleet_status::{DriftTally, FleetStatus, VersionTally};
pub use gate::{CheckedFleet, DriftPolicy, ExcludedTenant, FleetWithout};
pub use records::{DriftRecord, DriftRecords};
pub use report::{
    DriftCounts, DriftReport, ReferenceGroup, SurveyOutcome, SurveyedTenant, TenantDrift,
    UnreachableTenant, VersionReference,
};
pub use survey::DriftSurvey;
