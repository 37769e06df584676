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
///
/// A rollout records the version each tenant starts from before changing it,
/// for rollback. Where the session can apply in one request
/// ([`TenantSession::apply_if_at`]), the rollout records the version the
/// tenants before it started from, then applies only if the tenant is there;
/// a runner resuming after a crash asks [`TenantSession::carries_mark`] whether
/// such a request committed, and records the tenant's version instead when it
/// did not.
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

    /// The version of the set's migration just below `version`: where most
    /// tenants stand when a rollout to `version` starts, and so the first
    /// version the rollout expects when applying in one request. By default
    /// `None`: the first tenants are read before anything is expected.
    fn version_before(&self, _version: i64) -> Option<i64> {
        None
    }

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

    /// Whether [`apply_if_at`](Self::apply_if_at) can be tried from `expected`
    /// to `target_version`. By default `false`.
    fn applies_in_one_request(&mut self, _expected: i64, _target_version: i64) -> bool {
        false
    }

    /// Applies up to `target_version` in one request, taking and releasing the
    /// per-database lock inside it, if the database is exactly at `expected`
    /// (its history clean up to it). `Ok(None)`: it was not, or the lock was
    /// held; nothing changed. By default `Ok(None)`.
    async fn apply_if_at(
        &mut self,
        _expected: i64,
        _target_version: i64,
    ) -> Result<Option<MigrationReport>, BackendError> {
        Ok(None)
    }

    /// Leaves `mark` in the database with every migration this session applies
    /// from now on, atomically with it. By default nothing.
    fn mark_commits(&mut self, _mark: &str) {}

    /// Whether the database carries `mark` (see [`mark_commits`](Self::mark_commits));
    /// `None` when it cannot tell. By default `None`.
    async fn carries_mark(&mut self, _mark: &str) -> Result<Option<bool>, BackendError> {
        Ok(None)
    }

    /// Reverts migrations above `to_version` (`None`: all of them), newest first.
    async fn revert(&mut self, to_version: Option<i64>) -> Result<MigrationReport, BackendError>;

    /// Closes the connection politely (dropping the session closes it too).
    async fn close(self: Box<Self>);
}
