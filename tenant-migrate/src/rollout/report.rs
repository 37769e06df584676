use std::fmt;

use super::{RolloutPlan, RolloutRecord, RolloutStatus, StateCounts, WaveProgress};

/// The state of a rollout, read from the state store: counts per tenant state, per
/// wave and per schema version. List the tenants themselves with
/// [`Rollout::tenants`](crate::Rollout::tenants). Serializes with the field names
/// below (`versions` as `[version, tenants]` pairs).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

/// A few lines for a person: status, counts per state, tenants per version, and
/// why it halted.
impl fmt::Display for RolloutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "rollout {} to version {}: {}",
            self.rollout_id, self.target_version, self.status
        )?;
        write!(
            f,
            "  succeeded {}, failed {}, skipped {}, pending {}, running {}, rolled back {}",
            c.succeeded, c.failed, c.skipped, c.pending, c.running, c.rolled_back
        )?;
        for (version, tenants) in &self.versions {
            let version = version.map_or_else(|| "none".to_owned(), |v| v.to_string());
            write!(f, "\n  version {version}: {tenants} tenants")?;
        }
        if let Some(reason) = &self.halted_reason {
            write!(f, "\n  halted: {reason}")?;
        }
        Ok(())
    }
}

/// One tenant of a rollout as reports show it: `{"id", "status", "version", "error"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TenantRow {
    /// The tenant id.
    pub id: String,
    /// Its state in the rollout (`pending`, `running`, `succeeded`, …).
    pub status: &'static str,
    /// Its schema version as last seen by the rollout.
    pub version: Option<i64>,
    /// Its last error.
    pub error: Option<String>,
}

impl TenantRow {
    /// A tenant the rollout has not reached yet (a dry run's plan, say).
    pub fn pending(id: &tenancy_core::TenantId) -> Self {
        Self {
            id: id.to_string(),
            status: "pending",
            version: None,
            error: None,
        }
    }
}

impl From<&super::TenantRecord> for TenantRow {
    fn from(tenant: &super::TenantRecord) -> Self {
        Self {
            id: tenant.tenant_id.to_string(),
            status: tenant.state.as_str(),
            version: tenant.to_version.or(tenant.from_version),
            error: tenant.error.clone(),
        }
    }
}

/// Tenants at one schema version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VersionCount {
    /// The version (`None`: not started, or an empty database).
    pub version: Option<i64>,
    /// How many tenants are at it.
    pub tenants: u64,
}

/// A rollout's report with a page of its tenants, as the admin API serializes it:
/// counts per state and per version, and `next_after`, the position to pass as
/// `after` for the next page.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct RolloutStatusView {
    /// The rollout's id.
    pub rollout_id: i64,
    /// The version tenants are brought to.
    pub target_version: i64,
    /// The lifecycle status (`running`, `halted`, `completed`, …).
    pub status: String,
    /// Whether it halted.
    pub halted: bool,
    /// Why it halted.
    pub halted_reason: Option<String>,
    /// Tenants that reached the target.
    pub succeeded: u64,
    /// Tenants that failed.
    pub failed: u64,
    /// Tenants already at the target.
    pub skipped: u64,
    /// Tenants not started.
    pub pending: u64,
    /// Tenants in flight.
    pub running: u64,
    /// Tenants reverted by a rollback.
    pub rolled_back: u64,
    /// Tenants per schema version.
    pub versions: Vec<VersionCount>,
    /// This page of tenants.
    pub tenants: Vec<TenantRow>,
    /// The position after this page's last tenant.
    pub next_after: Option<u32>,
    /// What the operator should know (a canary wave that is the whole fleet, …).
    pub warnings: Vec<String>,
}

impl RolloutStatusView {
    /// The view of a rollout that has not started: every tenant of `plan` pending
    /// (what a dry run shows). Its `rollout_id` is 0 and its status `planned`.
    pub fn planned(target_version: i64, plan: &RolloutPlan) -> Self {
        Self {
            rollout_id: 0,
            target_version,
            status: "planned".to_owned(),
            halted: false,
            halted_reason: None,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            pending: u64::try_from(plan.len()).unwrap_or(u64::MAX),
            running: 0,
            rolled_back: 0,
            versions: Vec::new(),
            tenants: plan
                .tenants()
                .iter()
                .map(|t| TenantRow::pending(&t.id))
                .collect(),
            next_after: None,
            warnings: plan.warnings().to_vec(),
        }
    }

    /// The view of `report` with the page `tenants` (as [`Rollout::tenants`](crate::Rollout::tenants) returns it).
    pub fn new(report: &RolloutReport, tenants: &[(u32, super::TenantRecord)]) -> Self {
        let c = &report.counts;
        Self {
            rollout_id: report.rollout_id,
            target_version: report.target_version,
            status: report.status.to_string(),
            halted: report.is_halted(),
            halted_reason: report.halted_reason.clone(),
            succeeded: c.succeeded,
            failed: c.failed,
            skipped: c.skipped,
            pending: c.pending,
            running: c.running,
            rolled_back: c.rolled_back,
            versions: report
                .versions
                .iter()
                .map(|(version, tenants)| VersionCount {
                    version: *version,
                    tenants: *tenants,
                })
                .collect(),
            tenants: tenants.iter().map(|(_, t)| TenantRow::from(t)).collect(),
            next_after: tenants.last().map(|(position, _)| *position),
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::RolloutKey;
    use crate::Strategy;

    #[test]
    fn a_report_prints_and_serializes_from_one_place() {
        let record = RolloutRecord {
            id: 7,
            key: RolloutKey {
                target_version: 3,
                set_checksum: "abc".into(),
            },
            strategy: Strategy::AllAtOnce,
            status: RolloutStatus::Halted,
            halted_reason: Some("2 failures beyond the threshold".into()),
            tenant_count: 3,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let counts = StateCounts {
            succeeded: 2,
            failed: 1,
            ..StateCounts::default()
        };
        let wave = WaveProgress {
            wave: 0,
            counts,
            last_finished_at: Some(time::OffsetDateTime::UNIX_EPOCH),
        };
        let report = RolloutReport::new(record, vec![wave], vec![(Some(3), 2), (None, 1)]);
        let text = report.to_string();
        assert!(text.starts_with("rollout 7 to version 3: halted"), "{text}");
        assert!(text.contains("halted: 2 failures"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "halted");
        assert_eq!(json["counts"]["failed"], 1);
        assert_eq!(json["waves"][0]["last_finished_at"], "1970-01-01T00:00:00Z");
        assert_eq!(json["versions"][1], serde_json::json!([null, 1]));
    }
}
