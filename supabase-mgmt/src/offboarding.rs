//! Pausing and resuming tenants' projects for offboarding's retention period.

use std::time::Duration;

use async_trait::async_trait;
use tenancy_core::{BackendError, DatabasePauser, DatabaseTarget, Tenant};

use crate::ManagementClient;

/// How long a pause or a restore is waited for unless told otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// tenancy-core's [`DatabasePauser`] on Supabase: pausing a tenant's project
/// (`POST /v1/projects/{ref}/pause`, then waiting until it is `INACTIVE`) for the
/// retention period after offboarding, and restoring it
/// (`POST /v1/projects/{ref}/restore`, then waiting until it is `ACTIVE_HEALTHY` with
/// its database and pooler up). The project ref is the tenant database's
/// `external_ref`, as [`SupabaseProvisioner`](crate::SupabaseProvisioner) records it.
///
/// Both are safe to repeat: a project already paused (or up) is left as it is. A
/// paused project keeps its data; deleting it after the retention is the
/// provisioner's `delete` (`DELETE /v1/projects/{ref}`).
///
/// ```no_run
/// # fn wire(client: supabase_mgmt::ManagementClient) {
/// use supabase_mgmt::SupabaseProjectPauser;
///
/// let pauser = SupabaseProjectPauser::new(client).wait(std::time::Duration::from_secs(900));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SupabaseProjectPauser {
    client: ManagementClient,
    wait: Duration,
}

impl SupabaseProjectPauser {
    /// Pauses and restores projects through `client`, waiting up to ten minutes.
    pub fn new(client: ManagementClient) -> Self {
        Self {
            client,
            wait: DEFAULT_WAIT,
        }
    }

    /// Waits up to `timeout` for a pause or a restore to finish.
    pub fn wait(mut self, timeout: Duration) -> Self {
        self.wait = timeout;
        self
    }

    fn project_ref<'a>(
        tenant: &Tenant,
        database: &'a DatabaseTarget,
    ) -> Result<&'a str, BackendError> {
        database.external_ref.as_deref().ok_or_else(|| {
            BackendError::permanent(format!(
                "tenant `{}` has no Supabase project ref recorded with its database; provision it with SupabaseProvisioner",
                tenant.id
            ))
        })
    }
}

#[async_trait]
impl DatabasePauser for SupabaseProjectPauser {
    async fn pause(&self, tenant: &Tenant, database: &DatabaseTarget) -> Result<(), BackendError> {
        let project_ref = Self::project_ref(tenant, database)?;
        let change = self.client.pause_project(project_ref).await?;
        tracing::info!(tenant = %tenant.id, project_ref, ?change, "pausing the tenant's project");
        self.client
            .wait_until_paused(project_ref, self.wait)
            .await
            .map(drop)
            .map_err(BackendError::from)
    }

    async fn resume(&self, tenant: &Tenant, database: &DatabaseTarget) -> Result<(), BackendError> {
        let project_ref = Self::project_ref(tenant, database)?;
        let change = self.client.restore_project(project_ref).await?;
        tracing::info!(tenant = %tenant.id, project_ref, ?change, "restoring the tenant's project");
        self.client
            .wait_until_restored(project_ref, self.wait)
            .await
            .map(drop)
            .map_err(BackendError::from)
    }
}
