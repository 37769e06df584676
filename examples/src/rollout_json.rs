//! Rollout reports as JSON, shared by the `migrate --json` output and the admin API.

use serde::Serialize;
use serde_json::{json, Value};
use tenant_migrate::{RolloutReport, TenantRecord};

/// One tenant of a rollout: `{"id", "status", "version", "error"}`.
#[derive(Debug, Clone, Serialize)]
pub struct TenantJson {
    /// The tenant id.
    pub id: String,
    /// Its state in the rollout (`pending`, `running`, `succeeded`, …).
    pub status: &'static str,
    /// Its schema version as last seen by the rollout.
    pub version: Option<i64>,
    /// Its last error.
    pub error: Option<String>,
}

impl From<&TenantRecord> for TenantJson {
    fn from(tenant: &TenantRecord) -> Self {
        Self {
            id: tenant.tenant_id.to_string(),
            status: tenant.state.as_str(),
            version: tenant.to_version.or(tenant.from_version),
            error: tenant.error.clone(),
        }
    }
}

/// The report with counts per state, per wave and per version, and a page of tenants.
/// `next_after` is the position to pass as `after` for the next page.
pub fn report(report: &RolloutReport, tenants: &[(u32, TenantRecord)]) -> Value {
    let c = &report.counts;
    let tenant_rows: Vec<TenantJson> = tenants.iter().map(|(_, t)| TenantJson::from(t)).collect();
    json!({
        "rollout_id": report.rollout_id,
        "target_version": report.target_version,
        "status": report.status.to_string(),
        "halted": report.is_halted(),
        "halted_reason": report.halted_reason,
        "succeeded": c.succeeded,
        "failed": c.failed,
        "skipped": c.skipped,
        "pending": c.pending,
        "running": c.running,
        "rolled_back": c.rolled_back,
        "versions": report
            .versions
            .iter()
            .map(|(version, tenants)| json!({ "version": version, "tenants": tenants }))
            .collect::<Vec<_>>(),
        "tenants": tenant_rows,
        "next_after": tenants.last().map(|(position, _)| position),
    })
}
