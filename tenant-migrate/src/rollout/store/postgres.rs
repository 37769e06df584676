use sqlx::postgres::{PgPool, PgQueryResult};
use sqlx::{Postgres, Transaction};
use tenancy_core::persistence::{SchemaStep, StorePoolOptions, StoreSchema};
use tenancy_core::DatabaseUrl;

use super::sql::{Statements, POSTGRES_STATEMENTS};
use super::sql_store::{RolloutEngine, SqlRolloutStore};
use super::{RolloutError, RolloutKey};

/// The store's tables, step by step (see [`StoreSchema`]).
const SCHEMA: StoreSchema = StoreSchema::new(
    "tenancy_rollouts",
    &[SchemaStep::Sql(
        r"
            CREATE TABLE IF NOT EXISTS tenancy_rollouts (
                id               BIGSERIAL PRIMARY KEY,
                target_version   BIGINT NOT NULL,
                set_checksum     TEXT NOT NULL,
                strategy         JSONB NOT NULL,
                status           TEXT NOT NULL,
                tenant_count     BIGINT NOT NULL,
                created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
                phase_started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                halted_reason    TEXT
            );
            CREATE UNIQUE INDEX IF NOT EXISTS tenancy_rollouts_open
                ON tenancy_rollouts (target_version, set_checksum)
                WHERE status IN ('active', 'halted', 'rolling_back');
            CREATE TABLE IF NOT EXISTS tenancy_rollout_tenants (
                rollout_id       BIGINT NOT NULL REFERENCES tenancy_rollouts (id) ON DELETE CASCADE,
                tenant_id        TEXT NOT NULL,
                wave             INT NOT NULL,
                position         INT NOT NULL,
                status           TEXT NOT NULL DEFAULT 'pending',
                attempts         INT NOT NULL DEFAULT 0,
                lease_owner      TEXT,
                lease_expires_at TIMESTAMPTZ,
                started_at       TIMESTAMPTZ,
                finished_at      TIMESTAMPTZ,
                from_version     BIGINT,
                to_version       BIGINT,
                migrated         BOOLEAN NOT NULL DEFAULT false,
                error            TEXT,
                PRIMARY KEY (rollout_id, tenant_id)
            );
            CREATE UNIQUE INDEX IF NOT EXISTS tenancy_rollout_tenants_order
                ON tenancy_rollout_tenants (rollout_id, wave, position);
            -- Claims walk one status at a time in rollout order.
            CREATE INDEX IF NOT EXISTS tenancy_rollout_tenants_claim
                ON tenancy_rollout_tenants (rollout_id, status, wave, position);
        ",
    )],
);

/// The rollout state store on a PostgreSQL control-plane database: several runners,
/// on one machine or many, share a rollout through it.
///
/// Claims use `FOR UPDATE SKIP LOCKED` under leases that expire, so a runner that
/// dies leaves its tenants to the others after one lease period.
///
/// ```no_run
/// use tenancy_core::DatabaseUrl;
/// use tenant_migrate::rollout::store::PostgresRolloutStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/control")?;
/// let store = PostgresRolloutStore::connect(&url).await?;
/// # Ok(()) }
/// ```
pub type PostgresRolloutStore = SqlRolloutStore<Postgres>;

impl SqlRolloutStore<Postgres> {
    /// Connects under tenancy-core's [`StorePoolOptions`] policy (a pool of 4) and
    /// creates or upgrades the `tenancy_rollout*` tables.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, RolloutError> {
        let pool = StorePoolOptions::new()
            .max_connections(4)
            .open_postgres(url.expose())
            .await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (possibly shared with the host's other stores),
    /// creating or upgrading the tables.
    pub async fn from_pool(pool: PgPool) -> Result<Self, RolloutError> {
        SCHEMA.apply_postgres(&pool).await?;
        Ok(Self { pool })
    }
}

impl RolloutEngine for Postgres {
    #[allow(private_interfaces)] // sealed: only this crate names it
    fn statements() -> &'static Statements {
        &POSTGRES_STATEMENTS
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    async fn insert_rollout(
        tx: &mut Transaction<'static, Postgres>,
        key: &RolloutKey,
        strategy: &str,
        tenants: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO tenancy_rollouts (target_version, set_checksum, strategy, status, tenant_count)
             VALUES ($1, $2, $3::jsonb, 'active', $4)
             ON CONFLICT (target_version, set_checksum)
                 WHERE status IN ('active', 'halted', 'rolling_back') DO NOTHING
             RETURNING id",
        )
        .bind(key.target_version)
        .bind(&key.set_checksum)
        .bind(strategy)
        .bind(tenants)
        .fetch_optional(&mut **tx)
        .await
    }

    async fn insert_tenants(
        tx: &mut Transaction<'static, Postgres>,
        rollout_id: i64,
        tenants: &[(&str, i64, i64)],
    ) -> Result<u64, sqlx::Error> {
        let ids: Vec<&str> = tenants.iter().map(|t| t.0).collect();
        let waves: Vec<i64> = tenants.iter().map(|t| t.1).collect();
        let positions: Vec<i64> = tenants.iter().map(|t| t.2).collect();
        let done = sqlx::query(
            "INSERT INTO tenancy_rollout_tenants (rollout_id, tenant_id, wave, position)
             SELECT $1, * FROM UNNEST($2::text[], $3::int8[], $4::int8[])
             ON CONFLICT (rollout_id, tenant_id) DO NOTHING",
        )
        .bind(rollout_id)
        .bind(ids)
        .bind(waves)
        .bind(positions)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected())
    }
}
