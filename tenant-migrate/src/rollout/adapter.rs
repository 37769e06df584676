//! The rollout's per-tenant work done by this crate's [`TenantMigrator`].

use async_trait::async_trait;
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport};

use super::{RolloutMigrator, TenantSession};
use crate::{MigrateError, MigrationOutcome, MigrationSession, TenantMigrator};

#[async_trait]
impl RolloutMigrator for TenantMigrator {
    fn target_version(&self) -> Option<i64> {
        self.migrations().latest_version()
    }

    fn set_checksum(&self) -> String {
        self.migrations().fingerprint()
    }

    fn first_irreversible_above(&self, version: Option<i64>) -> Option<i64> {
        self.migrations()
            .iter()
            .find(|m| Some(m.version()) > version && !m.is_reversible())
            .map(|m| m.version())
    }

    fn version_before(&self, version: i64) -> Option<i64> {
        self.migrations()
            .iter()
            .map(|m| m.version())
            .take_while(|v| *v < version)
            .last()
    }

    async fn connect(
        &self,
        database: &DatabaseTarget,
    ) -> Result<Box<dyn TenantSession>, BackendError> {
        let session = TenantMigrator::connect(self, database)
            .await
            .map_err(backend_error)?;
        Ok(Box::new(session))
    }
}

#[async_trait]
impl TenantSession for MigrationSession {
    async fn version(&mut self) -> Result<Option<i64>, BackendError> {
        let status = self.status().await.map_err(backend_error)?;
        Ok(status.current_version)
    }

    /// [`MigrationSession::lock_status`]: the job records this version, then
    /// applies without locking or reading again.
    async fn lock_version(&mut self) -> Result<Option<i64>, BackendError> {
        let status = self.lock_status().await.map_err(backend_error)?;
        Ok(status.current_version)
    }

    async fn apply(&mut self, target_version: i64) -> Result<MigrationReport, BackendError> {
        self.apply_to(target_version)
            .await
            .map(report)
            .map_err(backend_error)
    }

    fn applies_in_one_request(&mut self, expected: i64, target_version: i64) -> bool {
        self.can_apply_if_at(expected, target_version)
    }

    async fn apply_if_at(
        &mut self,
        expected: i64,
        target_version: i64,
    ) -> Result<Option<MigrationReport>, BackendError> {
        MigrationSession::apply_if_at(self, expected, target_version)
            .await
            .map(|outcome| outcome.map(report))
            .map_err(backend_error)
    }

    fn mark_commits(&mut self, mark: &str) {
        MigrationSession::mark_commits(self, mark);
    }

    async fn carries_mark(&mut self, mark: &str) -> Result<Option<bool>, BackendError> {
        MigrationSession::carries_mark(self, mark)
            .await
            .map_err(backend_error)
    }

    async fn revert(&mut self, to_version: Option<i64>) -> Result<MigrationReport, BackendError> {
        // The migrator reverts everything above `to_version`; 0 reverts all.
        MigrationSession::revert(self, to_version.unwrap_or(0))
            .await
            .map(report)
            .map_err(backend_error)
    }

    async fn close(self: Box<Self>) {
        MigrationSession::close(*self).await;
    }
}

fn report(outcome: MigrationOutcome) -> MigrationReport {
    MigrationReport::new(
        outcome.from_version,
        outcome.to_version,
        outcome.steps.len(),
    )
}

fn backend_error(error: MigrateError) -> BackendError {
    if error.is_retryable() {
        BackendError::transient(error)
    } else {
        BackendError::permanent(error)
    }
}
