//! The migration administration behind `tenant_migrate::http::rollout_router`: the
//! application's migrations as its catalog, and the rollout resumed at start.

use std::sync::Arc;

use tenancy_core::TenantDirectory;
use tenant_migrate::http::RolloutRoutes;
use tenant_migrate::rollout::store::RolloutStore;
use tenant_migrate::{MigrationSet, Rollout, RolloutError, Strategy};

use crate::assembly::Assembly;
use crate::migrations::AppMigrations;

/// Migration administration: the application's migrations and fleet rollouts.
#[derive(Clone)]
pub struct MigrationAdmin {
    migrations: AppMigrations,
    directory: Arc<dyn TenantDirectory>,
    store: Arc<dyn RolloutStore>,
}

impl std::fmt::Debug for MigrationAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationAdmin")
            .field("migrations", &self.migrations)
            .finish_non_exhaustive()
    }
}

impl MigrationAdmin {
    /// Administration of `assembly`'s migrations, rolled out over its tenants.
    pub fn new(assembly: &Assembly) -> Self {
        Self {
            migrations: assembly.migrations.clone(),
            directory: assembly.plane.directory.clone(),
            store: assembly.plane.rollouts.clone(),
        }
    }

    /// Runs the unfinished rollout of the current migrations, if there is one: after a
    /// restart, or one another server process started and left.
    pub async fn resume(&self) -> Result<(), RolloutError> {
        let Ok(set) = self.migrations.refresh().await else {
            return Ok(());
        };
        let rollout = self.rollout(&set, Strategy::AllAtOnce);
        if self.store.find_open(&rollout.key()?).await?.is_some() {
            let report = rollout.run().await?;
            tracing::info!(rollout = report.rollout_id, status = %report.status, "resumed rollout finished");
        }
        Ok(())
    }

    /// The admin rollout routes' state over the same parts.
    pub fn routes(&self) -> RolloutRoutes {
        RolloutRoutes::new(
            self.directory.clone(),
            self.store.clone(),
            self.migrations.clone(),
        )
    }

    fn rollout(&self, set: &MigrationSet, strategy: Strategy) -> Rollout {
        Rollout::of_migrations(self.directory.clone(), set.clone(), self.store.clone())
            .strategy(strategy)
            .build()
    }
}
