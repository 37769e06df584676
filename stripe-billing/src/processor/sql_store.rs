//! The billing store over either SQL engine: the logic written once, each engine
//! adding its statements and how it serialises a tenant's changes.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;

use async_trait::async_trait;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type,
};
use tenancy_core::TenantId;
use time::OffsetDateTime;

use super::store::codec;
use super::{
    BillingStore, ParkedEvent, PendingEffect, ReconcileCursor, StateChange, StoreError, Transacted,
};
use crate::BillingState;

mod sealed {
    pub trait Sealed {}
}

/// The statements that differ between the engines (how JSON and time are stored).
#[derive(Debug)]
pub(crate) struct BillingSql {
    /// `$1` tenant → `state` as text.
    pub(crate) read_state: &'static str,
    /// `$1` tenant → `state` as text, for a change: held until the transaction ends
    /// (PostgreSQL: the row is locked, and read as the last writer left it).
    pub(crate) read_state_for_change: &'static str,
    /// `$1` event, `$2` tenant, `$3` unix time: records the event unless it was
    /// recorded before, removes its parked copy either way, and answers one row:
    /// `claimed` (1 when newly recorded, else 0) and, when claimed, the tenant's
    /// `state` as text, read as [`read_state_for_change`](Self::read_state_for_change) does.
    pub(crate) claim_event: &'static str,
    /// `$1` tenant, `$2` customer, `$3` phase, `$4` due (unix), `$5` state JSON,
    /// `$6` unix time, `$7` a JSON array of the effects' JSON texts, queued in order.
    pub(crate) write_state: &'static str,
    /// `$1` limit → `id`, `tenant_id`, `effect` as text.
    pub(crate) pending_effects: &'static str,
    /// `$1` a JSON array of ids.
    pub(crate) ack_effects: &'static str,
    /// `$1` a JSON array of event ids → `event_id` of those recorded.
    pub(crate) processed_events: &'static str,
    /// `$1` event id, `$2` its created time (unix), `$3` unix time; a newer stored cursor stays.
    pub(crate) save_cursor: &'static str,
}

/// A SQL engine the billing store runs on: PostgreSQL or SQLite (sealed).
pub trait BillingEngine: Database + sealed::Sealed {
    /// The engine's statements. (Sealed: only this crate names it.)
    #[doc(hidden)]
    #[allow(private_interfaces)]
    const SQL: &'static BillingSql;

    /// How many rows a statement changed.
    #[doc(hidden)]
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// A transaction for one change (SQLite: holding the write lock).
    #[doc(hidden)]
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// Makes concurrent changes to a tenant that has no row yet wait for each other
    /// (PostgreSQL: an advisory lock, since there is no row to lock; SQLite: the write
    /// lock already does). Returns whether the state must be read again.
    #[doc(hidden)]
    fn serialize_new_tenant<'t>(
        tx: &'t mut Transaction<'static, Self>,
        tenant_id: &'t TenantId,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 't;
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}
#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

/// A [`BillingStore`] on a SQL database; see its two forms,
/// [`PostgresBillingStore`](crate::PostgresBillingStore) and
/// [`SqliteBillingStore`](crate::SqliteBillingStore).
pub struct SqlBillingStore<D: BillingEngine> {
    pub(super) pool: Pool<D>,
}

impl<D: BillingEngine> Clone for SqlBillingStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<D: BillingEngine> fmt::Debug for SqlBillingStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlBillingStore")
            .field("engine", &D::NAME)
            .finish_non_exhaustive()
    }
}

impl<D: BillingEngine> SqlBillingStore<D> {
    /// The store's pool.
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }
}

#[async_trait]
impl<D> BillingStore for SqlBillingStore<D>
where
    D: BillingEngine,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> Option<i64>: Encode<'q, D> + Type<D>,
    for<'r> String: Decode<'r, D>,
    for<'r> Option<String>: Decode<'r, D> + Type<D>,
    for<'r> i64: Decode<'r, D>,
    for<'r> &'r str: ColumnIndex<D::Row>,
    D::Row: Row<Database = D>,
{
    async fn load(&self, tenant_id: &TenantId) -> Result<Option<BillingState>, StoreError> {
        let row = sqlx::query(D::SQL.read_state)
            .bind(tenant_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| codec::state(tenant_id, &row)).transpose()
    }

    async fn tenant_for_customer(&self, customer_id: &str) -> Result<Option<TenantId>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant_id FROM billing_tenants WHERE customer_id = $1 ORDER BY tenant_id LIMIT 1",
        )
        .bind(customer_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| codec::tenant_id(&row)).transpose()
    }

    async fn due(&self, now: OffsetDateTime) -> Result<Vec<TenantId>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id FROM billing_tenants WHERE due_at <= $1 ORDER BY tenant_id",
        )
        .bind(now.unix_timestamp())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(codec::tenant_id).collect()
    }

    async fn transact(
        &self,
        tenant_id: &TenantId,
        event_id: Option<&str>,
        change: &mut StateChange<'_>,
    ) -> Result<Transacted, StoreError> {
        let mut tx = D::begin_write(&self.pool).await?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut state: Option<String> = match event_id {
            Some(event_id) => {
                // One statement records the event (a concurrent delivery of the same
                // event waits here for the other transaction, then sees the
                // conflict), unparks it (applied, or applied before: it is parked no
                // longer) and reads the tenant's state for the change.
                let row = sqlx::query(D::SQL.claim_event)
                    .bind(event_id)
                    .bind(tenant_id.as_str())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                if row.try_get::<i64, _>("claimed")? == 0 {
                    tx.commit().await?;
                    return Ok(Transacted::Duplicate);
                }
                row.try_get("state")?
            }
            None => read_for_change::<D>(&mut tx, tenant_id).await?,
        };
        // No row to lock yet: its first writers queue on the engine's lock, and the
        // ones that waited see what the first one wrote.
        if state.is_none() && D::serialize_new_tenant(&mut tx, tenant_id).await? {
            state = read_for_change::<D>(&mut tx, tenant_id).await?;
        }
        let current = state
            .map(|state| codec::decode_state(tenant_id, &state))
            .transpose()?;
        if let Some(update) = change(current) {
            sqlx::query(D::SQL.write_state)
                .bind(tenant_id.as_str())
                .bind(update.state.customer_id.as_deref())
                .bind(update.state.phase.name())
                .bind(update.due_at.map(OffsetDateTime::unix_timestamp))
                .bind(codec::encode_state(&update.state)?)
                .bind(now)
                .bind(codec::encode_effects(&update.effects)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Transacted::Committed)
    }

    async fn park(&self, event: &ParkedEvent) -> Result<bool, StoreError> {
        let parked = sqlx::query(codec::PARK)
            .bind(event.event_id.as_str())
            .bind(event.customer_id.as_deref())
            .bind(event.body.as_str())
            .bind(event.parked_at.unix_timestamp())
            .execute(&self.pool)
            .await?;
        Ok(D::rows_affected(&parked) == 1)
    }

    async fn parked(
        &self,
        customer_id: Option<&str>,
        after: Option<&ParkedEvent>,
        limit: usize,
    ) -> Result<Vec<ParkedEvent>, StoreError> {
        let (at, event_id) = codec::place(after);
        let rows = match customer_id {
            Some(customer) => sqlx::query(codec::PARKED_FOR_CUSTOMER).bind(customer),
            None => sqlx::query(codec::PARKED),
        }
        .bind(at)
        .bind(event_id)
        .bind(codec::limit(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(codec::parked_event).collect()
    }

    async fn unpark(&self, event_id: &str) -> Result<(), StoreError> {
        sqlx::query(codec::UNPARK)
            .bind(event_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        let rows = sqlx::query(D::SQL.pending_effects)
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(codec::pending_effect).collect()
    }

    async fn ack_effects(&self, ids: &[i64]) -> Result<(), StoreError> {
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Database(Box::new(e)))?;
        sqlx::query(D::SQL.ack_effects)
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn processed_events(&self, event_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        if event_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let ids =
            serde_json::to_string(event_ids).map_err(|e| StoreError::Database(Box::new(e)))?;
        let rows = sqlx::query(D::SQL.processed_events)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("event_id")?))
            .collect()
    }

    async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, StoreError> {
        let row = sqlx::query(codec::READ_CURSOR)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| codec::cursor(&row)).transpose()
    }

    async fn save_reconcile_cursor(&self, cursor: &ReconcileCursor) -> Result<(), StoreError> {
        sqlx::query(D::SQL.save_cursor)
            .bind(cursor.event_id.as_str())
            .bind(cursor.created.unix_timestamp())
            .bind(OffsetDateTime::now_utc().unix_timestamp())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The tenant's state as text, read for a change (see [`BillingSql::read_state_for_change`]).
async fn read_for_change<D>(
    tx: &mut Transaction<'static, D>,
    tenant_id: &TenantId,
) -> Result<Option<String>, StoreError>
where
    D: BillingEngine,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'r> String: Decode<'r, D> + Type<D>,
    for<'r> &'r str: ColumnIndex<D::Row>,
    D::Row: Row<Database = D>,
{
    let row = sqlx::query(D::SQL.read_state_for_change)
        .bind(tenant_id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|row| row.try_get("state")).transpose()?)
}
