use sqlx::sqlite::{SqlitePool, SqliteQueryResult};
use sqlx::{Sqlite, Transaction};
use tenancy_core::persistence::{SchemaStep, StorePoolOptions, StoreSchema};
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
                due_at      INTEGER,
                state       TEXT NOT NULL,
                updated_at  INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS billing_tenants_customer ON billing_tenants (customer_id);
            CREATE INDEX IF NOT EXISTS billing_tenants_due ON billing_tenants (due_at);
            CREATE TABLE IF NOT EXISTS billing_events (
                event_id     TEXT PRIMARY KEY,
                tenant_id    TEXT NOT NULL,
                processed_at INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS billing_parked_events (
                event_id    TEXT PRIMARY KEY,
                customer_id TEXT,
                body        TEXT NOT NULL,
                parked_at   INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS billing_parked_events_customer ON billing_parked_events (customer_id, parked_at);
            CREATE INDEX IF NOT EXISTS billing_parked_events_parked_at ON billing_parked_events (parked_at);
            CREATE TABLE IF NOT EXISTS billing_effects (
                id         INTEGER PRIMARY KEY AUTOINCREMENT,
                tenant_id  TEXT NOT NULL,
                effect     TEXT NOT NULL,
                created_at INTEGER NOT NULL
            );
        ",
        ),
        SchemaStep::Sql(
            "
            CREATE TABLE IF NOT EXISTS billing_reconcile_cursor (
                name          TEXT PRIMARY KEY,
                event_id      TEXT NOT NULL,
                event_created INTEGER NOT NULL,
                updated_at    INTEGER NOT NULL
            );
        ",
        ),
    ],
);

/// A [`BillingStore`](crate::BillingStore) in SQLite (tables `billing_tenants`, `billing_events`,
/// `billing_parked_events`, `billing_effects`, `billing_reconcile_cursor`), for a single
/// host process.
///
/// ```no_run
/// use stripe_billing::SqliteBillingStore;
///
/// # async fn run() -> Result<(), stripe_billing::StoreError> {
/// let store = SqliteBillingStore::connect("sqlite:billing.db").await?;
/// # Ok(()) }
/// ```
pub type SqliteBillingStore = SqlBillingStore<Sqlite>;

impl SqlBillingStore<Sqlite> {
    /// Opens (creating if missing) the database at `url` under tenancy-core's shared
    /// [`StorePoolOptions`] policy, and creates or upgrades the tables.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = StorePoolOptions::new()
            .create_if_missing(true)
            .open_sqlite(url)
            .await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (possibly shared with other stores), creating or
    /// upgrading the tables.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        SCHEMA.apply_sqlite(&pool).await?;
        Ok(Self { pool })
    }
}

/// JSON in `TEXT` columns, time as Unix seconds in `INTEGER` ones.
const SQL: BillingSql = BillingSql {
    read_state: "SELECT state FROM billing_tenants WHERE tenant_id = $1",
    // The write lock, taken at BEGIN IMMEDIATE, already serialises changes.
    read_state_for_change: "SELECT state FROM billing_tenants WHERE tenant_id = $1",
    // Three statements in one call; `changes()` counts the INSERT's rows.
    claim_event: "DELETE FROM billing_parked_events WHERE event_id = $1; \
        INSERT INTO billing_events (event_id, tenant_id, processed_at) VALUES ($1, $2, $3) \
        ON CONFLICT (event_id) DO NOTHING; \
        SELECT changes() AS claimed, \
        (SELECT state FROM billing_tenants WHERE tenant_id = $2 AND changes() = 1) AS state",
    write_state: "INSERT INTO billing_tenants (tenant_id, customer_id, phase, due_at, state, updated_at) \
        VALUES ($1, $2, $3, $4, $5, $6) \
        ON CONFLICT (tenant_id) DO UPDATE SET customer_id = excluded.customer_id, phase = excluded.phase, \
        due_at = excluded.due_at, state = excluded.state, updated_at = excluded.updated_at; \
        INSERT INTO billing_effects (tenant_id, effect, created_at) \
        SELECT $1, value, $6 FROM json_each($7) ORDER BY key",
    pending_effects: "SELECT id, tenant_id, effect FROM billing_effects ORDER BY id LIMIT $1",
    ack_effects: "DELETE FROM billing_effects WHERE id IN (SELECT value FROM json_each($1))",
    processed_events: "SELECT event_id FROM billing_events \
        WHERE event_id IN (SELECT value FROM json_each($1))",
    save_cursor: "INSERT INTO billing_reconcile_cursor (name, event_id, event_created, updated_at) \
        VALUES ('events', $1, $2, $3) \
        ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, \
        event_created = excluded.event_created, updated_at = excluded.updated_at \
        WHERE billing_reconcile_cursor.event_created <= excluded.event_created",
};

impl BillingEngine for Sqlite {
    #[allow(private_interfaces)] // sealed: only this crate names it
    const SQL: &'static BillingSql = &SQL;

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// IMMEDIATE takes the write lock up front: one writer at a time, no upgrade deadlock.
    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn serialize_new_tenant(
        _tx: &mut Transaction<'static, Sqlite>,
        _tenant_id: &TenantId,
    ) -> Result<bool, sqlx::Error> {
        Ok(false)
    }
}
