//! The rollout state store: the interface runners share ([`RolloutStore`]) and its
//! implementations, [`PostgresRolloutStore`] for several runners on several
//! machines and [`SqliteRolloutStore`] embedded.
//!
//! Both keep their tables (`tenancy_rollouts`, `tenancy_rollout_tenants`) under
//! tenancy-core's persistence policy: open them on a pool shared with the host's
//! other stores with `from_pool`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use tenancy_core::TenantId;
use time::OffsetDateTime;

use super::{RolloutError, RolloutPlan, Strategy};
use crate::SchemaVersion;

#[cfg(feature = "postgres")]
mod postgres;
mod rows;
mod sql;
mod sql_store;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use sql_store::{RolloutEngine, SqlRolloutStore};

#[cfg(feature = "postgres")]
pub use postgres::PostgresRolloutStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteRolloutStore;

/// What identifies a rollout: the version it migrates to and the fingerprint of its
/// migration set. Every `run` with the same key joins the same unfinished rollout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RolloutKey {
    /// The target version.
    pub target_version: i64,
    /// The migration set's fingerprint.
    pub set_checksum: String,
}

/// The lifecycle of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RolloutStatus {
    /// Runners may claim its tenants.
    Active,
    /// Stopped by a failure threshold or an operator; `run` resumes it.
    Halted,
    /// Every tenant succeeded or was skipped.
    Completed,
    /// Its migrated tenants are being reverted.
    RollingBack,
    /// Its migrated tenants were reverted.
    RolledBack,
}

/// Where one tenant is in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TenantState {
    /// Not started yet.
    Pending,
    /// Claimed by a runner (under a lease).
    Running,
    /// Brought to the target version by this rollout.
    Succeeded,
    /// The migration (or its rollback) failed; see the error.
    Failed,
    /// Nothing to do: already at the target, or no database.
    Skipped,
    /// Migrated by this rollout, then reverted.
    RolledBack,
}

/// Which work a claim is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutPhase {
    /// Migrating pending tenants forward.
    Forward,
    /// Reverting the tenants the rollout migrated.
    Revert,
}

/// A rollout as recorded in the state store.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    /// The store's id of the rollout.
    pub id: i64,
    /// Its identity.
    pub key: RolloutKey,
    /// Its strategy.
    pub strategy: Strategy,
    /// Its lifecycle status.
    pub status: RolloutStatus,
    /// Why it halted, when it did.
    pub halted_reason: Option<String>,
    /// How many tenants it covers.
    pub tenant_count: u64,
    /// When it was planned.
    pub created_at: OffsetDateTime,
}

/// A tenant a runner has just claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTenant {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its wave.
    pub wave: u32,
    /// How many times it has been claimed, this claim included.
    pub attempts: u32,
    /// Whether an earlier attempt recorded the version it started from.
    pub started: bool,
    /// That version, when `started`.
    pub from_version: Option<i64>,
}

/// What a claim asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The runner claiming.
    pub owner: &'a str,
    /// Forward or revert.
    pub phase: RolloutPhase,
    /// Only tenants of this wave or earlier.
    pub max_wave: u32,
    /// At most this many tenants.
    pub limit: u32,
    /// How long the claim holds without renewal.
    pub lease: Duration,
}

/// The result of one tenant job, as written to the state store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantOutcome {
    /// The new state.
    pub state: TenantState,
    /// The tenant's version afterwards; `None` when it could not be read, which
    /// keeps the stored version and `migrated`.
    pub version: Option<SchemaVersion>,
    /// Whether this rollout changed the tenant's schema (what a rollback reverts).
    pub migrated: bool,
    /// The error, as text safe to show an operator.
    pub error: Option<String>,
}

/// Counts of one wave, as read from the state store.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WaveProgress {
    /// The wave.
    pub wave: u32,
    /// Tenants per state.
    pub counts: StateCounts,
    /// When its last tenant finished (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_finished_at: Option<OffsetDateTime>,
}

/// Numbers of tenants per [`TenantState`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct StateCounts {
    /// Not started.
    pub pending: u64,
    /// In flight.
    pub running: u64,
    /// Migrated.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Nothing to do.
    pub skipped: u64,
    /// Reverted.
    pub rolled_back: u64,
}

/// One tenant's row, as the status report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its wave.
    pub wave: u32,
    /// Its state.
    pub state: TenantState,
    /// How many times it was claimed.
    pub attempts: u32,
    /// The version it started from, once started.
    pub from_version: Option<i64>,
    /// The version after its last outcome.
    pub to_version: Option<i64>,
    /// The last error.
    pub error: Option<String>,
    /// When its first attempt started.
    pub started_at: Option<OffsetDateTime>,
    /// When its last attempt finished.
    pub finished_at: Option<OffsetDateTime>,
}

/// A tenant that may hold a migration, as [`RolloutStore::tenants_holding`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionHolder {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The highest version a rollout recorded for it (`None`: none recorded).
    pub version: Option<i64>,
    /// Whether a rollout to the migration or a later one has it in flight.
    pub in_flight: bool,
}

/// Where rollouts and their per-tenant states are kept.
///
/// [`PostgresRolloutStore`] coordinates several runners
/// on several machines; [`SqliteRolloutStore`] is the
/// embedded default for one runner. Tenant database URLs are never stored here:
/// runners read them from the tenant directory when they claim a tenant.
#[async_trait]
pub trait RolloutStore: Send + Sync + fmt::Debug {
    /// The unfinished (active, halted or rolling back) rollout with this key.
    async fn find_open(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError>;

    /// The most recent rollout with this key, finished or not.
    async fn find_latest(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError>;

    /// Adds tenants that joined the fleet to a rollout, each `pending` in the given
    /// wave and after every tenant already in it, and reopens the rollout if it had
    /// completed; in one transaction. A tenant already in it is left as it is.
    /// Returns how many were added.
    async fn add_tenants(
        &self,
        rollout_id: i64,
        tenants: &[(TenantId, u32)],
    ) -> Result<u64, RolloutError>;

    /// Records a new rollout with every planned tenant `pending`, in one transaction;
    /// if another runner recorded one with the same key first, returns that one.
    async fn create_or_join(
        &self,
        key: &RolloutKey,
        strategy: &Strategy,
        plan: &RolloutPlan,
    ) -> Result<RolloutRecord, RolloutError>;

    /// Makes a halted rollout active again; when no tenant is pending or in flight
    /// (the last run ended), failed tenants go back to `pending` to be retried.
    async fn resume(&self, rollout_id: i64) -> Result<RolloutRecord, RolloutError>;

    /// Claims up to `limit` tenants: pending ones (forward) or migrated ones (revert),
    /// and any whose lease expired, in wave and position order, if the rollout is
    /// still active (forward) or rolling back (revert).
    async fn claim(
        &self,
        rollout_id: i64,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<ClaimedTenant>, RolloutError>;

    /// Records the version a claimed tenant starts from; `false` if the lease was lost.
    async fn record_start(
        &self,
        rollout_id: i64,
        tenant: &TenantId,
        owner: &str,
        from_version: Option<i64>,
    ) -> Result<bool, RolloutError>;

    /// Records a claimed tenant's outcome and releases it; `false` if the lease was lost.
    async fn record_outcome(
        &self,
        rollout_id: i64,
        tenant: &TenantId,
        owner: &str,
        outcome: &TenantOutcome,
    ) -> Result<bool, RolloutError>;

    /// Extends the leases of every tenant `owner` holds; returns how many.
    async fn renew_leases(
        &self,
        rollout_id: i64,
        owner: &str,
        lease: Duration,
    ) -> Result<u64, RolloutError>;

    /// The rollout's record and its counts per wave.
    async fn progress(
        &self,
        rollout_id: i64,
    ) -> Result<(RolloutRecord, Vec<WaveProgress>), RolloutError>;

    /// Sets the rollout's status (and the halt reason); entering
    /// [`RolloutStatus::RollingBack`] also starts a new rollback pass.
    async fn set_status(
        &self,
        rollout_id: i64,
        status: RolloutStatus,
        reason: Option<&str>,
    ) -> Result<(), RolloutError>;

    /// A page of tenant rows in rollout order, after position `after`.
    async fn tenants(
        &self,
        rollout_id: i64,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError>;

    /// The rows of `tenants` in a rollout, in rollout order, each with its
    /// position; tenants the rollout does not list are left out. Meant for a page
    /// of tenants (a few hundred ids).
    ///
    /// The SQL stores answer with one query on the primary key; the default walks
    /// every row with [`tenants`](Self::tenants), so a store of its own should
    /// answer it directly.
    async fn tenant_rows(
        &self,
        rollout_id: i64,
        tenants: &[TenantId],
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        let wanted: std::collections::HashSet<&TenantId> = tenants.iter().collect();
        let mut found = Vec::new();
        let mut after = None;
        while found.len() < wanted.len() {
            let page = self.tenants(rollout_id, after, 1000).await?;
            let Some((position, _)) = page.last() else {
                break;
            };
            after = Some(*position);
            found.extend(
                page.into_iter()
                    .filter(|(_, row)| wanted.contains(&row.tenant_id)),
            );
        }
        Ok(found)
    }

    /// The first `limit` tenants of a rollout in `state`, in rollout order, each
    /// with its position (the failed tenants a page lists, say).
    ///
    /// The SQL stores answer with one indexed query; the default walks every row
    /// with [`tenants`](Self::tenants), so a store of its own should answer it
    /// directly.
    async fn tenants_in_state(
        &self,
        rollout_id: i64,
        state: TenantState,
        limit: u32,
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut found = Vec::new();
        let mut after = None;
        while found.len() < limit {
            let page = self.tenants(rollout_id, after, 1000).await?;
            let Some((position, _)) = page.last() else {
                break;
            };
            after = Some(*position);
            found.extend(page.into_iter().filter(|(_, row)| row.state == state));
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Numbers of tenants per current version (`None`: unknown or empty).
    async fn version_counts(
        &self,
        rollout_id: i64,
    ) -> Result<Vec<(Option<i64>, u64)>, RolloutError>;

    /// The lowest version a tenant this rollout migrated started from, or `None`
    /// when it migrated none; `Some(None)` when one started from an empty database.
    async fn rollback_floor(&self, rollout_id: i64) -> Result<Option<SchemaVersion>, RolloutError>;

    /// The first `limit` tenants, in id order, that may hold migration `version`
    /// according to any rollout in this store: those whose recorded version (after
    /// their last attempt, failed ones included; else the version they started from)
    /// is `version` or later, and those in flight in a rollout to `version` or
    /// later. Each comes with the highest version recorded for it and whether it
    /// is in flight. `None` when this store cannot tell (the default: a store of
    /// its own should answer it, or withdrawing a migration is refused).
    async fn tenants_holding(
        &self,
        version: i64,
        limit: u32,
    ) -> Result<Option<Vec<VersionHolder>>, RolloutError> {
        let _ = (version, limit);
        Ok(None)
    }
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The snake-case name used in the state tables and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }

        impl FromStr for $ty {
            type Err = RolloutError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    other => Err(RolloutError::CorruptState(format!(
                        "unknown {} `{other}`", stringify!($ty)
                    ))),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

text_enum!(RolloutStatus {
    Active => "active",
    Halted => "halted",
    Completed => "completed",
    RollingBack => "rolling_back",
    RolledBack => "rolled_back",
});

text_enum!(TenantState {
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Skipped => "skipped",
    RolledBack => "rolled_back",
});

impl RolloutStatus {
    /// Whether the rollout still has work (active, halted or rolling back).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Active | Self::Halted | Self::RollingBack)
    }
}

impl StateCounts {
    /// Adds `n` tenants in `state`.
    pub(crate) fn add(&mut self, state: TenantState, n: u64) {
        let slot = match state {
            TenantState::Pending => &mut self.pending,
            TenantState::Running => &mut self.running,
            TenantState::Succeeded => &mut self.succeeded,
            TenantState::Failed => &mut self.failed,
            TenantState::Skipped => &mut self.skipped,
            TenantState::RolledBack => &mut self.rolled_back,
        };
        *slot += n;
    }

    /// Adds another set of counts.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.pending += other.pending;
        self.running += other.running;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.rolled_back += other.rolled_back;
    }

    /// Tenants not finished yet (pending or running).
    pub fn unfinished(&self) -> u64 {
        self.pending + self.running
    }

    /// All tenants counted.
    pub fn total(&self) -> u64 {
        self.unfinished() + self.succeeded + self.failed + self.skipped + self.rolled_back
    }
}

/// Opens the state store a URL names: [`SqliteRolloutStore`] for `sqlite:` (the
/// file is created if missing), [`PostgresRolloutStore`] for `postgres://`.
///
/// ```no_run
/// use tenancy_core::DatabaseUrl;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = tenant_migrate::rollout::store::open(&DatabaseUrl::parse("sqlite:migrate-state.db")?).await?;
/// # Ok(()) }
/// ```
pub async fn open(
    url: &tenancy_core::DatabaseUrl,
) -> Result<std::sync::Arc<dyn RolloutStore>, RolloutError> {
    use tenancy_core::DatabaseKind;
    match url.kind() {
        #[cfg(feature = "sqlite")]
        DatabaseKind::Sqlite => Ok(std::sync::Arc::new(
            SqliteRolloutStore::open(url.expose()).await?,
        )),
        #[cfg(feature = "postgres")]
        DatabaseKind::Postgres => Ok(std::sync::Arc::new(
            PostgresRolloutStore::connect(url).await?,
        )),
        #[allow(unreachable_patterns)]
        other => Err(RolloutError::store(std::io::Error::other(format!(
            "this build of tenant-migrate has no {other} support; enable its `{other}` feature"
        )))),
    }
}
