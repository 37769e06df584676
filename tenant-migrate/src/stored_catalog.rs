//! A migration catalog kept in the control plane: the migrations a service ships
//! with, plus those operators add at run time.

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use tenancy_core::persistence::{SchemaStep, StorePool, StoreSchema};
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport, SchemaMigrator, TenantId};

use crate::{
    lint, CatalogError, Migration, MigrationCatalog, MigrationSet, Severity, TenantMigrator,
};

/// The catalog's table, the same on both engines.
const SCHEMA: StoreSchema = StoreSchema::new(
    "tenancy_admin_migrations",
    &[SchemaStep::Sql(
        "CREATE TABLE IF NOT EXISTS tenancy_admin_migrations (\
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, sql TEXT NOT NULL)",
    )],
);

const LOAD: &str = "SELECT name, sql FROM tenancy_admin_migrations ORDER BY version";
const INSERT: &str =
    "INSERT INTO tenancy_admin_migrations (version, name, sql) VALUES ($1, $2, $3)";

/// A [`MigrationCatalog`] whose run-time additions live in the control-plane
/// database (table `tenancy_admin_migrations`), so that every server process, and
/// every tenant onboarded later, gets them. It is also a [`SchemaMigrator`]: each
/// new tenant is brought to the whole current set.
///
/// ```no_run
/// use tenancy_core::persistence::StorePoolOptions;
/// use tenant_migrate::{MigrationCatalog, MigrationSet, StoredCatalog};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = StorePoolOptions::new().create_if_missing(true).open(&"sqlite:control.db".parse()?).await?;
/// let catalog = StoredCatalog::open(MigrationSet::from_dir("migrations")?, pool).await?;
/// let set = catalog.add("20240127120000_add_new_field", "ALTER TABLE items ADD COLUMN new_field TEXT;").await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StoredCatalog {
    base: MigrationSet,
    pool: StorePool,
    current: RwLock<Arc<MigrationSet>>,
}

impl StoredCatalog {
    /// The catalog of `base` (the migrations shipped with the service) plus those
    /// stored in the database of `pool`, whose table is created or upgraded.
    pub async fn open(base: MigrationSet, pool: StorePool) -> Result<Self, CatalogError> {
        match &pool {
            #[cfg(feature = "postgres")]
            StorePool::Postgres(pool) => SCHEMA.apply_postgres(pool).await.map_err(storage)?,
            #[cfg(feature = "sqlite")]
            StorePool::Sqlite(pool) => SCHEMA.apply_sqlite(pool).await.map_err(storage)?,
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported()),
        };
        let catalog = Self {
            current: RwLock::new(Arc::new(base.clone())),
            base,
            pool,
        };
        catalog.refresh().await?;
        Ok(catalog)
    }

    /// The set as last read, without a round trip.
    pub fn last_read(&self) -> Arc<MigrationSet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the set again: another process may have added a migration since.
    pub async fn refresh(&self) -> Result<Arc<MigrationSet>, CatalogError> {
        let stored = match &self.pool {
            #[cfg(feature = "postgres")]
            StorePool::Postgres(pool) => load(pool).await,
            #[cfg(feature = "sqlite")]
            StorePool::Sqlite(pool) => load(pool).await,
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported()),
        }
        .map_err(storage)?;
        let builder = self
            .base
            .iter()
            .fold(MigrationSet::builder(), |b, m| b.migration(m.clone()));
        let set = stored
            .into_iter()
            .fold(builder, |b, (name, sql)| b.adhoc(&name, sql))
            .build()
            .map_err(refused)?;
        let set = Arc::new(set);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = set.clone();
        Ok(set)
    }

    async fn store(
        &self,
        migration: &Migration,
        name: &str,
        sql: &str,
    ) -> Result<(), CatalogError> {
        let version = migration.version();
        match &self.pool {
            #[cfg(feature = "postgres")]
            StorePool::Postgres(pool) => insert(pool, version, name, sql).await,
            #[cfg(feature = "sqlite")]
            StorePool::Sqlite(pool) => insert(pool, version, name, sql).await,
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported()),
        }
        .map_err(storage)
    }
}

#[async_trait]
impl MigrationCatalog for StoredCatalog {
    async fn current(&self) -> Result<MigrationSet, CatalogError> {
        Ok(self.refresh().await?.as_ref().clone())
    }

    /// Validates `sql` as migration `version` (like `20240127_add_new_field`), lints
    /// it (a finding of severity error refuses it), requires it to be newer than
    /// every migration of the set, and stores it.
    async fn add(&self, version: &str, sql: &str) -> Result<MigrationSet, CatalogError> {
        let migration = Migration::parse_adhoc(version, sql).map_err(refused)?;
        let current = self.refresh().await?;
        if let Some(latest) = current
            .latest_version()
            .filter(|latest| migration.version() <= *latest)
        {
            return Err(refused(format!(
                "version {} is not newer than the latest migration {latest}; give the migration a later version, e.g. a timestamp such as 20240127120000_add_new_field",
                migration.version()
            )));
        }
        let blocking: Vec<_> = lint(sql)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        if !blocking.is_empty() {
            let summary = blocking
                .iter()
                .map(|f| format!("line {}: {} ({})", f.line, f.rule, f.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(CatalogError::Refused {
                message: format!("the migration is not backward compatible: {summary}"),
                findings: blocking,
            });
        }
        self.store(&migration, version, sql).await?;
        Ok(self.refresh().await?.as_ref().clone())
    }
}

#[async_trait]
impl SchemaMigrator for StoredCatalog {
    async fn migrate(
        &self,
        tenant: &TenantId,
        database: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        let set = self.refresh().await.map_err(BackendError::transient)?;
        TenantMigrator::new(set).migrate(tenant, database).await
    }
}

async fn load<DB>(pool: &Pool<DB>) -> Result<Vec<(String, String)>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    sqlx::query_as::<DB, (String, String)>(LOAD)
        .fetch_all(pool)
        .await
}

async fn insert<DB>(pool: &Pool<DB>, version: i64, name: &str, sql: &str) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(INSERT)
        .bind(version)
        .bind(name)
        .bind(sql)
        .execute(pool)
        .await
        .map(drop)
}

fn storage(error: impl Into<tenancy_core::BoxError>) -> CatalogError {
    CatalogError::Storage(error.into())
}

fn refused(error: impl ToString) -> CatalogError {
    CatalogError::Refused {
        message: error.to_string(),
        findings: Vec::new(),
    }
}

fn unsupported() -> CatalogError {
    storage("this build of tenant-migrate does not support the control plane's database engine; enable its `sqlite` or `postgres` feature")
}
