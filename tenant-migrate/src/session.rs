use tenancy_core::DatabaseTarget;

use crate::connection::TenantConnection;
use crate::{engine, MigrateError, MigrationOutcome, MigrationStatus, TenantMigrator};

/// One open connection to one tenant database, for several operations (read the
/// status, then apply), then closed: what a fleet rollout holds per tenant job.
///
/// Opened by [`TenantMigrator::connect`]; owns its connection and a cheap clone of
/// the migrator, so it can be boxed and moved across tasks. If an operation's
/// future is dropped half way, drop the session too: the migration lock and any
/// open transaction end with the connection.
///
/// ```no_run
/// # use tenancy_core::{DatabaseTarget, DatabaseUrl};
/// # use tenant_migrate::{MigrationSet, TenantMigrator};
/// # async fn run(migrator: TenantMigrator, target: DatabaseTarget) -> Result<(), tenant_migrate::MigrateError> {
/// let mut session = migrator.connect(&target).await?;
/// let before = session.status().await?.current_version;
/// let outcome = session.apply_to(20240127).await?;
/// session.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MigrationSession {
    migrator: TenantMigrator,
    conn: TenantConnection,
}

impl MigrationSession {
    pub(crate) async fn open(
        migrator: &TenantMigrator,
        target: &DatabaseTarget,
    ) -> Result<Self, MigrateError> {
        let conn = TenantConnection::open(target, migrator.options()).await?;
        Ok(Self {
            migrator: migrator.clone(),
            conn,
        })
    }

    /// The tenant's [`MigrationStatus`], in one query.
    pub async fn status(&mut self) -> Result<MigrationStatus, MigrateError> {
        engine::status(self.conn.backend().as_mut(), self.migrator.migrations()).await
    }

    /// Applies every pending migration.
    pub async fn apply(&mut self) -> Result<MigrationOutcome, MigrateError> {
        self.apply_until(None).await
    }

    /// Applies the pending migrations up to and including `version`.
    pub async fn apply_to(&mut self, version: i64) -> Result<MigrationOutcome, MigrateError> {
        self.apply_until(Some(version)).await
    }

    /// Reverts, newest first, every applied migration above `to_version` (`0`: all).
    pub async fn revert(&mut self, to_version: i64) -> Result<MigrationOutcome, MigrateError> {
        let (set, options) = (self.migrator.migrations(), self.migrator.options());
        engine::revert(self.conn.backend().as_mut(), set, options, to_version).await
    }

    /// Closes the connection (dropping the session closes it too, less politely).
    pub async fn close(self) {
        self.conn.close().await;
    }

    async fn apply_until(&mut self, until: Option<i64>) -> Result<MigrationOutcome, MigrateError> {
        let (set, options) = (self.migrator.migrations(), self.migrator.options());
        engine::apply(self.conn.backend().as_mut(), set, options, until).await
    }
}
