use sqlx::postgres::{PgPool, PgQueryResult};
use sqlx::Postgres;

use super::sql::{DirectoryEngine, DirectorySql, SqlTenantDirectory};
use super::DirectoryError;
use crate::persistence::{SchemaStep, StorePoolOptions, StoreSchema};

/// The directory's tables, step by step (see [`StoreSchema`]).
const SCHEMA: StoreSchema = StoreSchema::new(
    "tenancy_tenants",
    &[
        SchemaStep::Sql(
            "CREATE TABLE IF NOT EXISTS tenancy_tenants (
                id            TEXT PRIMARY KEY,
                name          TEXT NOT NULL,
                admin_email   TEXT NOT NULL,
                status        TEXT NOT NULL,
                status_detail TEXT NOT NULL,
                database_url  TEXT,
                pooled_url    TEXT,
                external_ref  TEXT,
                tags          TEXT[] NOT NULL DEFAULT '{}',
                created_at    TIMESTAMPTZ NOT NULL,
                updated_at    TIMESTAMPTZ NOT NULL,
                revision      BIGINT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS tenancy_tenants_status ON tenancy_tenants (status);
            CREATE INDEX IF NOT EXISTS tenancy_tenants_tags ON tenancy_tenants USING GIN (tags);",
        ),
        SchemaStep::AddColumn {
            table: "tenancy_tenants",
            column: "provisioning_notes",
            definition: "TEXT",
            backfill: None,
        },
        SchemaStep::AddColumn {
            table: "tenancy_tenants",
            column: "ready_notified_at",
            definition: "TIMESTAMPTZ",
            // Tenants ready before notices were recorded were told then: never again.
            backfill: Some(
                "UPDATE tenancy_tenants SET ready_notified_at = updated_at WHERE status = 'ready'",
            ),
        },
    ],
);

/// A [`TenantDirectory`](crate::TenantDirectory) in PostgreSQL (table `tenancy_tenants`): the control plane
/// shared by several processes and machines.
///
/// ```no_run
/// use tenancy_core::{PostgresTenantDirectory, TenantDirectory, TenantFilter};
///
/// # async fn run() -> Result<(), tenancy_core::DirectoryError> {
/// let directory = PostgresTenantDirectory::connect("postgres://postgres@127.0.0.1/control").await?;
/// let staging = directory.list(&TenantFilter::all().with_tag("staging")).await?;
/// # Ok(()) }
/// ```
pub type PostgresTenantDirectory = SqlTenantDirectory<Postgres>;

impl SqlTenantDirectory<Postgres> {
    /// Connects to the database at `url` under the shared [`StorePoolOptions`]
    /// policy, and brings its table up to date.
    pub async fn connect(url: &str) -> Result<Self, DirectoryError> {
        let pool = StorePoolOptions::new().open_postgres(url).await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (possibly shared with other stores), creating or
    /// upgrading the table.
    pub async fn from_pool(pool: PgPool) -> Result<Self, DirectoryError> {
        SCHEMA.apply_postgres(&pool).await?;
        Ok(Self { pool })
    }
}

/// Tags in a `TEXT[]` column (GIN-indexed), passed in and out as JSON.
const SQL: DirectorySql = DirectorySql {
    get: "SELECT id, name, admin_email, status, status_detail, database_url, pooled_url, \
          external_ref, to_json(tags)::text AS tags, created_at, updated_at, revision, \
          provisioning_notes, ready_notified_at FROM tenancy_tenants WHERE id = $1",
    insert: "INSERT INTO tenancy_tenants (id, name, admin_email, status, status_detail, \
             database_url, pooled_url, external_ref, tags, created_at, updated_at, revision, \
             provisioning_notes, ready_notified_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     ARRAY(SELECT jsonb_array_elements_text($9::jsonb)), $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO NOTHING",
    // An optimistic update: the row changes only if its revision is still the caller's.
    update: "UPDATE tenancy_tenants SET name = $2, admin_email = $3, status = $4, \
             status_detail = $5, database_url = $6, pooled_url = $7, external_ref = $8, \
             tags = ARRAY(SELECT jsonb_array_elements_text($9::jsonb)), updated_at = $11, \
             provisioning_notes = $13, ready_notified_at = $14, revision = revision + 1 \
             WHERE id = $1 AND revision = $12",
    list: "SELECT id, name, admin_email, status, status_detail, database_url, pooled_url, \
           external_ref, to_json(tags)::text AS tags, created_at, updated_at, revision, \
           provisioning_notes, ready_notified_at FROM tenancy_tenants \
           WHERE id > $1 \
             AND ($2::jsonb = '[]'::jsonb OR id IN (SELECT jsonb_array_elements_text($2::jsonb))) \
             AND ($3::jsonb = '[]'::jsonb OR tags && ARRAY(SELECT jsonb_array_elements_text($3::jsonb))) \
             AND ($5::jsonb = '[]'::jsonb OR status IN (SELECT jsonb_array_elements_text($5::jsonb))) \
           ORDER BY id LIMIT $4",
};

impl DirectoryEngine for Postgres {
    #[allow(private_interfaces)] // sealed: only this crate names it
    const SQL: &'static DirectorySql = &SQL;

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}
