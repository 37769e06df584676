use super::{RolloutRecord, RolloutStatus, StateCounts, WaveProgress};

/// The state of a rollout, read from the state store: counts per tenant state, per
/// wave and per schema version. List the tenants themselves with
/// [`Rollout::tenants`](crate::Rollout::tenants).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RolloutReport {
    /// The rollout's id in the state store.
    pub rollout_id: i64,
    /// The version tenants are brought to.
    pub target_version: i64,
    /// The rollout's lifecycle status.
    pub status: RolloutStatus,
    /// Why it halted, when it did.
    pub halted_reason: Option<String>,
    /// Tenants per state.
    pub counts: StateCounts,
    /// Tenants per state, by wave.
    pub waves: Vec<WaveProgress>,
    /// Tenants per schema version (`None`: not started, or an empty database).
    pub versions: Vec<(Option<i64>, u64)>,
}

impl RolloutReport {
    pub(crate) fn new(
        record: RolloutRecord,
        waves: Vec<WaveProgress>,
        versions: Vec<(Option<i64>, u64)>,
    ) -> Self {
        let mut counts = StateCounts::default();
        for wave in &waves {
            counts.merge(&wave.counts);
        }
        Self {
            rollout_id: record.id,
            target_version: record.key.target_version,
            status: record.status,
            halted_reason: record.halted_reason,
            counts,
            waves,
            versions,
        }
    }

    /// Whether the rollout halted.
    pub fn is_halted(&self) -> bool {
        self.status == RolloutStatus::Halted
    }

    /// Whether every tenant is done and none failed: every targeted tenant is at
    /// the target version (or was skipped because it already was).
    pub fn is_complete(&self) -> bool {
        self.status == RolloutStatus::Completed
    }

    /// Whether a rollback finished with every migrated tenant reverted.
    pub fn is_rolled_back(&self) -> bool {
        self.status == RolloutStatus::RolledBack
    }
}
