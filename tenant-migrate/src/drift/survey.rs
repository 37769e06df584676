use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tenancy_core::{TenantFilter, TenantId};
use time::OffsetDateTime;
use tokio::task::JoinSet;

use super::groups::{DigestGroup, DigestKey, FirstPass};
use super::reading::{read_group_schema, read_tenant};
use super::visit::each_member;
use super::{DriftError, DriftReport};
use crate::fingerprint::{SchemaScope, SchemaSnapshot};
use crate::rollout::TenantFleet;
use crate::{MigrateOptions, MigrationSet, DEFAULT_CONCURRENCY};

/// A drift survey of a fleet against a migration set: each tenant's history and
/// schema digest read on one connection ([`DEFAULT_CONCURRENCY`] tenants at once
/// unless told otherwise), then the schema of one tenant of each distinct (version,
/// digest) group; the fleet grouped by (database kind, version, schema
/// fingerprint), and each tenant outside the reference group of its version and
/// kind reported with its differences (a SQLite schema is never compared with a
/// PostgreSQL one).
///
/// A [`SchemaDigest`](crate::fingerprint::SchemaDigest) costs a fraction of a
/// schema on PostgreSQL, so a fleet with few distinct schemas costs about one
/// digest per tenant. Memory holds, per tenant, its version, digest, fingerprint
/// and history anomalies, and one schema snapshot per distinct group.
///
/// ```no_run
/// use tenant_migrate::drift::DriftSurvey;
/// use tenant_migrate::{FleetList, MigrationSet};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let fleet = FleetList::from_csv_path("tenants.csv".as_ref())?;
/// let report = DriftSurvey::new(MigrationSet::from_dir("migrations")?)
///     .concurrency(8)
///     .run(&fleet)
///     .await?;
/// print!("{report}"); // "acme: column public.items.note added: text", …
/// assert!(report.is_clean());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DriftSurvey {
    set: Arc<MigrationSet>,
    scope: SchemaScope,
    options: MigrateOptions,
    concurrency: usize,
    reference: Option<TenantId>,
    filter: TenantFilter,
}

impl DriftSurvey {
    /// A survey against `set`, of every tenant, over the default [`SchemaScope`].
    pub fn new(set: impl Into<Arc<MigrationSet>>) -> Self {
        Self {
            set: set.into(),
            scope: SchemaScope::default(),
            options: MigrateOptions::default(),
            concurrency: DEFAULT_CONCURRENCY,
            reference: None,
            filter: TenantFilter::all(),
        }
    }

    /// Compares these schemas and tables (default: `public`, without the history table).
    pub fn scope(mut self, scope: SchemaScope) -> Self {
        self.scope = scope;
        self
    }

    /// Connects with these options (the connect timeout matters here).
    pub fn options(mut self, options: MigrateOptions) -> Self {
        self.options = options;
        self
    }

    /// Reads this many tenants at once (at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Takes this tenant's schema as the reference at its version for tenants of
    /// its database kind, instead of the largest group's; other versions, and
    /// tenants of the other kind, keep their largest group.
    pub fn reference(mut self, tenant: TenantId) -> Self {
        self.reference = Some(tenant);
        self
    }

    /// Surveys only the tenants `filter` selects (its paging is ignored), such as
    /// a rollout's targeting.
    pub fn filter(mut self, filter: TenantFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The migration set surveyed against.
    pub fn migrations(&self) -> &MigrationSet {
        &self.set
    }

    /// Surveys `fleet`. A member without a database to migrate (not provisioned,
    /// or being offboarded) is left out; a tenant that cannot be read is reported as unreachable;
    /// only the fleet's own failure, or a named reference that is not in it or
    /// cannot be read, fails the survey.
    pub async fn run(&self, fleet: &dyn TenantFleet) -> Result<DriftReport, DriftError> {
        let mut pass = FirstPass::default();
        let work = |member: crate::FleetMember| {
            let (set, scope, options) = (
                Arc::clone(&self.set),
                self.scope.clone(),
                self.options.clone(),
            );
            async move {
                // Not provisioned yet, or being offboarded: nothing to compare.
                let Some(target) = member.database else {
                    return Ok(None);
                };
                match read_tenant(&target, &set, &scope, &options).await {
                    Ok(reading) => Ok(Some((target, reading))),
                    Err(error) => Err(error.to_string()),
                }
            }
        };
        each_member(
            fleet,
            &self.filter,
            self.concurrency,
            work,
            |tenant, read| match read {
                Ok(Some((target, reading))) => pass.add(tenant, target, reading),
                Ok(None) => {}
                Err(error) => pass.add_unreachable(tenant, error),
            },
        )
        .await?;
        let schemas = self.read_group_schemas(pass.take_groups()).await?;
        pass.into_groups(schemas)
            .into_report(self.reference.as_ref(), OffsetDateTime::now_utc())
    }

    /// The schema of one tenant of each digest group, `concurrency` groups at once.
    async fn read_group_schemas(
        &self,
        groups: Vec<DigestGroup>,
    ) -> Result<BTreeMap<DigestKey, Result<SchemaSnapshot, String>>, DriftError> {
        let mut schemas = BTreeMap::new();
        let mut jobs = JoinSet::new();
        let mut firsts = HashMap::new();
        let mut pending = groups.into_iter();
        loop {
            while jobs.len() < self.concurrency {
                let Some(group) = pending.next() else { break };
                let (scope, options) = (self.scope.clone(), self.options.clone());
                let handle = jobs.spawn(async move {
                    let read =
                        read_group_schema(&group.candidates, group.key.2, &scope, &options).await;
                    (group.key, read.map_err(|error| error.to_string()))
                });
                firsts.insert(handle.id(), group.first);
            }
            match jobs.join_next_with_id().await {
                Some(Ok((id, (key, read)))) => {
                    firsts.remove(&id);
                    schemas.insert(key, read);
                }
                Some(Err(error)) => {
                    let tenant = firsts.remove(&error.id());
                    return Err(DriftError::Interrupted {
                        tenant: tenant.map_or_else(|| "?".into(), |t| t.as_str().to_owned()),
                        message: error.to_string(),
                    });
                }
                None => break,
            }
        }
        Ok(schemas)
    }
}
