use tenancy_core::{BoxError, DirectoryError};

/// Why a fleet rollout could not start, continue, report or roll back.
///
/// A tenant whose migration fails does not make the rollout fail: it is recorded as
/// `failed` in the state store and reported. These errors are about the rollout itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RolloutError {
    /// The state store (the `tenancy_rollouts` tables) could not be read or written.
    #[error(
        "rollout state store failed: {0}; check that the state database is reachable and writable"
    )]
    Store(#[source] BoxError),
    /// The tenant directory could not be read.
    #[error("tenant directory failed while planning the rollout: {0}")]
    Directory(#[from] DirectoryError),
    /// The strategy cannot be used as given.
    #[error("invalid rollout strategy: {0}")]
    InvalidStrategy(String),
    /// No tenant matches the targeting.
    #[error("no tenant matches the rollout's targeting; check the tenant ids and tags")]
    NoTenants,
    /// The canary wave would hold no tenant, so the rollout would reach every
    /// tenant without a canary.
    #[error("the canary wave would be empty: no targeted tenant is {canary} (tags in the fleet: {}); choose one of those tags or ids, or another strategy", tags_or_none(.tags))]
    EmptyCanary {
        /// What the canary asked for (`tagged staging`, `one of t01, t02`).
        canary: String,
        /// The tags the targeted tenants carry.
        tags: Vec<String>,
    },
    /// The migration set holds no migration.
    #[error("the migration set is empty; add at least one migration before rolling out")]
    EmptyMigrationSet,
    /// A migration the rollback would undo has no down script.
    #[error("migration {version} has no down script, so this rollout cannot be rolled back; add `{version}_<description>.down.sql` or roll forward with a new migration")]
    Irreversible {
        /// The first irreversible version above the oldest version a tenant came from.
        version: i64,
    },
    /// Nothing is recorded for this target version and migration set.
    #[error("no rollout to version {target_version} of this migration set is recorded in the state store; run it first")]
    NotFound {
        /// The target version looked for.
        target_version: i64,
    },
    /// The rollout is being rolled back and cannot be run forward now.
    #[error(
        "rollout {rollout_id} is being rolled back; finish the rollback before running it again"
    )]
    RollingBack {
        /// The rollout.
        rollout_id: i64,
    },
    /// A stored row could not be decoded.
    #[error("stored rollout state is invalid ({0}); the state tables were edited by hand or by another version")]
    CorruptState(String),
    /// A tenant id in the state store is not a valid tenant id.
    #[error("stored tenant id `{0}` is invalid; the state tables were edited by hand")]
    CorruptTenantId(String),
    /// The caller stopped the runner (e.g. on Ctrl-C) before the rollout was done:
    /// it claimed no more tenants and let those in flight finish.
    #[error("rollout {rollout_id} was interrupted: this runner claimed no more tenants and let the {finished} it had in flight finish; run it again to resume")]
    Interrupted {
        /// The rollout.
        rollout_id: i64,
        /// The tenants that were in flight when it was stopped, finished since.
        finished: u64,
    },
    /// A tenant job panicked (a bug in the per-tenant migrator).
    #[error("a tenant job panicked ({0}); its tenant stays claimed until its lease expires, then is retried")]
    JobPanicked(String),
}

impl RolloutError {
    pub(crate) fn store(error: impl Into<BoxError>) -> Self {
        Self::Store(error.into())
    }
}

impl From<sqlx::Error> for RolloutError {
    fn from(error: sqlx::Error) -> Self {
        Self::store(error)
    }
}

impl From<tenancy_core::persistence::SchemaError> for RolloutError {
    fn from(error: tenancy_core::persistence::SchemaError) -> Self {
        Self::store(error)
    }
}

fn tags_or_none(tags: &[String]) -> String {
    if tags.is_empty() {
        "none".to_owned()
    } else {
        tags.join(", ")
    }
}
