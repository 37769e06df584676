//! Rollouts that require a clean fleet: refuse while a targeted tenant drifted, or
//! leave the drifted tenants out.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tenancy_core::{DatabaseTarget, DirectoryError, TenantFilter, TenantId};

use super::{DriftError, DriftReport, DriftSurvey, TenantDrift};
use crate::rollout::{FleetMember, IntoFleet, TenantFleet};

/// What a rollout does about tenants that drifted from their version's reference
/// schema, checked by a [`DriftSurvey`] of the targeted tenants before it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriftPolicy {
    /// No check (the default).
    #[default]
    Ignore,
    /// Refuse to start while any targeted tenant drifted, naming them
    /// (`migrate run --require-no-drift`).
    RequireNoDrift,
    /// Leave the drifted tenants out, each with the reason
    /// (`migrate run --exclude-drifted`).
    ExcludeDrifted,
}

/// The fleet a rollout may run over after its drift check.
#[derive(Debug)]
pub struct CheckedFleet {
    /// The fleet, without the excluded tenants.
    pub fleet: Arc<dyn TenantFleet>,
    /// The survey, unless the policy is [`DriftPolicy::Ignore`].
    pub report: Option<DriftReport>,
    /// The tenants left out and why, by id.
    pub excluded: Vec<ExcludedTenant>,
}

/// A tenant a rollout leaves out because it drifted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ExcludedTenant {
    /// The tenant.
    pub tenant: TenantId,
    /// Why: its first difference or anomaly, and how many more.
    pub reason: String,
}

/// `acme left out: drifted (column public.items.note added: text)`.
impl fmt::Display for ExcludedTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} left out: drifted ({})", self.tenant, self.reason)
    }
}

impl DriftPolicy {
    /// Applies the policy to the tenants of `fleet` that `targeting` selects,
    /// surveyed by `survey` (its own filter is replaced by `targeting`).
    ///
    /// Refuses with [`DriftError::Drifted`] under [`RequireNoDrift`](Self::RequireNoDrift)
    /// when a tenant drifted. Unreachable tenants are neither refused nor left out:
    /// the rollout fails them as it would have.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tenancy_core::TenantFilter;
    /// use tenant_migrate::drift::{DriftPolicy, DriftSurvey};
    /// use tenant_migrate::{FleetList, MigrationSet, Rollout, TenantFleet};
    ///
    /// # async fn run(store: Arc<dyn tenant_migrate::rollout::store::RolloutStore>) -> Result<(), Box<dyn std::error::Error>> {
    /// let set = MigrationSet::from_dir("migrations")?;
    /// let fleet: Arc<dyn TenantFleet> = Arc::new(FleetList::from_csv_path("tenants.csv".as_ref())?);
    /// let checked = DriftPolicy::ExcludeDrifted
    ///     .check(fleet, &DriftSurvey::new(set.clone()), &TenantFilter::all())
    ///     .await?;
    /// for excluded in &checked.excluded {
    ///     eprintln!("{excluded}");
    /// }
    /// let report = Rollout::of_migrations(checked.fleet, set, store).build().run().await?;
    /// # Ok(()) }
    /// ```
    pub async fn check(
        self,
        fleet: Arc<dyn TenantFleet>,
        survey: &DriftSurvey,
        targeting: &TenantFilter,
    ) -> Result<CheckedFleet, DriftError> {
        if self == Self::Ignore {
            return Ok(CheckedFleet {
                fleet,
                report: None,
                excluded: Vec::new(),
            });
        }
        let report = survey
            .clone()
            .filter(targeting.clone())
            .run(fleet.as_ref())
            .await?;
        if self == Self::RequireNoDrift && report.has_drift() {
            return Err(DriftError::Drifted {
                tenants: report.drifted_ids().cloned().collect(),
            });
        }
        let excluded: Vec<ExcludedTenant> = report.drifted.iter().map(excluded).collect();
        let fleet = if excluded.is_empty() {
            fleet
        } else {
            let ids = excluded.iter().map(|e| e.tenant.clone()).collect();
            FleetWithout::new(fleet, ids).into_fleet()
        };
        Ok(CheckedFleet {
            fleet,
            report: Some(report),
            excluded,
        })
    }
}

fn excluded(drift: &TenantDrift) -> ExcludedTenant {
    let findings: Vec<String> = drift
        .differences
        .iter()
        .map(ToString::to_string)
        .chain(drift.anomalies.iter().map(ToString::to_string))
        .collect();
    let reason = match findings.as_slice() {
        [] => "differs from the reference schema".to_owned(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first}; and {} more", rest.len()),
    };
    ExcludedTenant {
        tenant: drift.tenant.clone(),
        reason,
    }
}

/// A fleet without some of its tenants: a rollout over it neither plans them nor
/// adds them later. (A tenant that an unfinished rollout already lists keeps its
/// place and its database: the rollout migrates it when it claims it.)
#[derive(Debug, Clone)]
pub struct FleetWithout {
    fleet: Arc<dyn TenantFleet>,
    excluded: Arc<BTreeSet<TenantId>>,
}

impl FleetWithout {
    /// `fleet` without the tenants `excluded`.
    pub fn new(fleet: Arc<dyn TenantFleet>, excluded: BTreeSet<TenantId>) -> Self {
        Self {
            fleet,
            excluded: Arc::new(excluded),
        }
    }
}

#[async_trait]
impl TenantFleet for FleetWithout {
    /// Pages of the inner fleet without the excluded tenants, filled up to the
    /// filter's limit so that a short page still means the end.
    async fn members(&self, filter: &TenantFilter) -> Result<Vec<FleetMember>, DirectoryError> {
        let limit = filter.page_limit().map_or(usize::MAX, |n| n as usize);
        let mut page = filter.clone();
        let mut kept = Vec::new();
        loop {
            let members = self.fleet.members(&page).await?;
            let Some(last) = members.last() else { break };
            page = page.after(last.id.clone());
            let full = filter
                .page_limit()
                .is_some_and(|n| members.len() >= n as usize);
            kept.extend(
                members
                    .into_iter()
                    .filter(|m| !self.excluded.contains(&m.id)),
            );
            if kept.len() >= limit || !full {
                break;
            }
        }
        kept.truncate(limit);
        Ok(kept)
    }

    async fn database(&self, id: &TenantId) -> Result<Option<DatabaseTarget>, DirectoryError> {
        self.fleet.database(id).await
    }
}

impl IntoFleet for FleetWithout {
    fn into_fleet(self) -> Arc<dyn TenantFleet> {
        Arc::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FleetList;
    use tenancy_core::DatabaseUrl;

    #[tokio::test]
    async fn pages_without_excluded_tenants_stay_full() {
        let fleet: FleetList = (0..10)
            .map(|i| {
                let id = TenantId::new(format!("t{i:02}")).unwrap();
                let url = DatabaseUrl::parse(&format!("sqlite:t{i:02}.db")).unwrap();
                FleetMember::new(id, DatabaseTarget::new(url))
            })
            .collect();
        let excluded = ["t01", "t02", "t05"]
            .into_iter()
            .map(|id| TenantId::new(id).unwrap())
            .collect();
        let without = FleetWithout::new(Arc::new(fleet), excluded);
        let first = without
            .members(&TenantFilter::all().limit(3))
            .await
            .unwrap();
        let ids: Vec<_> = first.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["t00", "t03", "t04"]);
        let rest = without
            .members(&TenantFilter::all().after(first[2].id.clone()))
            .await
            .unwrap();
        let ids: Vec<_> = rest.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["t06", "t07", "t08", "t09"]);
        let t01 = TenantId::new("t01").unwrap();
        assert!(without.database(&t01).await.unwrap().is_some());
    }
}
