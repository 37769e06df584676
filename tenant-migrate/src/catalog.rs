//! Where a service's migrations come from when they can grow at run time.

use async_trait::async_trait;
use tenancy_core::BoxError;

use crate::{Finding, Migration, MigrationSet};

/// The migrations a service rolls out, and how new ones join them: a directory fixed
/// at build time ([`MigrationSet`] itself), or a store to which operators add
/// migrations at run time (the admin route `POST /run` of
/// `tenant_migrate::http::rollout_router`).
#[async_trait]
pub trait MigrationCatalog: Send + Sync {
    /// The migrations rollouts bring tenants to now.
    async fn current(&self) -> Result<MigrationSet, CatalogError>;

    /// Checks `sql` (the linter included) and adds it as migration `version`; returns
    /// the set with it.
    ///
    /// The rollout routes check a migration with [`propose`](Self::propose) and plan
    /// its rollout before they add it, so that a refused request stores nothing;
    /// when recording the rollout then fails (a store error), the migration stays in
    /// the catalog and `POST /resume` (or a later rollout) takes it out, while adding
    /// the same version again is refused as not newer.
    async fn add(&self, version: &str, sql: &str) -> Result<MigrationSet, CatalogError>;

    /// The set that [`add`](Self::add) (or, for the latest version,
    /// [`replace`](Self::replace)) would give with `sql` as migration `version`,
    /// after the checks it would make; stores nothing. The default builds it from
    /// [`current`](Self::current) and leaves the checks to `add` and `replace`.
    async fn propose(&self, version: &str, sql: &str) -> Result<MigrationSet, CatalogError> {
        let current = self.current().await?;
        with_migration(&current, version, sql)
    }

    /// Replaces the SQL of the latest migration, added at run time as `version`
    /// and applied by no tenant (a migration that failed everywhere, say), after
    /// the same checks as [`add`](Self::add); returns the set with it.
    async fn replace(&self, version: &str, sql: &str) -> Result<MigrationSet, CatalogError> {
        let _ = (version, sql);
        Err(fixed())
    }

    /// Withdraws the latest migration, added at run time with version `version`
    /// and applied by no tenant; returns the set without it.
    async fn withdraw(&self, version: i64) -> Result<MigrationSet, CatalogError> {
        let _ = version;
        Err(fixed())
    }
}

/// `set` with `sql` as migration `version`: added, or replacing the one of that
/// version.
pub(crate) fn with_migration(
    set: &MigrationSet,
    version: &str,
    sql: &str,
) -> Result<MigrationSet, CatalogError> {
    let proposed = Migration::parse_adhoc(version, sql).map_err(refused)?;
    set.iter()
        .filter(|migration| migration.version() != proposed.version())
        .cloned()
        .fold(MigrationSet::builder(), |builder, m| builder.migration(m))
        .migration(proposed)
        .build()
        .map_err(refused)
}

fn refused(error: impl ToString) -> CatalogError {
    CatalogError::Refused {
        message: error.to_string(),
        findings: Vec::new(),
    }
}

fn fixed() -> CatalogError {
    CatalogError::Refused {
        message: "this service's migrations are fixed when it is built; add the file to its migrations directory and deploy".into(),
        findings: Vec::new(),
    }
}

/// Why a catalog could not answer or refused a migration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The migration was refused (a bad version, a lint finding); nothing was stored.
    #[error("{message}")]
    Refused {
        /// What is wrong and how to fix it.
        message: String,
        /// The linter's findings, when it refused the migration.
        findings: Vec<Finding>,
    },
    /// The migration was applied by some tenant, so it can no longer be replaced or
    /// withdrawn; fix it forward with a new migration.
    #[error("{0}")]
    Applied(String),
    /// The catalog's storage failed.
    #[error("could not read or store the migrations: {0}; check the control plane and retry")]
    Storage(#[source] BoxError),
}

#[async_trait]
impl MigrationCatalog for MigrationSet {
    async fn current(&self) -> Result<MigrationSet, CatalogError> {
        Ok(self.clone())
    }

    async fn add(&self, _version: &str, _sql: &str) -> Result<MigrationSet, CatalogError> {
        Err(fixed())
    }

    async fn propose(&self, _version: &str, _sql: &str) -> Result<MigrationSet, CatalogError> {
        Err(fixed())
    }
}
