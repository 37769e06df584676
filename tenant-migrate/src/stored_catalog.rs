//! A migration catalog kept in the control plane: the migrations a service ships
//! with, plus those operators add at run time.

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use tenancy_core::persistence::{SchemaStep, StorePool, StoreSchema};
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport, SchemaMigrator, TenantId};

use crate::catalog::with_migration;
use crate::{
    lint, CatalogError, Migration, MigrationCatalog, MigrationSet, Severity, TenantMigrator,
};

/// The catalog's table, the same on both engines.
const SCHEMA: StoreSchema = StoreSchema::new(
    "tenancy_admin_migrations",
    &[
        SchemaStep::Sql(
            "CREATE TABLE IF NOT EXISTS tenancy_admin_migrations (\
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, sql TEXT NOT NULL)",
        ),
        // When a tenant onboarded through the catalog first applied the migration
        // (Unix seconds): from then on it is never replaced nor withdrawn.
        SchemaStep::AddColumn {
            table: "tenancy_admin_migrations",
            column: "applied_at",
            definition: "BIGINT",
            backfill: None,
        },
    ],
);

const LOAD: &str = "SELECT name, sql FROM tenancy_admin_migrations ORDER BY version";
/// Adds a migration only if it is newer than every stored one (another request
/// may have stored one since the check).
const INSERT: &str = "INSERT INTO tenancy_admin_migrations (version, name, sql) \
    SELECT $1, $2, $3 WHERE NOT EXISTS \
    (SELECT 1 FROM tenancy_admin_migrations WHERE version >= $1)";
/// On PostgreSQL, what makes the catalog's writes take turns (reads go on): a
/// check and its write are one statement, but two statements of concurrent
/// transactions do not see each other's new rows.
#[cfg(feature = "postgres")]
const SERIALIZE: &str = "LOCK TABLE tenancy_admin_migrations IN SHARE ROW EXCLUSIVE MODE";
/// The latest stored migration: version and whether a tenant applied it.
const LATEST: &str = "SELECT version, applied_at IS NOT NULL FROM tenancy_admin_migrations \
    ORDER BY version DESC LIMIT 1";
const REPLACE: &str = "UPDATE tenancy_admin_migrations SET name = $2, sql = $3 \
    WHERE version = $1 AND applied_at IS NULL \
    AND NOT EXISTS (SELECT 1 FROM tenancy_admin_migrations WHERE version > $1)";
const WITHDRAW: &str = "DELETE FROM tenancy_admin_migrations \
    WHERE version = $1 AND applied_at IS NULL \
    AND NOT EXISTS (SELECT 1 FROM tenancy_admin_migrations WHERE version > $1)";
const MARK_APPLIED: &str = "UPDATE tenancy_admin_migrations SET applied_at = $2 \
    WHERE version <= $1 AND applied_at IS NULL";

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

    /// Runs one of the writing statements with (version, name, sql) or (version,
    /// time) parameters; returns the rows it changed.
    async fn write(&self, sql: &'static str, params: Params<'_>) -> Result<u64, CatalogError> {
        match &self.pool {
            #[cfg(feature = "postgres")]
            StorePool::Postgres(pool) => write_in_turn(pool, sql, params).await,
            #[cfg(feature = "sqlite")]
            StorePool::Sqlite(pool) => write(pool, sql, params).await.map(|r| r.rows_affected()),
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported()),
        }
        .map_err(storage)
    }

    /// The latest migration added at run time, and whether a tenant applied it.
    async fn latest_stored(&self) -> Result<Option<(i64, bool)>, CatalogError> {
        match &self.pool {
            #[cfg(feature = "postgres")]
            StorePool::Postgres(pool) => latest(pool).await,
            #[cfg(feature = "sqlite")]
            StorePool::Sqlite(pool) => latest(pool).await,
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported()),
        }
        .map_err(storage)
    }

    /// Checks that `version` is the latest migration added at run time and that no
    /// tenant onboarded through this catalog applied it.
    async fn check_unapplied(&self, version: i64) -> Result<(), CatalogError> {
        match self.latest_stored().await? {
            Some((latest, false)) if latest == version => Ok(()),
            Some((latest, true)) if latest == version => Err(CatalogError::Applied(format!(
                "migration {version} was applied by a tenant onboarded since it was added; fix it forward with a new migration"
            ))),
            _ => Err(refused(format!(
                "migration {version} is not the latest migration added at run time; only that one can be replaced or withdrawn"
            ))),
        }
    }

    /// Records that tenants now have every migration up to `version` (what
    /// [`SchemaMigrator::migrate`] does after onboarding a tenant).
    pub async fn mark_applied(&self, version: i64) -> Result<(), CatalogError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.write(MARK_APPLIED, Params::Applied { version, at: now })
            .await
            .map(drop)
    }
}

/// The parameters of a writing statement.
#[derive(Debug, Clone, Copy)]
enum Params<'a> {
    Migration {
        version: i64,
        name: &'a str,
        sql: &'a str,
    },
    Version(i64),
    Applied {
        version: i64,
        at: i64,
    },
}

/// Refuses SQL that holds no statement.
pub(crate) fn check_sql(sql: &str) -> Result<(), CatalogError> {
    let code = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<String>();
    if code.trim().trim_matches(';').trim().is_empty() {
        return Err(refused(
            "migration_sql is empty; send the SQL of the migration",
        ));
    }
    Ok(())
}

/// Refuses a migration that is not newer than every migration of `current`.
fn check_newer(current: &MigrationSet, migration: &Migration) -> Result<(), CatalogError> {
    match current
        .latest_version()
        .filter(|latest| migration.version() <= *latest)
    {
        Some(latest) => Err(refused(format!(
            "version {} is not newer than the latest migration {latest}; give the migration a later version, e.g. a timestamp such as 20240127120000_add_new_field",
            migration.version()
        ))),
        None => Ok(()),
    }
}

/// Refuses SQL with lint errors (they break running code or block writes).
fn check_lint(sql: &str) -> Result<(), CatalogError> {
    let blocking: Vec<_> = lint(sql)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if blocking.is_empty() {
        return Ok(());
    }
    let summary = blocking
        .iter()
        .map(|f| format!("line {}: {} ({})", f.line, f.rule, f.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(CatalogError::Refused {
        message: format!("the migration is not backward compatible: {summary}"),
        findings: blocking,
    })
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
        check_sql(sql)?;
        let migration = Migration::parse_adhoc(version, sql).map_err(refused)?;
        let current = self.refresh().await?;
        check_newer(&current, &migration)?;
        check_lint(sql)?;
        let params = Params::Migration {
            version: migration.version(),
            name: version,
            sql,
        };
        if self.write(INSERT, params).await? == 0 {
            return Err(refused(format!(
                "version {} is not newer than a migration stored meanwhile; give the migration a later version",
                migration.version()
            )));
        }
        Ok(self.refresh().await?.as_ref().clone())
    }

    /// Makes the checks of [`add`](MigrationCatalog::add), or of
    /// [`replace`](MigrationCatalog::replace) for the latest version, and returns
    /// the set either would give; stores nothing.
    async fn propose(&self, version: &str, sql: &str) -> Result<MigrationSet, CatalogError> {
        check_sql(sql)?;
        let migration = Migration::parse_adhoc(version, sql).map_err(refused)?;
        let current = self.refresh().await?;
        if current.latest_version() == Some(migration.version()) {
            self.check_unapplied(migration.version()).await?;
        } else {
            check_newer(&current, &migration)?;
        }
        check_lint(sql)?;
        with_migration(&current, version, sql)
    }

    /// Replaces the latest run-time migration, if no tenant onboarded through this
    /// catalog applied it (the caller checks the tenants its rollouts reached).
    async fn replace(&self, version: &str, sql: &str) -> Result<MigrationSet, CatalogError> {
        check_sql(sql)?;
        let migration = Migration::parse_adhoc(version, sql).map_err(refused)?;
        self.check_unapplied(migration.version()).await?;
        check_lint(sql)?;
        let params = Params::Migration {
            version: migration.version(),
            name: version,
            sql,
        };
        if self.write(REPLACE, params).await? == 0 {
            return Err(CatalogError::Applied(format!(
                "migration {} was applied or followed by a newer one meanwhile; fix it forward with a new migration",
                migration.version()
            )));
        }
        Ok(self.refresh().await?.as_ref().clone())
    }

    /// Withdraws the latest run-time migration, if no tenant onboarded through this
    /// catalog applied it (the caller checks the tenants its rollouts reached).
    async fn withdraw(&self, version: i64) -> Result<MigrationSet, CatalogError> {
        self.check_unapplied(version).await?;
        if self.write(WITHDRAW, Params::Version(version)).await? == 0 {
            return Err(CatalogError::Applied(format!(
                "migration {version} was applied or followed by a newer one meanwhile; fix it forward with a new migration"
            )));
        }
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
        let report = TenantMigrator::new(set).migrate(tenant, database).await?;
        if let Some(version) = report.to_version {
            self.mark_applied(version)
                .await
                .map_err(BackendError::transient)?;
        }
        Ok(report)
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

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
async fn write<DB>(
    pool: &Pool<DB>,
    statement: &'static str,
    params: Params<'_>,
) -> Result<DB::QueryResult, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let query = sqlx::query::<DB>(statement);
    let query = match params {
        Params::Migration { version, name, sql } => query.bind(version).bind(name).bind(sql),
        Params::Version(version) => query.bind(version),
        Params::Applied { version, at } => query.bind(version).bind(at),
    };
    query.execute(pool).await
}

/// `write` in a transaction that holds the catalog's write lock first.
#[cfg(feature = "postgres")]
async fn write_in_turn(
    pool: &sqlx::PgPool,
    statement: &'static str,
    params: Params<'_>,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(SERIALIZE).execute(&mut *tx).await?;
    let query = sqlx::query(statement);
    let query = match params {
        Params::Migration { version, name, sql } => query.bind(version).bind(name).bind(sql),
        Params::Version(version) => query.bind(version),
        Params::Applied { version, at } => query.bind(version).bind(at),
    };
    let done = query.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

async fn latest<DB>(pool: &Pool<DB>) -> Result<Option<(i64, bool)>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    sqlx::query_as::<DB, (i64, bool)>(LATEST)
        .fetch_optional(pool)
        .await
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
