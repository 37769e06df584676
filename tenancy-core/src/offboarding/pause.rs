use async_trait::async_trait;

use crate::{BackendError, DatabaseTarget, Tenant};

/// Pauses and resumes a tenant's database: stopped from accepting connections during
/// the retention period after offboarding, its data kept.
///
/// A trait of its own beside [`DatabaseProvisioner`](crate::DatabaseProvisioner), so
/// provisioners written before offboarding existed keep compiling. Implementations:
/// `PostgresServerProvisioner` (`ALLOW_CONNECTIONS false`), `SqliteFileProvisioner`
/// (the file moved aside), `supabase_mgmt::SupabaseProjectPauser` (the project paused).
///
/// Both methods **must be idempotent**: pausing a paused database and resuming a
/// running one succeed, since offboarding and restoring may run again after a crash.
#[async_trait]
pub trait DatabasePauser: Send + Sync {
    /// Stops `database` from accepting connections (closing those it has), keeping
    /// its data.
    async fn pause(&self, tenant: &Tenant, database: &DatabaseTarget) -> Result<(), BackendError>;

    /// Makes a paused `database` accept connections again, and returns once it does.
    async fn resume(&self, tenant: &Tenant, database: &DatabaseTarget) -> Result<(), BackendError>;
}
