use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tenancy_core::{BackendError, DirectoryError, TenantDirectory, TenantId};

/// Tells the processor whether a tenant is one of this service's, so that a Stripe
/// event naming a tenant the service does not have (another environment's, when one
/// Stripe account delivers to staging and production) is not given billing state.
///
/// Given to a [`BillingProcessor`](crate::BillingProcessor) with
/// [`with_tenant_lookup`](crate::BillingProcessor::with_tenant_lookup) (or
/// [`with_tenant_directory`](crate::BillingProcessor::with_tenant_directory) for
/// tenancy-core's [`TenantDirectory`]). A tenant must be known here before any Stripe
/// object names it: tenancy-core's onboarding records the tenant at signup, before its
/// trial starts and before its billing page can open a Checkout.
#[async_trait]
pub trait TenantLookup: Send + Sync + fmt::Debug {
    /// Whether `tenant_id` is one of this service's tenants, whatever its status
    /// (a tenant being offboarded, or deleted with its record kept, still is).
    /// An error leaves the event unprocessed, for Stripe to deliver again.
    async fn tenant_exists(&self, tenant_id: &TenantId) -> Result<bool, BackendError>;
}

/// [`TenantLookup`] over a [`TenantDirectory`]: a tenant exists while the directory
/// has its record (offboarded and deleted tenants keep theirs).
pub(crate) struct DirectoryTenantLookup {
    directory: Arc<dyn TenantDirectory>,
}

impl DirectoryTenantLookup {
    pub(crate) fn new(directory: Arc<dyn TenantDirectory>) -> Self {
        Self { directory }
    }
}

impl fmt::Debug for DirectoryTenantLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryTenantLookup")
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TenantLookup for DirectoryTenantLookup {
    async fn tenant_exists(&self, tenant_id: &TenantId) -> Result<bool, BackendError> {
        match self.directory.get(tenant_id).await {
            Ok(tenant) => Ok(tenant.is_some()),
            Err(error @ DirectoryError::Storage(_)) => Err(BackendError::transient(error)),
            Err(error) => Err(BackendError::permanent(error)),
        }
    }
}
