use sqlx::sqlite::{SqlitePool, SqliteQueryResult};
use sqlx::Sqlite;

use super::sql::{DirectoryEngine, DirectorySql, SqlTenantDirectory};
use super::DirectoryError;
use crate::persistence::{SchemaStep, StorePoolOptions, StoreSchema};

/// The directory's tables, step by step (see [`StoreSchema`]).
const SCHEMA: StoreSchema = StoreSchema::new(
    "tenancy_tenants",
    &[
        SchemaStep::Sql(
            "CREATE TABLE IF NOT EXISTS tenancy_tenants (
                id            TEXT PRIMARY KEY NOT NULL,
                name          TEXT NOT NULL,
                admin_email   TEXT NOT NULL,
                status        TEXT NOT NULL,
                status_detail TEXT NOT NULL,
                database_url  TEXT,
                pooled_url    TEXT,
                external_ref  TEXT,
                tags          TEXT NOT NULL DEFAULT '[]',
                created_at    TEXT NOT NULL,
                updated_at    TEXT NOT NULL,
                revision      INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS tenancy_tenants_status ON tenancy_tenants (status);",
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
            definition: "TEXT",
            // Tenants ready before notices were recorded were told then: never again.
            backfill: Some(
                "UPDATE tenancy_tenants SET ready_notified_at = updated_at WHERE status = 'ready'",
            ),
        },
    ],
);

/// A [`TenantDirectory`](crate::TenantDirectory) in a SQLite database (table `tenancy_tenants`): the embedded
/// default, for one process or a handful on one machine.
///
/// ```no_run
/// use tenancy_core::{SqliteTenantDirectory, TenantDirectory, TenantFilter};
///
/// # async fn run() -> Result<(), tenancy_core::DirectoryError> {
/// let directory = SqliteTenantDirectory::connect("sqlite:tenants.db").await?;
/// let everyone = directory.list(&TenantFilter::all()).await?;
/// # Ok(()) }
/// ```
pub type SqliteTenantDirectory = SqlTenantDirectory<Sqlite>;

impl SqlTenantDirectory<Sqlite> {
    /// Opens (creating if missing) the SQLite database at `url` under the shared
    /// [`StorePoolOptions`] policy, and brings its table up to date.
    pub async fn connect(url: &str) -> Result<Self, DirectoryError> {
        let pool = StorePoolOptions::new()
            .create_if_missing(true)
            .open_sqlite(url)
            .await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (opened with [`StorePoolOptions`], possibly shared with
    /// other stores), creating or upgrading the table.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, DirectoryError> {
        SCHEMA.apply_sqlite(&pool).await?;
        Ok(Self { pool })
    }
}

/// Tags as JSON text; time as text.
const SQL: DirectorySql = DirectorySql {
    get: "SELECT id, name, admin_email, status, status_detail, database_url, pooled_url, \
          external_ref, tags, created_at, updated_at, revision, provisioning_notes, \
          ready_notified_at FROM tenancy_tenants WHERE id = $1",
    insert: "INSERT INTO tenancy_tenants (id, name, admin_email, status, status_detail, \
             database_url, pooled_url, external_ref, tags, created_at, updated_at, revision, \
             provisioning_notes, ready_notified_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO NOTHING",
    // An optimistic update: the row changes only if its revision is still the caller's.
    update: "UPDATE tenancy_tenants SET name = $2, admin_email = $3, status = $4, \
             status_detail = $5, database_url = $6, pooled_url = $7, external_ref = $8, \
             tags = $9, updated_at = $11, provisioning_notes = $13, ready_notified_at = $14, \
             revision = revision + 1 WHERE id = $1 AND revision = $12",
    list: "SELECT id, name, admin_email, status, status_detail, database_url, pooled_url, \
           external_ref, tags, created_at, updated_at, revision, provisioning_notes, \
           ready_notified_at FROM tenancy_tenants \
           WHERE id > $1 \
             AND ($2 = '[]' OR id IN (SELECT value FROM json_each($2))) \
             AND ($3 = '[]' OR EXISTS (SELECT 1 FROM json_each(tenancy_tenants.tags) t \
                                       WHERE t.value IN (SELECT value FROM json_each($3)))) \
             AND ($5 = '[]' OR status IN (SELECT value FROM json_each($5))) \
           ORDER BY id LIMIT COALESCE($4, -1)",
};

impl DirectoryEngine for Sqlite {
    #[allow(private_interfaces)] // sealed: only this crate names it
    const SQL: &'static DirectorySql = &SQL;

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}
