//! The last drift result of each tenant, kept in the state store so that `migrate
//! status` can count drift without reading every schema again.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use tenancy_core::persistence::{SchemaStep, StorePool, StorePoolOptions, StoreSchema};
use tenancy_core::{DatabaseUrl, TenantId};
use time::OffsetDateTime;

use super::{DriftError, DriftReport, SurveyOutcome, SurveyedTenant};

/// The table, the same on both engines: one row per tenant, replaced by each survey
/// that covers it.
const SCHEMA: StoreSchema = StoreSchema::new(
    "tenancy_drift_checks",
    &[SchemaStep::Sql(
        "CREATE TABLE IF NOT EXISTS tenancy_drift_checks (\
         tenant_id TEXT PRIMARY KEY, version BIGINT, fingerprint TEXT, \
         drifted BOOLEAN NOT NULL, unreachable BOOLEAN NOT NULL, checked_at BIGINT NOT NULL)",
    )],
);

const UPSERT_HEAD: &str = "INSERT INTO tenancy_drift_checks \
    (tenant_id, version, fingerprint, drifted, unreachable, checked_at) VALUES ";
const UPSERT_TAIL: &str = " ON CONFLICT (tenant_id) DO UPDATE SET version = excluded.version, \
    fingerprint = excluded.fingerprint, drifted = excluded.drifted, \
    unreachable = excluded.unreachable, checked_at = excluded.checked_at";
const LOAD: &str = "SELECT tenant_id, version, fingerprint, drifted, unreachable, checked_at \
    FROM tenancy_drift_checks";
/// Rows per statement (6 parameters each, under both engines' limits).
const CHUNK: usize = 500;

/// One tenant's last drift result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DriftRecord {
    /// The tenant.
    pub tenant: TenantId,
    /// Its version when checked (see [`SurveyedTenant::version`]).
    pub version: Option<i64>,
    /// Its schema's fingerprint (hex) when checked; `None` if unreachable.
    pub fingerprint: Option<String>,
    /// Whether it drifted (schema or history).
    pub drifted: bool,
    /// Whether it could not be read.
    pub unreachable: bool,
    /// When the survey finished.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

/// Drift results in the state store (table `tenancy_drift_checks`, under
/// tenancy-core's persistence policy): [`record`](Self::record) after a survey,
/// [`load`](Self::load) to count.
#[derive(Debug, Clone)]
pub struct DriftRecords {
    pool: StorePool,
}

/// A row as stored.
type Row = (String, Option<i64>, Option<String>, bool, bool, i64);

impl DriftRecords {
    /// Opens the store a URL names (`sqlite:FILE`, created if missing, or
    /// `postgres://…`) and creates its table if needed.
    pub async fn open(url: &DatabaseUrl) -> Result<Self, DriftError> {
        let pool = StorePoolOptions::new()
            .create_if_missing(true)
            .open(url)
            .await
            .map_err(storage)?;
        Self::from_pool(pool).await
    }

    /// The store on a pool the host shares with its other stores.
    pub async fn from_pool(pool: StorePool) -> Result<Self, DriftError> {
        match &pool {
            #[cfg(feature = "postgres")]
            StorePool::Postgres(pool) => SCHEMA.apply_postgres(pool).await.map_err(storage)?,
            #[cfg(feature = "sqlite")]
            StorePool::Sqlite(pool) => SCHEMA.apply_sqlite(pool).await.map_err(storage)?,
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported()),
        };
        Ok(Self { pool })
    }

    /// Replaces the records of every tenant `report` surveyed.
    pub async fn record(&self, report: &DriftReport) -> Result<(), DriftError> {
        let at =
            report.checked_at.unix_timestamp() * 1000 + i64::from(report.checked_at.millisecond());
        for chunk in report.tenants().chunks(CHUNK) {
            match &self.pool {
                #[cfg(feature = "postgres")]
                StorePool::Postgres(pool) => upsert(pool, chunk, at, Placeholders::Numbered).await,
                #[cfg(feature = "sqlite")]
                StorePool::Sqlite(pool) => upsert(pool, chunk, at, Placeholders::Anonymous).await,
                #[allow(unreachable_patterns)]
                _ => return Err(unsupported()),
            }
            .map_err(storage)?;
        }
        Ok(())
    }

    /// Every record, of every tenant ever surveyed.
    pub async fn load(&self) -> Result<Vec<DriftRecord>, DriftError> {
        let rows = match &self.pool {
            #[cfg(feature = "postgres")]
            StorePool::Postgres(pool) => load(pool).await,
            #[cfg(feature = "sqlite")]
            StorePool::Sqlite(pool) => load(pool).await,
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported()),
        }
        .map_err(storage)?;
        rows.into_iter().map(record_from_row).collect()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn record_from_row(
    (tenant, version, fingerprint, drifted, unreachable, at): Row,
) -> Result<DriftRecord, DriftError> {
    let tenant = TenantId::new(tenant).map_err(storage)?;
    let checked_at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000).map_err(storage)?;
    Ok(DriftRecord {
        tenant,
        version,
        fingerprint,
        drifted,
        unreachable,
        checked_at,
    })
}

/// How a statement's parameters are written.
#[derive(Debug, Clone, Copy)]
enum Placeholders {
    /// `$1, $2, …` (PostgreSQL).
    #[cfg(feature = "postgres")]
    Numbered,
    /// `?, ?, …` (SQLite, which looks each numbered one up by name: a statement
    /// of thousands of them would spend its time there).
    #[cfg(feature = "sqlite")]
    Anonymous,
}

impl Placeholders {
    /// The placeholder of parameter `n` (from 1).
    fn get(self, n: usize) -> String {
        match self {
            #[cfg(feature = "postgres")]
            Self::Numbered => format!("${n}"),
            #[cfg(feature = "sqlite")]
            Self::Anonymous => {
                let _ = n;
                "?".to_owned()
            }
        }
    }
}

async fn upsert<DB>(
    pool: &Pool<DB>,
    tenants: &[SurveyedTenant],
    at: i64,
    placeholders: Placeholders,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    if tenants.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..tenants.len())
        .map(|i| {
            let p: Vec<String> = (1..=6).map(|c| placeholders.get(i * 6 + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    let sql = format!("{UPSERT_HEAD}{}{UPSERT_TAIL}", rows.join(", "));
    let mut query = sqlx::query::<DB>(&sql);
    for tenant in tenants {
        query = query
            .bind(tenant.tenant.as_str().to_owned())
            .bind(tenant.version)
            .bind(tenant.fingerprint.map(|f| f.to_string()))
            .bind(tenant.outcome == SurveyOutcome::Drifted)
            .bind(tenant.outcome == SurveyOutcome::Unreachable)
            .bind(at);
    }
    query.execute(pool).await.map(drop)
}

async fn load<DB>(pool: &Pool<DB>) -> Result<Vec<Row>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<i64>: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    sqlx::query_as::<DB, Row>(LOAD).fetch_all(pool).await
}

fn storage(error: impl Into<tenancy_core::BoxError>) -> DriftError {
    DriftError::Store(error.into())
}

fn unsupported() -> DriftError {
    storage("this build of tenant-migrate does not support the state store's database engine; enable its `sqlite` or `postgres` feature")
}
