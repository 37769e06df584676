//! The rollout state store over either SQL engine: the statements are written once
//! (`sql.rs`), the code that runs them once (here); each engine adds only how it
//! opens a writing transaction and how it inserts a new rollout's tenants.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type,
};
use tenancy_core::TenantId;

use super::rows::{
    claim_from_row, parse_tenant_id, record_from_row, rollback_floor, strategy_json,
    tenant_from_row, to_u64, waves_from_rows, ClaimRow, ProgressRow, RecordRow, TenantRow,
};
use super::sql::{claim_status, Statements};
use super::{
    ClaimRequest, ClaimedTenant, RolloutError, RolloutKey, RolloutPlan, RolloutRecord,
    RolloutStatus, RolloutStore, Strategy, TenantOutcome, TenantRecord, TenantState, VersionHolder,
    WaveProgress,
};
use crate::SchemaVersion;

mod sealed {
    pub trait Sealed {}
}

/// A SQL engine the rollout state store runs on: PostgreSQL or SQLite (sealed).
pub trait RolloutEngine: Database + sealed::Sealed {
    // The engine's statements. (Sealed: no other crate can implement or call it.)
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn statements() -> &'static Statements;

    /// How many rows a statement changed.
    #[doc(hidden)]
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// A transaction holding what `resume` needs (SQLite: the write lock).
    #[doc(hidden)]
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// Inserts tenants of a rollout (`pending`); returns how many were new.
    #[doc(hidden)]
    fn insert_tenants<'t>(
        tx: &'t mut Transaction<'static, Self>,
        rollout_id: i64,
        tenants: &'t [(&'t str, i64, i64)],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 't;

    /// Inserts the rollout's row (`tenants` its size); `None` when an open rollout
    /// with this key exists.
    #[doc(hidden)]
    fn insert_rollout<'t>(
        tx: &'t mut Transaction<'static, Self>,
        key: &'t RolloutKey,
        strategy: &'t str,
        tenants: i64,
    ) -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send + 't;
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}
#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

/// The rollout state store on a SQL database; see its two forms,
/// [`PostgresRolloutStore`](super::PostgresRolloutStore) and
/// [`SqliteRolloutStore`](super::SqliteRolloutStore).
pub struct SqlRolloutStore<D: RolloutEngine> {
    pub(super) pool: Pool<D>,
}

impl<D: RolloutEngine> Clone for SqlRolloutStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<D: RolloutEngine> fmt::Debug for SqlRolloutStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRolloutStore")
            .field("engine", &D::NAME)
            .finish_non_exhaustive()
    }
}

impl<D: RolloutEngine> SqlRolloutStore<D> {
    /// The store's pool.
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }
}

#[async_trait]
impl<D> RolloutStore for SqlRolloutStore<D>
where
    D: RolloutEngine,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> Option<i64>: Encode<'q, D> + Type<D>,
    for<'q> bool: Encode<'q, D> + Type<D>,
    for<'q> f64: Encode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
    for<'r> String: Decode<'r, D> + Type<D>,
    for<'r> Option<String>: Decode<'r, D> + Type<D>,
    for<'r> i64: Decode<'r, D>,
    for<'r> Option<i64>: Decode<'r, D>,
    for<'r> bool: Decode<'r, D>,
    for<'r> Option<bool>: Decode<'r, D> + Type<D>,
    usize: ColumnIndex<D::Row>,
{
    async fn create_or_join(
        &self,
        key: &RolloutKey,
        strategy: &Strategy,
        plan: &RolloutPlan,
    ) -> Result<RolloutRecord, RolloutError> {
        // The loser of a race finds the winner's rollout; a rollout that finished in
        // between (rare) lets the next attempt create a fresh one.
        for _ in 0..3 {
            if let Some(id) = try_create(&self.pool, key, strategy, plan).await? {
                return record(&self.pool, id).await;
            }
            if let Some(open) = find(&self.pool, key, true).await? {
                return Ok(open);
            }
        }
        Err(RolloutError::CorruptState(
            "a rollout with this key keeps appearing and finishing; retry".into(),
        ))
    }

    async fn add_tenants(
        &self,
        rollout_id: i64,
        tenants: &[(TenantId, u32)],
    ) -> Result<u64, RolloutError> {
        let sql = D::statements();
        let mut tx = D::begin_write(&self.pool).await?;
        let last: i64 = sqlx::query_scalar(&sql.last_position)
            .bind(rollout_id)
            .fetch_one(&mut *tx)
            .await?;
        let rows: Vec<(&str, i64, i64)> = tenants
            .iter()
            .zip(last.saturating_add(1)..)
            .map(|((id, wave), position)| (id.as_str(), i64::from(*wave), position))
            .collect();
        let added = D::insert_tenants(&mut tx, rollout_id, &rows).await?;
        if added > 0 {
            sqlx::query(&sql.reopen)
                .bind(rollout_id)
                .bind(i64::try_from(added).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn claim(
        &self,
        rollout_id: i64,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<ClaimedTenant>, RolloutError> {
        // One statement, atomic on its own: on PostgreSQL the rows it picks are
        // locked and other runners skip them; on SQLite a writing statement takes
        // the write lock before it reads, so two processes never claim one row.
        let rows: Vec<ClaimRow> = sqlx::query_as(D::statements().claim(request.phase))
            .bind(rollout_id)
            .bind(request.owner)
            .bind(i64::from(request.max_wave))
            .bind(i64::from(request.limit))
            .bind(request.lease.as_secs_f64())
            .bind(claim_status(request.phase))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(claim_from_row).collect()
    }

    async fn find_open(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError> {
        find(&self.pool, key, true).await
    }

    async fn find_latest(&self, key: &RolloutKey) -> Result<Option<RolloutRecord>, RolloutError> {
        find(&self.pool, key, false).await
    }

    async fn resume(&self, rollout_id: i64) -> Result<RolloutRecord, RolloutError> {
        let sql = D::statements();
        let mut tx = D::begin_write(&self.pool).await?;
        let status: String = sqlx::query_scalar(&sql.status_for_update)
            .bind(rollout_id)
            .fetch_one(&mut *tx)
            .await?;
        match status.parse::<RolloutStatus>()? {
            RolloutStatus::RollingBack => return Err(RolloutError::RollingBack { rollout_id }),
            RolloutStatus::Active | RolloutStatus::Halted => {
                let busy: bool = sqlx::query_scalar(&sql.busy)
                    .bind(rollout_id)
                    .fetch_one(&mut *tx)
                    .await?;
                if status == "halted" || !busy {
                    sqlx::query(sql.retry_failed)
                        .bind(rollout_id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(&sql.reactivate)
                    .bind(rollout_id)
                    .execute(&mut *tx)
                    .await?;
            }
            RolloutStatus::Completed | RolloutStatus::RolledBack => {}
        }
        tx.commit().await?;
        record(&self.pool, rollout_id).await
    }

    async fn record_start(
        &self,
        rollout_id: i64,
        tenant: &TenantId,
        owner: &str,
        from_version: Option<i64>,
    ) -> Result<bool, RolloutError> {
        let done = sqlx::query(&D::statements().record_start)
            .bind(rollout_id)
            .bind(tenant.as_str())
            .bind(owner)
            .bind(from_version)
            .execute(&self.pool)
            .await?;
        Ok(D::rows_affected(&done) == 1)
    }

    async fn record_outcome(
        &self,
        rollout_id: i64,
        tenant: &TenantId,
        owner: &str,
        outcome: &TenantOutcome,
    ) -> Result<bool, RolloutError> {
        let done = sqlx::query(&D::statements().record_outcome)
            .bind(rollout_id)
            .bind(tenant.as_str())
            .bind(owner)
            .bind(outcome.state.as_str())
            .bind(outcome.version.and_then(SchemaVersion::latest))
            .bind(outcome.migrated)
            .bind(outcome.error.as_deref())
            .bind(outcome.version.is_some())
            .execute(&self.pool)
            .await?;
        Ok(D::rows_affected(&done) == 1)
    }

    async fn renew_leases(
        &self,
        rollout_id: i64,
        owner: &str,
        lease: Duration,
    ) -> Result<u64, RolloutError> {
        let done = sqlx::query(&D::statements().renew)
            .bind(rollout_id)
            .bind(owner)
            .bind(lease.as_secs_f64())
            .execute(&self.pool)
            .await?;
        Ok(D::rows_affected(&done))
    }

    async fn progress(
        &self,
        rollout_id: i64,
    ) -> Result<(RolloutRecord, Vec<WaveProgress>), RolloutError> {
        let record = record(&self.pool, rollout_id).await?;
        let rows: Vec<ProgressRow> = sqlx::query_as(&D::statements().progress)
            .bind(rollout_id)
            .fetch_all(&self.pool)
            .await?;
        Ok((record, waves_from_rows(rows)?))
    }

    async fn set_status(
        &self,
        rollout_id: i64,
        status: RolloutStatus,
        reason: Option<&str>,
    ) -> Result<(), RolloutError> {
        sqlx::query(&D::statements().set_status(status))
            .bind(rollout_id)
            .bind(status.as_str())
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn tenants(
        &self,
        rollout_id: i64,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        let rows: Vec<TenantRow> = sqlx::query_as(&D::statements().tenants)
            .bind(rollout_id)
            .bind(after.map_or(-1, i64::from))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    async fn tenant_rows(
        &self,
        rollout_id: i64,
        tenants: &[TenantId],
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
        let ids = serde_json::to_string(&ids).map_err(RolloutError::store)?;
        let rows: Vec<TenantRow> = sqlx::query_as(&D::statements().tenant_rows)
            .bind(rollout_id)
            .bind(ids.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    async fn tenants_in_state(
        &self,
        rollout_id: i64,
        state: TenantState,
        limit: u32,
    ) -> Result<Vec<(u32, TenantRecord)>, RolloutError> {
        let rows: Vec<TenantRow> = sqlx::query_as(&D::statements().tenants_in_state)
            .bind(rollout_id)
            .bind(state.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    async fn version_counts(
        &self,
        rollout_id: i64,
    ) -> Result<Vec<(Option<i64>, u64)>, RolloutError> {
        let rows: Vec<(Option<i64>, i64)> = sqlx::query_as(D::statements().version_counts)
            .bind(rollout_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(v, n)| (v, to_u64(n))).collect())
    }

    async fn rollback_floor(&self, rollout_id: i64) -> Result<Option<SchemaVersion>, RolloutError> {
        let (any, from_empty, lowest): (Option<bool>, Option<bool>, Option<i64>) =
            sqlx::query_as(&D::statements().rollback_floor)
                .bind(rollout_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(rollback_floor(any, from_empty, lowest))
    }

    async fn tenants_holding(
        &self,
        version: i64,
        limit: u32,
    ) -> Result<Option<Vec<VersionHolder>>, RolloutError> {
        let rows: Vec<(String, Option<i64>, Option<bool>)> =
            sqlx::query_as(&D::statements().holders)
                .bind(version)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        let holders = rows
            .into_iter()
            .map(|(tenant, version, in_flight)| {
                Ok(VersionHolder {
                    tenant_id: parse_tenant_id(tenant)?,
                    version,
                    in_flight: in_flight.unwrap_or(false),
                })
            })
            .collect::<Result<_, RolloutError>>()?;
        Ok(Some(holders))
    }
}

/// Records the rollout and its tenants in one transaction; `None` when an open
/// rollout with this key exists.
async fn try_create<D: RolloutEngine>(
    pool: &Pool<D>,
    key: &RolloutKey,
    strategy: &Strategy,
    plan: &RolloutPlan,
) -> Result<Option<i64>, RolloutError> {
    let strategy = strategy_json(strategy)?;
    let count = i64::try_from(plan.len()).unwrap_or(i64::MAX);
    let mut tx = D::begin_write(pool).await?;
    let Some(id) = D::insert_rollout(&mut tx, key, &strategy, count).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    let rows: Vec<(&str, i64, i64)> = plan
        .tenants()
        .iter()
        .map(|t| (t.id.as_str(), i64::from(t.wave), i64::from(t.position)))
        .collect();
    D::insert_tenants(&mut tx, id, &rows).await?;
    tx.commit().await?;
    Ok(Some(id))
}

async fn record<D>(pool: &Pool<D>, rollout_id: i64) -> Result<RolloutRecord, RolloutError>
where
    D: RolloutEngine,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'r> String: Decode<'r, D> + Type<D>,
    for<'r> Option<String>: Decode<'r, D> + Type<D>,
    for<'r> i64: Decode<'r, D>,
    usize: ColumnIndex<D::Row>,
{
    let row: RecordRow = sqlx::query_as(&D::statements().record)
        .bind(rollout_id)
        .fetch_one(pool)
        .await?;
    record_from_row(row)
}

async fn find<D>(
    pool: &Pool<D>,
    key: &RolloutKey,
    open_only: bool,
) -> Result<Option<RolloutRecord>, RolloutError>
where
    D: RolloutEngine,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> bool: Encode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'r> String: Decode<'r, D> + Type<D>,
    for<'r> Option<String>: Decode<'r, D> + Type<D>,
    for<'r> i64: Decode<'r, D>,
    usize: ColumnIndex<D::Row>,
{
    let row: Option<RecordRow> = sqlx::query_as(&D::statements().find)
        .bind(key.target_version)
        .bind(key.set_checksum.as_str())
        .bind(open_only)
        .fetch_optional(pool)
        .await?;
    row.map(record_from_row).transpose()
}
