use std::fmt;

use async_trait::async_trait;
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport};

/// What a rollout needs to migrate one tenant database: the per-tenant migrator,
/// seen through a small object-safe trait so the rollout can be driven (and tested)
/// with any implementation.
///
/// This crate's [`TenantMigrator`](crate::TenantMigrator) implements it (each job
/// is one [`MigrationSession`](crate::MigrationSession)). Implementations must make
/// [`TenantSession::apply`] idempotent and exclusive per database (a per-database
/// lock and a history table): a rollout retries a tenant whose runner died, and
/// relies on the tenant's own history to never apply a migration twice.
#[async_trait]
pub trait RolloutMigrator: Send + Sync + fmt::Debug {
    /// The version every tenant is brought to (the set's latest; `None` for an
    /// empty set, which cannot be rolled out).
    fn target_version(&self) -> Option<i64>;

    /// A fingerprint of the migration set; with the target version it identifies a rollout.
    fn set_checksum(&self) -> String;

    /// The first migration above `version` (up to the target) that has no down
    /// script, if any: a rollback to `version` is impossible past it.
    fn first_irreversible_above(&self, version: Option<i64>) -> Option<i64>;

    /// Opens one connection to a tenant database, used for one job and then closed.
    async fn connect(
        &self,
        database: &DatabaseTarget,
    ) -> Result<Box<dyn TenantSession>, BackendError>;
}

/// One open connection to a tenant database, for the length of one job.
#[async_trait]
pub trait TenantSession: Send {
    /// The schema version recorded in the database's history (`None`: none applied).
    async fn version(&mut self) -> Result<Option<i64>, BackendError>;

    /// The version before a job applies: an implementation may read it under its
    /// per-database lock and keep the lock for the [`apply`](Self::apply) that
    /// follows (released by it, or by [`close`](Self::close)). By default, [`version`](Self::version).
    async fn lock_version(&mut self) -> Result<Option<i64>, BackendError> {
        self.version().await
    }

    /// Applies every pending migration up to `target_version`.
    async fn apply(&mut self, target_version: i64) -> Result<MigrationReport, BackendError>;

    /// Reverts migrations above `to_version` (`None`: all of them), newest first.
    async fn revert(&mut self, to_version: Option<i64>) -> Result<MigrationReport, BackendError>;

    /// Closes the connection politely (dropping the session closes it too).
    async fn close(self: Box<Self>);
}
