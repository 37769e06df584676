#[cfg(feature = "postgres")]
use sqlx::postgres::{PgPool, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{Sqlite, SqlitePool};
use sqlx::{Database, Pool, Transaction};

/// The table that records, per store, how many of its schema steps were applied.
const VERSIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS tenancy_schema_versions (\
    component TEXT PRIMARY KEY NOT NULL, \
    version BIGINT NOT NULL)";

/// One change to a store's tables, applied once per database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaStep {
    /// Statements run as they are. The first step of a store creates its tables
    /// with `CREATE TABLE IF NOT EXISTS`, so that databases created before schema
    /// versions were recorded are adopted as they are.
    Sql(&'static str),
    /// A column added after a table's first release. Skipped when the column is
    /// already there (added by hand, or by a release that predates the record),
    /// so it is safe on every database; `backfill` then runs only if it was added.
    AddColumn {
        /// The table.
        table: &'static str,
        /// The new column.
        column: &'static str,
        /// Its type and constraints, as in `ALTER TABLE … ADD COLUMN column definition`.
        definition: &'static str,
        /// Statements that bring existing rows in line with the new column.
        backfill: Option<&'static str>,
    },
}

/// A store's tables as an ordered list of [`SchemaStep`]s: step *n* takes the store
/// from version *n − 1* to *n*. Steps are only ever appended; one that shipped is
/// never edited.
#[derive(Debug, Clone, Copy)]
pub struct StoreSchema {
    component: &'static str,
    steps: &'static [SchemaStep],
}

/// What bringing a store's tables up to date did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaUpgrade {
    /// The version found (0 for a database the store had never seen).
    pub from: i64,
    /// The version now.
    pub to: i64,
}

/// Why a store's tables could not be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The database failed.
    #[error("could not create or upgrade the tables of {component}: {source}; check that the database is reachable and that its user may create tables")]
    Database {
        /// The store.
        component: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database was upgraded by a newer release than this one.
    #[error("the tables of {component} are at schema version {found}, newer than the {known} this release knows; run a release at least as new as the one that upgraded them")]
    TooNew {
        /// The store.
        component: &'static str,
        /// The version in the database.
        found: i64,
        /// The newest version this release knows.
        known: i64,
    },
}

impl StoreSchema {
    /// A store's schema, named `component` in `tenancy_schema_versions` (keep the
    /// name stable: it is how the store recognises its tables).
    pub const fn new(component: &'static str, steps: &'static [SchemaStep]) -> Self {
        Self { component, steps }
    }

    /// The store's name in `tenancy_schema_versions`.
    pub fn component(&self) -> &'static str {
        self.component
    }

    /// The version this release brings tables to: the number of steps.
    pub fn latest(&self) -> i64 {
        i64::try_from(self.steps.len()).unwrap_or(i64::MAX)
    }

    /// Brings the store's tables in a SQLite database up to date.
    #[cfg(feature = "sqlite")]
    pub async fn apply_sqlite(&self, pool: &SqlitePool) -> Result<SchemaUpgrade, SchemaError> {
        self.apply::<Sqlite>(pool).await
    }

    /// Brings the store's tables in a PostgreSQL database up to date.
    #[cfg(feature = "postgres")]
    pub async fn apply_postgres(&self, pool: &PgPool) -> Result<SchemaUpgrade, SchemaError> {
        self.apply::<Postgres>(pool).await
    }

    async fn apply<D>(&self, pool: &Pool<D>) -> Result<SchemaUpgrade, SchemaError>
    where
        D: Dialect,
        for<'c> &'c mut D::Connection: sqlx::Executor<'c, Database = D>,
        for<'q> D::Arguments<'q>: sqlx::IntoArguments<'q, D>,
        for<'q> &'q str: sqlx::Encode<'q, D> + sqlx::Type<D>,
        for<'q> i64: sqlx::Encode<'q, D> + sqlx::Type<D>,
        for<'r> i64: sqlx::Decode<'r, D>,
        usize: sqlx::ColumnIndex<D::Row>,
    {
        let component = self.component;
        let database = |source| SchemaError::Database { component, source };
        let mut tx = D::begin_exclusive(pool).await.map_err(database)?;
        sqlx::raw_sql(VERSIONS_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        let from: i64 = sqlx::query_scalar(SELECT_VERSION)
            .bind(component)
            .fetch_one(&mut *tx)
            .await
            .map_err(database)?;
        let known = self.latest();
        if from > known {
            return Err(SchemaError::TooNew {
                component,
                found: from,
                known,
            });
        }
        for step in self.steps.iter().skip(usize::try_from(from).unwrap_or(0)) {
            let (sql, backfill) = match *step {
                SchemaStep::Sql(sql) => (Some(sql.to_owned()), None),
                SchemaStep::AddColumn {
                    table,
                    column,
                    definition,
                    backfill,
                } => {
                    let present: i64 = sqlx::query_scalar(D::COLUMN_COUNT)
                        .bind(table)
                        .bind(column)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(database)?;
                    // A column already there (added by hand, or by a release that
                    // predates the record) is neither added nor backfilled again.
                    let add = format!("ALTER TABLE {table} ADD COLUMN {column} {definition}");
                    (
                        Some(add).filter(|_| present == 0),
                        backfill.filter(|_| present == 0),
                    )
                }
            };
            for sql in sql.iter().map(String::as_str).chain(backfill) {
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(database)?;
            }
        }
        if from < known {
            sqlx::query(UPSERT_VERSION)
                .bind(component)
                .bind(known)
                .execute(&mut *tx)
                .await
                .map_err(database)?;
            tracing::info!(component, from, to = known, "upgraded store tables");
        }
        tx.commit().await.map_err(database)?;
        Ok(SchemaUpgrade { from, to: known })
    }
}

/// What differs between the engines in a schema upgrade.
trait Dialect: Database {
    /// A transaction that no other upgrade of any store runs beside.
    async fn begin_exclusive(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, sqlx::Error>;
    /// The query telling whether table `$1` has column `$2` (one row, one integer).
    const COLUMN_COUNT: &'static str;
}

const SELECT_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) FROM tenancy_schema_versions WHERE component = $1";
const UPSERT_VERSION: &str = "INSERT INTO tenancy_schema_versions (component, version) \
    VALUES ($1, $2) ON CONFLICT (component) DO UPDATE SET version = excluded.version";

#[cfg(feature = "sqlite")]
impl Dialect for Sqlite {
    async fn begin_exclusive(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, sqlx::Error> {
        // The write lock from the first statement: upgrades queue on the busy timeout.
        pool.begin_with("BEGIN IMMEDIATE").await
    }
    const COLUMN_COUNT: &'static str = "SELECT count(*) FROM pragma_table_info($1) WHERE name = $2";
}

#[cfg(feature = "postgres")]
impl Dialect for Postgres {
    async fn begin_exclusive(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        // Concurrent first starts would race on the catalog (CREATE … IF NOT EXISTS
        // is not atomic) and apply steps twice; one upgrade at a time, all stores.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(super::advisory_key("schema"))
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
    const COLUMN_COUNT: &'static str = "SELECT count(*) FROM information_schema.columns \
        WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2";
}
