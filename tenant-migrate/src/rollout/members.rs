//! What a rollout needs to know about the fleet: each tenant's id, tags and database.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tenancy_core::{
    DatabaseTarget, DirectoryError, Tenant, TenantDirectory, TenantFilter, TenantId,
};

/// One tenant database of a fleet, as a rollout sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetMember {
    /// The tenant.
    pub id: TenantId,
    /// Its tags (for targeting and canaries).
    pub tags: BTreeSet<String>,
    /// Its database; `None` while it is not provisioned.
    pub database: Option<DatabaseTarget>,
}

impl FleetMember {
    /// A member with a database and no tags.
    pub fn new(id: TenantId, database: DatabaseTarget) -> Self {
        Self {
            id,
            tags: BTreeSet::new(),
            database: Some(database),
        }
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }
}

/// The tenants a [`Rollout`](crate::Rollout) covers: the narrow input it reads,
/// implemented by every `TenantDirectory` (through [`IntoFleet`]) and by
/// [`FleetList`](crate::FleetList), a fixed list such as a fleet file.
#[async_trait]
pub trait TenantFleet: Send + Sync + fmt::Debug {
    /// The members `filter` matches, in id order, honouring its keyset paging
    /// (`after`, `limit`) as [`TenantDirectory::list`] does.
    async fn members(&self, filter: &TenantFilter) -> Result<Vec<FleetMember>, DirectoryError>;

    /// One member's database: `None` when it is not listed or not provisioned.
    async fn database(&self, id: &TenantId) -> Result<Option<DatabaseTarget>, DirectoryError>;
}

/// A [`TenantDirectory`] as a fleet: every tenant with its tags and database.
#[derive(Clone)]
pub struct DirectoryFleet {
    directory: Arc<dyn TenantDirectory>,
}

impl fmt::Debug for DirectoryFleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryFleet").finish_non_exhaustive()
    }
}

impl DirectoryFleet {
    /// The fleet of `directory`.
    pub fn new(directory: Arc<dyn TenantDirectory>) -> Self {
        Self { directory }
    }
}

#[async_trait]
impl TenantFleet for DirectoryFleet {
    async fn members(&self, filter: &TenantFilter) -> Result<Vec<FleetMember>, DirectoryError> {
        let tenants = self.directory.list(filter).await?;
        Ok(tenants
            .into_iter()
            .map(|t| FleetMember {
                database: migratable(&t),
                id: t.id,
                tags: t.tags,
            })
            .collect())
    }

    async fn database(&self, id: &TenantId) -> Result<Option<DatabaseTarget>, DirectoryError> {
        Ok(self.directory.get(id).await?.and_then(|t| migratable(&t)))
    }
}

/// The tenant's database while it is to be migrated: not once offboarding started
/// (a retained tenant's database is paused, a deleted one's gone). Such a tenant
/// stays listed, so paging is unchanged, and rollouts skip it.
fn migratable(tenant: &Tenant) -> Option<DatabaseTarget> {
    tenant
        .database
        .clone()
        .filter(|_| !tenant.status.is_offboarded())
}

/// What [`Rollout::builder`](crate::Rollout::builder) accepts as its fleet: a
/// tenant directory (`Arc<D>` or `Arc<dyn TenantDirectory>`), a
/// [`FleetList`](crate::FleetList), or any `Arc<dyn TenantFleet>`.
pub trait IntoFleet {
    /// The fleet.
    fn into_fleet(self) -> Arc<dyn TenantFleet>;
}

impl IntoFleet for Arc<dyn TenantFleet> {
    fn into_fleet(self) -> Arc<dyn TenantFleet> {
        self
    }
}

impl IntoFleet for Arc<dyn TenantDirectory> {
    fn into_fleet(self) -> Arc<dyn TenantFleet> {
        Arc::new(DirectoryFleet::new(self))
    }
}

impl<D: TenantDirectory + 'static> IntoFleet for Arc<D> {
    fn into_fleet(self) -> Arc<dyn TenantFleet> {
        Arc::new(DirectoryFleet::new(self))
    }
}

#[cfg(test)]
mod tests {
    use tenancy_core::{DatabaseUrl, MemoryTenantDirectory, NewTenant, TenantStatus};
    use time::OffsetDateTime;

    use super::*;

    #[tokio::test]
    async fn tenants_past_onboarding_stay_listed_without_a_database_to_migrate() {
        let directory = Arc::new(MemoryTenantDirectory::new());
        let database = |name: &str| {
            DatabaseTarget::new(DatabaseUrl::parse(&format!("postgres://app@db/{name}")).unwrap())
        };
        for (name, status) in [
            ("Acme", TenantStatus::Ready),
            (
                "Globex",
                TenantStatus::Retained {
                    until: OffsetDateTime::UNIX_EPOCH,
                    onboarded: true,
                    export: None,
                },
            ),
        ] {
            let mut tenant = NewTenant::new(name, "owner@example.com")
                .unwrap()
                .into_tenant(OffsetDateTime::UNIX_EPOCH);
            tenant.status = status;
            tenant.database = Some(database(name));
            directory.insert(&tenant).await.unwrap();
        }
        let fleet = DirectoryFleet::new(directory);

        let members = fleet.members(&TenantFilter::all()).await.unwrap();

        let listed: Vec<(&str, bool)> = members
            .iter()
            .map(|m| (m.id.as_str(), m.database.is_some()))
            .collect();
        assert_eq!(listed, [("acme", true), ("globex", false)]);
        let globex = TenantId::try_from("globex").unwrap();
        assert_eq!(fleet.database(&globex).await.unwrap(), None);
    }
}
