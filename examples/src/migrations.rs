//! The application's migrations: the ones shipped with the binary, plus those added
//! at run time through `POST /api/admin/migrations/run` (kept in the control plane so
//! that tenants onboarded later get them too).

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use sqlx::Row;
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport, SchemaMigrator, TenantId};
use tenant_migrate::{
    lint, CatalogError, Finding, Migration, MigrationCatalog, MigrationSet, Severity,
    TenantMigrator,
};

use crate::control_plane::{with_pool, ControlPlane, StatePool};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tenancy_admin_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, sql TEXT NOT NULL)";

/// Why a migration was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationsError {
    /// The migration's name or files are invalid.
    #[error("{0}")]
    Source(#[from] tenant_migrate::MigrationSourceError),
    /// The version is not newer than every existing migration.
    #[error("version {version} is not newer than the latest migration {latest}; give the migration a later version, e.g. a timestamp such as 20240127120000_add_new_field")]
    NotNewer {
        /// The refused version.
        version: i64,
        /// The latest existing version.
        latest: i64,
    },
    /// The linter found changes that break running code or block writes.
    #[error("the migration is not backward compatible: {}", summary(.0))]
    Lint(Vec<Finding>),
    /// The control plane failed.
    #[error("could not store the migration: {0}")]
    Storage(#[from] sqlx::Error),
}

fn summary(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("line {}: {} ({})", f.line, f.rule, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The application's migration set, shared and updatable; also the [`SchemaMigrator`]
/// that onboarding uses, so new tenants get every migration.
#[derive(Clone)]
pub struct AppMigrations {
    current: Arc<RwLock<Arc<MigrationSet>>>,
    pool: StatePool,
}

impl std::fmt::Debug for AppMigrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppMigrations")
            .field("latest", &self.current().latest_version())
            .finish_non_exhaustive()
    }
}

/// The migrations shipped with the examples (`examples/migrations/`).
pub fn base_migrations() -> Result<MigrationSet, tenant_migrate::MigrationSourceError> {
    tenant_migrate::embedded_migrations!(
        "migrations",
        [
            "20240101000000_create_items.sql",
            "20240115000000_create_orders.sql"
        ]
    )
}

impl AppMigrations {
    /// The base migrations plus those stored in the control plane.
    pub async fn open(plane: &ControlPlane) -> Result<Self, MigrationsError> {
        create_table(&plane.pool).await?;
        let migrations = Self {
            current: Arc::new(RwLock::new(Arc::new(base_migrations()?))),
            pool: plane.pool.clone(),
        };
        migrations.refresh().await?;
        Ok(migrations)
    }

    /// The current set, as last read.
    pub fn current(&self) -> Arc<MigrationSet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the set again from the control plane: another server process may have
    /// added a migration since.
    pub async fn refresh(&self) -> Result<Arc<MigrationSet>, MigrationsError> {
        let builder = base_migrations()?
            .iter()
            .fold(MigrationSet::builder(), |b, m| b.migration(m.clone()));
        let set = load(&self.pool)
            .await?
            .into_iter()
            .fold(builder, |b, (name, sql)| b.adhoc(&name, sql))
            .build()?;
        let set = Arc::new(set);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = set.clone();
        Ok(set)
    }

    /// Validates, lints and stores an ad-hoc migration (`name` like
    /// `20240127_add_new_field`), returning the new set. A finding of severity
    /// error refuses it.
    pub async fn add(&self, name: &str, sql: &str) -> Result<Arc<MigrationSet>, MigrationsError> {
        let migration = Migration::parse_adhoc(name, sql)?;
        let current = self.refresh().await?;
        if let Some(latest) = current
            .latest_version()
            .filter(|latest| migration.version() <= *latest)
        {
            return Err(MigrationsError::NotNewer {
                version: migration.version(),
                latest,
            });
        }
        let blocking: Vec<Finding> = lint(sql)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        if !blocking.is_empty() {
            return Err(MigrationsError::Lint(blocking));
        }
        store(&self.pool, migration.version(), name, sql).await?;
        self.refresh().await
    }
}

#[async_trait]
impl SchemaMigrator for AppMigrations {
    async fn migrate(
        &self,
        tenant: &TenantId,
        database: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        let set = self.refresh().await.map_err(BackendError::transient)?;
        TenantMigrator::new(set).migrate(tenant, database).await
    }
}

async fn create_table(pool: &StatePool) -> Result<(), sqlx::Error> {
    with_pool!(pool, |pool| sqlx::query(SCHEMA)
        .execute(pool)
        .await
        .map(drop))
}

async fn load(pool: &StatePool) -> Result<Vec<(String, String)>, sqlx::Error> {
    let query = "SELECT name, sql FROM tenancy_admin_migrations ORDER BY version";
    with_pool!(pool, |pool| {
        let rows = sqlx::query(query).fetch_all(pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    })
}

async fn store(pool: &StatePool, version: i64, name: &str, sql: &str) -> Result<(), sqlx::Error> {
    let insert = "INSERT INTO tenancy_admin_migrations (version, name, sql) VALUES ($1, $2, $3)";
    with_pool!(pool, |pool| {
        let query = sqlx::query(insert).bind(version).bind(name).bind(sql);
        query.execute(pool).await.map(drop)
    })
}

/// The admin API's catalog: the shipped migrations plus those added at run time.
#[async_trait]
impl MigrationCatalog for AppMigrations {
    async fn current(&self) -> Result<MigrationSet, CatalogError> {
        let set = self.refresh().await.map_err(catalog_error)?;
        Ok(set.as_ref().clone())
    }

    async fn add(&self, version: &str, sql: &str) -> Result<MigrationSet, CatalogError> {
        let set = AppMigrations::add(self, version, sql)
            .await
            .map_err(catalog_error)?;
        Ok(set.as_ref().clone())
    }
}

fn catalog_error(error: MigrationsError) -> CatalogError {
    match error {
        MigrationsError::Storage(error) => CatalogError::Storage(Box::new(error)),
        MigrationsError::Lint(findings) => CatalogError::Refused {
            message: MigrationsError::Lint(findings.clone()).to_string(),
            findings,
        },
        other => CatalogError::Refused {
            message: other.to_string(),
            findings: Vec::new(),
        },
    }
}
