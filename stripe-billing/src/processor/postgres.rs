use sqlx::postgres::{PgPool, PgQueryResult};
use sqlx::{Postgres, Transaction};
use tenancy_core::persistence::{advisory_key, SchemaStep, StorePoolOptions, StoreSchema};
use tenancy_core::TenantId;

use super::sql_store::{BillingEngine, BillingSql, SqlBillingStore};
use super::StoreError;

/// The store's tables, step by step (see [`StoreSchema`]).
const SCHEMA: StoreSchema = StoreSchema::new(
    "stripe_billing",
    &[
        SchemaStep::Sql(
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
        ),
        SchemaStep::Sql(
            "
            CREATE TABLE IF NOT EXISTS billing_reconcile_cursor (
                name          TEXT PRIMARY KEY,
                event_id      TEXT NOT NULL,
                event_created BIGINT NOT NULL,
                updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
            );
        ",
        ),
    ],
);

/// A [`BillingStore`](crate::BillingStore) in PostgreSQL (tables `billing_tenants`, `billing_events`,
/// `billing_parked_events`, `billing_effects`, `billing_reconcile_cursor`), safe for several host processes at once: concurrent deliveries
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
pub type PostgresBillingStore = SqlBillingStore<Postgres>;

impl SqlBillingStore<Postgres> {
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

/// JSON in `JSONB` columns, time in `TIMESTAMPTZ` ones.
const SQL: BillingSql = BillingSql {
    read_state: "SELECT state::text AS state FROM billing_tenants WHERE tenant_id = $1",
    read_state_for_change: "SELECT state::text AS state FROM billing_tenants WHERE tenant_id = $1 \
        FOR UPDATE",
    // The row lock waits for a concurrent change and then reads what it wrote.
    claim_event: "WITH claimed AS (INSERT INTO billing_events (event_id, tenant_id, processed_at) \
        VALUES ($1, $2, to_timestamp($3)) ON CONFLICT (event_id) DO NOTHING RETURNING event_id), \
        unparked AS (DELETE FROM billing_parked_events WHERE event_id = $1) \
        SELECT (SELECT count(*) FROM claimed) AS claimed, \
        (SELECT state::text FROM billing_tenants \
        WHERE tenant_id = $2 AND EXISTS (SELECT 1 FROM claimed) FOR UPDATE) AS state",
    write_state: "WITH written AS (INSERT INTO billing_tenants \
        (tenant_id, customer_id, phase, due_at, state, updated_at) \
        VALUES ($1, $2, $3, $4, $5::jsonb, to_timestamp($6)) \
        ON CONFLICT (tenant_id) DO UPDATE SET customer_id = excluded.customer_id, phase = excluded.phase, \
        due_at = excluded.due_at, state = excluded.state, updated_at = excluded.updated_at) \
        INSERT INTO billing_effects (tenant_id, effect, created_at) \
        SELECT $1, effect.text::jsonb, to_timestamp($6) \
        FROM jsonb_array_elements_text($7::jsonb) WITH ORDINALITY AS effect(text, position) \
        ORDER BY effect.position",
    pending_effects: "SELECT id, tenant_id, effect::text AS effect FROM billing_effects ORDER BY id LIMIT $1",
    ack_effects: "DELETE FROM billing_effects \
        WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)",
    processed_events: "SELECT event_id FROM billing_events \
        WHERE event_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
    save_cursor: "INSERT INTO billing_reconcile_cursor (name, event_id, event_created, updated_at) \
        VALUES ('events', $1, $2, to_timestamp($3)) \
        ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, \
        event_created = excluded.event_created, updated_at = excluded.updated_at \
        WHERE billing_reconcile_cursor.event_created <= excluded.event_created",
};

impl BillingEngine for Postgres {
    #[allow(private_interfaces)] // sealed: only this crate names it
    const SQL: &'static BillingSql = &SQL;

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    async fn serialize_new_tenant(
        tx: &mut Transaction<'static, Postgres>,
        tenant_id: &TenantId,
    ) -> Result<bool, sqlx::Error> {
        // A tenant's first row has no row lock to wait on: its first writers queue here.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(advisory_key(&format!("stripe-billing:tenant:{tenant_id}")))
            .execute(&mut **tx)
            .await
            .map(|_| true)
    }
}
