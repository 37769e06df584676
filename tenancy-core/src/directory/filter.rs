use std::collections::BTreeSet;

use crate::{Tenant, TenantId};

/// Which tenants [`TenantDirectory::list`](super::TenantDirectory::list) returns.
///
/// An empty filter matches every tenant. Ids, tags and states narrow it: a tenant
/// matches when its id is among `ids` (if any are given), it has at least one of
/// `tags` (if any are given) and its state is one of `statuses` (if any are given).
///
/// ```
/// use tenancy_core::{TenantFilter, TenantId};
///
/// let first_page = TenantFilter::all().with_tag("staging").limit(500);
/// let next_page = first_page.clone().after(TenantId::try_from("acme")?);
/// # Ok::<(), tenancy_core::TenantIdError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFilter {
    ids: BTreeSet<TenantId>,
    tags: BTreeSet<String>,
    statuses: BTreeSet<String>,
    after: Option<TenantId>,
    limit: Option<u32>,
}

impl TenantFilter {
    /// Matches every tenant.
    pub fn all() -> Self {
        Self::default()
    }

    /// Keeps only this id (call again to add more).
    pub fn with_id(mut self, id: TenantId) -> Self {
        self.ids.insert(id);
        self
    }

    /// Keeps only tenants with this tag (call again to accept any of several).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }

    /// Keeps only tenants in this state, by its name (`ready`, `failed`, …; see
    /// [`TenantStatus::name`](crate::TenantStatus::name)); call again to accept any
    /// of several.
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.statuses.insert(status.into());
        self
    }

    /// The state names to keep (empty: any).
    pub fn statuses(&self) -> &BTreeSet<String> {
        &self.statuses
    }

    /// Starts after this id (keyset paging).
    pub fn after(mut self, id: TenantId) -> Self {
        self.after = Some(id);
        self
    }

    /// Returns at most `n` tenants.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// The ids to keep (empty: any).
    pub fn ids(&self) -> &BTreeSet<TenantId> {
        &self.ids
    }

    /// The tags to keep (empty: any).
    pub fn tags(&self) -> &BTreeSet<String> {
        &self.tags
    }

    /// The id to start after.
    pub fn after_id(&self) -> Option<&TenantId> {
        self.after.as_ref()
    }

    /// The page size.
    pub fn page_limit(&self) -> Option<u32> {
        self.limit
    }

    /// Whether `tenant` matches (ignoring paging).
    pub fn matches(&self, tenant: &Tenant) -> bool {
        self.accepts(&tenant.id, &tenant.tags)
            && (self.statuses.is_empty() || self.statuses.contains(tenant.status.name()))
    }

    /// Whether a tenant with this id and these tags matches (ignoring paging and
    /// states), for lists of tenants that are not whole [`Tenant`] records.
    pub fn accepts(&self, id: &TenantId, tags: &BTreeSet<String>) -> bool {
        (self.ids.is_empty() || self.ids.contains(id))
            && (self.tags.is_empty() || !self.tags.is_disjoint(tags))
    }
}
