use sqlx::sqlite::{SqlitePool, SqliteQueryResult};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use tenancy_core::persistence::{SchemaStep, StorePoolOptions, StoreSchema};
use time::OffsetDateTime;

use super::sql::{Statements, SQLITE_STATEMENTS};
use super::sql_store::{RolloutEngine, SqlRolloutStore};
use super::{RolloutError, RolloutKey};

/// The store's tables, step by step (see [`StoreSchema`]).
const SCHEMA: StoreSchema = StoreSchema::new(
    "tenancy_rollouts",
    &[SchemaStep::Sql(
        r"
            CREATE TABLE IF NOT EXISTS tenancy_rollouts (
                id               INTEGER PRIMARY KEY AUTOINCREMENT,
                target_version   INTEGER NOT NULL,
                set_checksum     TEXT NOT NULL,
                strategy         TEXT NOT NULL,
                status           TEXT NOT NULL,
                tenant_count     INTEGER NOT NULL,
                created_at       INTEGER NOT NULL,
                updated_at       INTEGER NOT NULL,
                phase_started_at INTEGER NOT NULL,
                halted_reason    TEXT
            );
            CREATE UNIQUE INDEX IF NOT EXISTS tenancy_rollouts_open
                ON tenancy_rollouts (target_version, set_checksum)
                WHERE status IN ('active', 'halted', 'rolling_back');
            CREATE TABLE IF NOT EXISTS tenancy_rollout_tenants (
                rollout_id       INTEGER NOT NULL REFERENCES tenancy_rollouts (id) ON DELETE CASCADE,
                tenant_id        TEXT NOT NULL,
                wave             INTEGER NOT NULL,
                position         INTEGER NOT NULL,
                status           TEXT NOT NULL DEFAULT 'pending',
                attempts         INTEGER NOT NULL DEFAULT 0,
                lease_owner      TEXT,
                lease_expires_at INTEGER,
                started_at       INTEGER,
                finished_at      INTEGER,
                from_version     INTEGER,
                to_version       INTEGER,
                migrated         INTEGER NOT NULL DEFAULT 0,
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

/// Tenant rows inserted per statement (4 parameters each, under SQLite's limit).
const INSERT_CHUNK: usize = 2000;

/// The rollout state store in a SQLite file: the embedded default, for one runner
/// at a time (each claim is one statement holding the write lock).
///
/// ```no_run
/// use tenant_migrate::rollout::store::SqliteRolloutStore;
///
/// # async fn run() -> Result<(), tenant_migrate::RolloutError> {
/// let store = SqliteRolloutStore::open("sqlite:migrate-state.db").await?;
/// # Ok(()) }
/// ```
pub type SqliteRolloutStore = SqlRolloutStore<Sqlite>;

impl SqlRolloutStore<Sqlite> {
    /// Opens (creating if missing) the SQLite file named by a `sqlite:` URL under
    /// tenancy-core's [`StorePoolOptions`] policy, and creates or upgrades the
    /// `tenancy_rollout*` tables.
    ///
    /// The pool has one connection: this process's writes queue in memory instead
    /// of meeting SQLite's busy handler (which sleeps). A kill -9 loses no commit
    /// (write-ahead log); a tenant whose status write an OS crash lost is rechecked
    /// against its own history when it is claimed again.
    pub async fn open(url: &str) -> Result<Self, RolloutError> {
        let pool = StorePoolOptions::new()
            .create_if_missing(true)
            .max_connections(1)
            .open_sqlite(url)
            .await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (possibly shared with the host's other stores),
    /// creating or upgrading the tables.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, RolloutError> {
        SCHEMA.apply_sqlite(&pool).await?;
        Ok(Self { pool })
    }
}

/// The time as the timestamp columns hold it (Unix milliseconds).
fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl RolloutEngine for Sqlite {
    #[allow(private_interfaces)] // sealed: only this crate names it
    fn statements() -> &'static Statements {
        &SQLITE_STATEMENTS
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// A transaction holding the database's write lock from its first statement.
    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn insert_rollout(
        tx: &mut Transaction<'static, Sqlite>,
        key: &RolloutKey,
        strategy: &str,
        tenants: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO tenancy_rollouts (target_version, set_checksum, strategy, status,
                 tenant_count, created_at, updated_at, phase_started_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $5, $5)
             ON CONFLICT (target_version, set_checksum)
                 WHERE status IN ('active', 'halted', 'rolling_back') DO NOTHING
             RETURNING id",
        )
        .bind(key.target_version)
        .bind(&key.set_checksum)
        .bind(strategy)
        .bind(tenants)
        .bind(now_ms())
        .fetch_optional(&mut **tx)
        .await
    }

    async fn insert_tenants(
        tx: &mut Transaction<'static, Sqlite>,
        rollout_id: i64,
        tenants: &[(&str, i64, i64)],
    ) -> Result<u64, sqlx::Error> {
        let mut added = 0;
        for chunk in tenants.chunks(INSERT_CHUNK) {
            let mut insert: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "INSERT INTO tenancy_rollout_tenants (rollout_id, tenant_id, wave, position) ",
            );
            insert.push_values(chunk, |mut row, (id, wave, position)| {
                row.push_bind(rollout_id)
                    .push_bind(*id)
                    .push_bind(*wave)
                    .push_bind(*position);
            });
            insert.push(" ON CONFLICT (rollout_id, tenant_id) DO NOTHING");
            added += insert.build().execute(&mut **tx).await?.rows_affected();
        }
        Ok(added)
    }
}
