use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::PgConnection;
use tenancy_core::persistence::{advisory_key, SchemaStep, StorePoolOptions, StoreSchema};
use tenancy_core::TenantId;
use time::OffsetDateTime;

use super::store::codec;
use super::{BillingStore, ParkedEvent, PendingEffect, StateChange, StoreError, Transacted};
use crate::BillingState;

/// The store's tables, step by step (see [`StoreSchema`]).
const SCHEMA: StoreSchema = StoreSchema::new(
    "stripe_billing",
    &[SchemaStep::Sql(
        "
            CREATE TABLE IF NOT EXISTS billing_tenants (
                tenant_id   TEXT PRIMARY KEY,
                customer_id TEXT,
                phase       TEXT NOT NULL,
                due_at      BIGINT,
                state       JSONB NOT NULL,
                updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS billing_tenants_customer ON billing_tenants (customer_id);
            CREATE INDEX IF NOT EXISTS billing_tenants_due ON billing_tenants (due_at) WHERE due_at IS NOT NULL;
            CREATE TABLE IF NOT EXISTS billing_events (
                event_id     TEXT PRIMARY KEY,
                tenant_id    TEXT NOT NULL,
                processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE TABLE IF NOT EXISTS billing_parked_events (
                event_id    TEXT PRIMARY KEY,
                customer_id TEXT,
                body        TEXT NOT NULL,
                parked_at   BIGINT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS billing_parked_events_customer ON billing_parked_events (customer_id, parked_at);
            CREATE INDEX IF NOT EXISTS billing_parked_events_parked_at ON billing_parked_events (parked_at);
            CREATE TABLE IF NOT EXISTS billing_effects (
                id         BIGSERIAL PRIMARY KEY,
                tenant_id  TEXT NOT NULL,
                effect     JSONB NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
        ",
    )],
);

/// A [`BillingStore`] in PostgreSQL (tables `billing_tenants`, `billing_events`,
/// `billing_parked_events`, `billing_effects`), safe for several host processes at once: concurrent deliveries
/// of one event apply it once, and a tenant's changes are serialised by a
/// transaction-scoped advisory lock.
///
/// ```no_run
/// use stripe_billing::PostgresBillingStore;
///
/// # async fn run() -> Result<(), stripe_billing::StoreError> {
/// let store = PostgresBillingStore::connect("postgres://postgres@127.0.0.1/control").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresBillingStore {
    pool: PgPool,
}

impl PostgresBillingStore {
    /// Connects to the database at `url` under tenancy-core's shared
    /// [`StorePoolOptions`] policy, and creates or upgrades the tables.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = StorePoolOptions::new().open_postgres(url).await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (possibly shared with other stores), creating or
    /// upgrading the tables.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        SCHEMA.apply_postgres(&pool).await?;
        Ok(Self { pool })
    }
}

async fn read_state(
    conn: &mut PgConnection,
    tenant_id: &TenantId,
) -> Result<Option<BillingState>, StoreError> {
    let row = sqlx::query("SELECT state::text AS state FROM billing_tenants WHERE tenant_id = $1")
        .bind(tenant_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| codec::state(tenant_id, &row)).transpose()
}

#[async_trait]
impl BillingStore for PostgresBillingStore {
    async fn load(&self, tenant_id: &TenantId) -> Result<Option<BillingState>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_state(&mut conn, tenant_id).await
    }

    async fn tenant_for_customer(&self, customer_id: &str) -> Result<Option<TenantId>, StoreError> {
        let row = sqlx::query("SELECT tenant_id FROM billing_tenants WHERE customer_id = $1 ORDER BY tenant_id LIMIT 1")
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
        let mut tx = self.pool.begin().await?;
        if let Some(event_id) = event_id {
            // A concurrent delivery of the same event waits here for the other
            // transaction, then sees the conflict.
            let inserted = sqlx::query(
                "INSERT INTO billing_events (event_id, tenant_id) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(event_id)
            .bind(tenant_id.as_str())
            .execute(&mut *tx)
            .await?;
            // Applied (or applied before): it is parked no longer.
            sqlx::query(codec::UNPARK)
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
            if inserted.rows_affected() == 0 {
                tx.commit().await?;
                return Ok(Transacted::Duplicate);
            }
        }
        // Serialise changes to one tenant, including its first row.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(advisory_key(&format!("stripe-billing:tenant:{tenant_id}")))
            .execute(&mut *tx)
            .await?;
        let current = read_state(&mut tx, tenant_id).await?;
        if let Some(update) = change(current) {
            sqlx::query(
                "INSERT INTO billing_tenants (tenant_id, customer_id, phase, due_at, state, updated_at) \
                 VALUES ($1, $2, $3, $4, $5::jsonb, now()) \
                 ON CONFLICT (tenant_id) DO UPDATE SET customer_id = excluded.customer_id, phase = excluded.phase, \
                 due_at = excluded.due_at, state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(tenant_id.as_str())
            .bind(update.state.customer_id.as_deref())
            .bind(update.state.phase.name())
            .bind(update.due_at.map(OffsetDateTime::unix_timestamp))
            .bind(codec::encode_state(&update.state)?)
            .execute(&mut *tx)
            .await?;
            for effect in &update.effects {
                sqlx::query(
                    "INSERT INTO billing_effects (tenant_id, effect) VALUES ($1, $2::jsonb)",
                )
                .bind(tenant_id.as_str())
                .bind(codec::encode_effect(effect)?)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Transacted::Committed)
    }

    async fn park(&self, event: &ParkedEvent) -> Result<bool, StoreError> {
        let parked = sqlx::query(codec::PARK)
            .bind(&event.event_id)
            .bind(event.customer_id.as_deref())
            .bind(&event.body)
            .bind(event.parked_at.unix_timestamp())
            .execute(&self.pool)
            .await?;
        Ok(parked.rows_affected() == 1)
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
        let rows = sqlx::query("SELECT id, tenant_id, effect::text AS effect FROM billing_effects ORDER BY id LIMIT $1")
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(codec::pending_effect).collect()
    }

    async fn ack_effects(&self, ids: &[i64]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM billing_effects WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
