use async_trait::async_trait;

use crate::{BackendError, DatabaseTarget, Tenant, TenantId};

/// Creates, finds and deletes the database of a tenant.
///
/// Implementations **must be idempotent per tenant**: `provision` for a tenant whose
/// database already exists (because an earlier call succeeded, or timed out after the
/// provider had already acted) returns that database instead of creating a second one.
/// The usual way is a deterministic name derived from the tenant id and a lookup by
/// that name before any create. The onboarding pipeline relies on this: after a crash
/// it calls [`find`](DatabaseProvisioner::find) and then `provision` again.
#[async_trait]
pub trait DatabaseProvisioner: Send + Sync {
    /// Creates the tenant's database, or returns the one that already exists, and
    /// waits until it accepts connections.
    async fn provision(&self, tenant: &Tenant) -> Result<DatabaseTarget, BackendError>;

    /// The tenant's database if it exists, without creating anything.
    async fn find(&self, tenant: &TenantId) -> Result<Option<DatabaseTarget>, BackendError>;

    /// Deletes the tenant's database. Deleting a database that does not exist succeeds.
    async fn delete(&self, tenant: &TenantId) -> Result<(), BackendError>;
}
