use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use tenancy_core::{BoxError, TenantId};
use time::OffsetDateTime;

use crate::{BillingState, Effect};

/// Why a [`BillingStore`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (connection, constraint, I/O); usually worth retrying.
    #[error("billing store failed: {0}; check the database connection and retry")]
    Database(#[source] BoxError),
    /// A stored row could not be read back.
    #[error(
        "billing state of tenant `{tenant_id}` is unreadable ({reason}); fix or delete the row"
    )]
    Corrupt {
        /// The tenant (or the raw id, if the id itself is bad).
        tenant_id: String,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(Box::new(error))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<tenancy_core::persistence::SchemaError> for StoreError {
    fn from(error: tenancy_core::persistence::SchemaError) -> Self {
        Self::Database(Box::new(error))
    }
}

/// What a [`StateChange`] decided: the new state, when a clock tick is next due, and the
/// effects to queue in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateUpdate {
    /// The tenant's new state.
    pub state: BillingState,
    /// When a clock tick can next change it.
    pub due_at: Option<OffsetDateTime>,
    /// The effects to queue.
    pub effects: Vec<Effect>,
}

impl StateUpdate {
    /// An update.
    pub fn new(state: BillingState, due_at: Option<OffsetDateTime>, effects: Vec<Effect>) -> Self {
        Self {
            state,
            due_at,
            effects,
        }
    }
}

/// The change applied inside a store transaction: given the tenant's current state
/// (`None` if it has none), the update to write, or `None` to write nothing.
pub type StateChange<'a> = dyn FnMut(Option<BillingState>) -> Option<StateUpdate> + Send + 'a;

/// What a [`BillingStore::transact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transacted {
    /// The event id was already recorded: nothing was changed.
    Duplicate,
    /// The event id (if any) was recorded and the change (if any) written, in one transaction.
    Committed,
}

/// An effect waiting in the outbox for the host to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingEffect {
    /// The outbox id, to acknowledge it with.
    pub id: i64,
    /// The tenant it concerns.
    pub tenant_id: TenantId,
    /// What to do.
    pub effect: Effect,
}

/// A verified Stripe event kept until its tenant is known: Stripe does not deliver in
/// order, so an invoice event can arrive before the Checkout event that names the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParkedEvent {
    /// The event's id.
    pub event_id: String,
    /// The Stripe customer it concerns, if any: replays look events up by it.
    pub customer_id: Option<String>,
    /// The event's raw JSON, as Stripe sent it (already verified).
    pub body: String,
    /// When it was parked.
    pub parked_at: OffsetDateTime,
}

impl ParkedEvent {
    /// A parked copy of `event`, whose raw body is `body`.
    pub fn new(event: &crate::Event, body: &[u8], parked_at: OffsetDateTime) -> Self {
        Self {
            event_id: event.id.clone(),
            customer_id: event.customer_id().map(str::to_owned),
            body: String::from_utf8_lossy(body).into_owned(),
            parked_at,
        }
    }
}

/// Where reconciliation stopped: the last event it applied from Stripe's event list,
/// so that the next run (or a run after an interruption) starts there rather than 30
/// days back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileCursor {
    /// The event's id (`evt_…`).
    pub event_id: String,
    /// When the event was created at Stripe (second resolution).
    pub created: OffsetDateTime,
}

impl ReconcileCursor {
    /// A cursor at `event_id`, created at `created`.
    pub fn new(event_id: impl Into<String>, created: OffsetDateTime) -> Self {
        Self {
            event_id: event_id.into(),
            created,
        }
    }
}

/// Where tenants' billing state, processed event ids, parked events, the effect
/// outbox and the reconciliation cursor live.
///
/// Implementations must make [`transact`](Self::transact) atomic and serialised per
/// tenant: record the event id (a duplicate ends the call with nothing changed but
/// the removal of its parked copy), remove the event from the parked events, read the tenant's state, call the change, write its
/// result and queue its effects, all in one transaction, so that concurrent deliveries of
/// one event apply it exactly once and a parked event leaves only when it is applied.
#[async_trait]
pub trait BillingStore: Send + Sync + fmt::Debug {
    /// A tenant's state.
    async fn load(&self, tenant_id: &TenantId) -> Result<Option<BillingState>, StoreError>;

    /// The tenant whose state names Stripe customer `customer_id`.
    async fn tenant_for_customer(&self, customer_id: &str) -> Result<Option<TenantId>, StoreError>;

    /// The tenants with a clock deadline at or before `now`.
    async fn due(&self, now: OffsetDateTime) -> Result<Vec<TenantId>, StoreError>;

    /// Atomically records `event_id` (if given), reads the tenant's state, applies
    /// `change` and writes its result.
    async fn transact(
        &self,
        tenant_id: &TenantId,
        event_id: Option<&str>,
        change: &mut StateChange<'_>,
    ) -> Result<Transacted, StoreError>;

    /// Parks `event` until its tenant is known; parking an event id again changes
    /// nothing. Returns whether it was newly parked.
    async fn park(&self, event: &ParkedEvent) -> Result<bool, StoreError>;

    /// Up to `limit` parked events, oldest first (by `parked_at`, then event id):
    /// those of `customer_id`, or all; after `after`'s place in that order, if given.
    async fn parked(
        &self,
        customer_id: Option<&str>,
        after: Option<&ParkedEvent>,
        limit: usize,
    ) -> Result<Vec<ParkedEvent>, StoreError>;

    /// Removes a parked event without applying it (it expired, or it can never apply).
    async fn unpark(&self, event_id: &str) -> Result<(), StoreError>;

    /// Up to `limit` queued effects, oldest first.
    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError>;

    /// Removes carried-out effects from the outbox.
    async fn ack_effects(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Which of `event_ids` were processed (recorded by [`transact`](Self::transact)).
    async fn processed_events(&self, event_ids: &[String]) -> Result<HashSet<String>, StoreError>;

    /// Where reconciliation stopped, if it ever ran.
    async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, StoreError>;

    /// Moves the reconciliation cursor to `cursor`, unless the stored one is newer
    /// (created later): two reconciliations running at once never move it back.
    async fn save_reconcile_cursor(&self, cursor: &ReconcileCursor) -> Result<(), StoreError>;
}

/// Row encoding shared by the SQL stores.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod codec {
    use sqlx::{ColumnIndex, Decode, Row, Type};
    use tenancy_core::TenantId;

    use super::{PendingEffect, StoreError};
    use crate::{BillingState, Effect};

    pub(crate) fn encode_state(state: &BillingState) -> Result<String, StoreError> {
        serde_json::to_string(state).map_err(|e| StoreError::Database(Box::new(e)))
    }

    /// A JSON array of the effects' JSON texts, in order (each queued as one row).
    pub(crate) fn encode_effects(effects: &[Effect]) -> Result<String, StoreError> {
        let texts = effects
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        serde_json::to_string(&texts).map_err(|e| StoreError::Database(Box::new(e)))
    }

    fn text<R: Row>(row: &R, column: &'static str) -> Result<String, StoreError>
    where
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        &'static str: ColumnIndex<R>,
    {
        Ok(row.try_get(column)?)
    }

    fn corrupt(tenant_id: &str, reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            tenant_id: tenant_id.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// The `state` column of a `billing_tenants` row.
    pub(crate) fn state<R: Row>(tenant_id: &TenantId, row: &R) -> Result<BillingState, StoreError>
    where
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        &'static str: ColumnIndex<R>,
    {
        decode_state(tenant_id, &text(row, "state")?)
    }

    /// A tenant's state from its JSON text.
    pub(crate) fn decode_state(
        tenant_id: &TenantId,
        json: &str,
    ) -> Result<BillingState, StoreError> {
        serde_json::from_str(json).map_err(|e| corrupt(tenant_id.as_str(), e))
    }

    /// The `tenant_id` column of a row.
    pub(crate) fn tenant_id<R: Row>(row: &R) -> Result<TenantId, StoreError>
    where
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        &'static str: ColumnIndex<R>,
    {
        let raw = text(row, "tenant_id")?;
        TenantId::new(raw.clone()).map_err(|e| corrupt(&raw, e))
    }

    /// A `billing_effects` row (`id`, `tenant_id`, `effect`).
    pub(crate) fn pending_effect<R: Row>(row: &R) -> Result<PendingEffect, StoreError>
    where
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
        &'static str: ColumnIndex<R>,
    {
        let tenant_id = tenant_id(row)?;
        let effect = serde_json::from_str(&text(row, "effect")?)
            .map_err(|e| corrupt(tenant_id.as_str(), format_args!("queued effect: {e}")))?;
        Ok(PendingEffect {
            id: row.try_get("id")?,
            tenant_id,
            effect,
        })
    }

    pub(crate) fn limit(limit: usize) -> i64 {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }

    /// Parks an event once per id (`$1` … `$4`: id, customer, body, unix time).
    pub(crate) const PARK: &str =
        "INSERT INTO billing_parked_events (event_id, customer_id, body, parked_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING";
    /// A customer's parked events after a place, oldest first (`$1` customer,
    /// `$2` `$3` the place: unix time and event id, `$4` limit).
    pub(crate) const PARKED_FOR_CUSTOMER: &str = "SELECT event_id, customer_id, body, parked_at \
         FROM billing_parked_events WHERE customer_id = $1 AND (parked_at, event_id) > ($2, $3) \
         ORDER BY parked_at, event_id LIMIT $4";
    /// Every parked event after a place, oldest first (`$1` `$2` the place, `$3` limit).
    pub(crate) const PARKED: &str = "SELECT event_id, customer_id, body, parked_at \
         FROM billing_parked_events WHERE (parked_at, event_id) > ($1, $2) \
         ORDER BY parked_at, event_id LIMIT $3";

    /// The place after which a page starts: before everything when `None`.
    pub(crate) fn place(after: Option<&super::ParkedEvent>) -> (i64, &str) {
        after.map_or((i64::MIN, ""), |p| {
            (p.parked_at.unix_timestamp(), p.event_id.as_str())
        })
    }

    /// The reconciliation cursor (`event_id`, `event_created` in unix seconds).
    pub(crate) const READ_CURSOR: &str = "SELECT event_id, event_created \
         FROM billing_reconcile_cursor WHERE name = 'events'";

    /// A `billing_reconcile_cursor` row.
    pub(crate) fn cursor<R: Row>(row: &R) -> Result<super::ReconcileCursor, StoreError>
    where
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
        &'static str: ColumnIndex<R>,
    {
        let event_id = text(row, "event_id")?;
        let at: i64 = row.try_get("event_created")?;
        let created = time::OffsetDateTime::from_unix_timestamp(at).map_err(|e| {
            corrupt(
                "(reconciliation cursor)",
                format_args!("reconciliation cursor at {event_id}: {e}; delete the row of billing_reconcile_cursor to start again 30 days back"),
            )
        })?;
        Ok(super::ReconcileCursor::new(event_id, created))
    }

    /// Removes a parked event (`$1` id).
    pub(crate) const UNPARK: &str = "DELETE FROM billing_parked_events WHERE event_id = $1";

    /// A `billing_parked_events` row.
    pub(crate) fn parked_event<R: Row>(row: &R) -> Result<super::ParkedEvent, StoreError>
    where
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
        &'static str: ColumnIndex<R>,
    {
        let event_id = text(row, "event_id")?;
        let at: i64 = row.try_get("parked_at")?;
        let parked_at = time::OffsetDateTime::from_unix_timestamp(at)
            .map_err(|e| corrupt(&event_id, format_args!("parked event {event_id}: {e}")))?;
        Ok(super::ParkedEvent {
            customer_id: row.try_get("customer_id")?,
            body: text(row, "body")?,
            event_id,
            parked_at,
        })
    }
}
