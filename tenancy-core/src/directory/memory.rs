use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::{DirectoryError, TenantDirectory, TenantFilter};
use crate::{Tenant, TenantId};

/// A directory held in memory: for tests and single-process demos.
#[derive(Debug, Default)]
pub struct MemoryTenantDirectory {
    tenants: Mutex<BTreeMap<TenantId, Tenant>>,
}

impl MemoryTenantDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_map<R>(&self, f: impl FnOnce(&mut BTreeMap<TenantId, Tenant>) -> R) -> R {
        f(&mut self.tenants.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl TenantDirectory for MemoryTenantDirectory {
    async fn insert(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        self.with_map(|map| {
            if map.contains_key(&tenant.id) {
                return Err(DirectoryError::AlreadyExists(tenant.id.clone()));
            }
            map.insert(tenant.id.clone(), tenant.clone());
            Ok(tenant.clone())
        })
    }

    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        Ok(self.with_map(|map| map.get(id).cloned()))
    }

    async fn update(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        self.with_map(|map| {
            let stored = map
                .get_mut(&tenant.id)
                .ok_or_else(|| DirectoryError::NotFound(tenant.id.clone()))?;
            if stored.revision != tenant.revision {
                return Err(DirectoryError::Conflict {
                    id: tenant.id.clone(),
                    revision: tenant.revision,
                });
            }
            let mut next = tenant.clone();
            next.revision += 1;
            *stored = next.clone();
            Ok(next)
        })
    }

    async fn list(&self, filter: &TenantFilter) -> Result<Vec<Tenant>, DirectoryError> {
        let limit = filter.page_limit().map_or(usize::MAX, |n| n as usize);
        Ok(self.with_map(|map| {
            map.values()
                .filter(|t| filter.after_id().is_none_or(|after| &t.id > after))
                .filter(|t| filter.matches(t))
                .take(limit)
                .cloned()
                .collect()
        }))
    }
}
