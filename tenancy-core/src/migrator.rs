use async_trait::async_trait;

use crate::{BackendError, DatabaseTarget, TenantId};

/// What a [`SchemaMigrator`] did to one tenant database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The schema version before (`None` for an empty database).
    pub from_version: Option<i64>,
    /// The schema version after.
    pub to_version: Option<i64>,
    /// How many migrations were applied.
    pub applied: usize,
}

impl MigrationReport {
    /// A report of `applied` migrations taking the database from `from` to `to`.
    pub fn new(from_version: Option<i64>, to_version: Option<i64>, applied: usize) -> Self {
        Self {
            from_version,
            to_version,
            applied,
        }
    }
}

/// Brings a tenant database to the current schema.
///
/// Implementations must be safe to call again after any failure or crash: a
/// migration already recorded in the database's history is never applied twice.
#[async_trait]
pub trait SchemaMigrator: Send + Sync {
    /// Applies every pending migration to the tenant's database.
    async fn migrate(
        &self,
        tenant: &TenantId,
        database: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError>;
}
