use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row;

use super::codec::{bind_tenant_row, missed_update, TenantRow, COLUMNS};
use super::{DirectoryError, TenantDirectory, TenantFilter};
use crate::persistence::{SchemaStep, StorePoolOptions, StoreSchema};
use crate::{Tenant, TenantId};

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

/// An optimistic update: the row changes only if its revision is still the caller's.
const UPDATE: &str = "UPDATE tenancy_tenants SET name = $2, admin_email = $3, status = $4, \
    status_detail = $5, database_url = $6, pooled_url = $7, external_ref = $8, tags = $9, \
    updated_at = $11, provisioning_notes = $13, ready_notified_at = $14, revision = revision + 1 WHERE id = $1 AND revision = $12";

/// A [`TenantDirectory`] in PostgreSQL (table `tenancy_tenants`): the control plane
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
#[derive(Debug, Clone)]
pub struct PostgresTenantDirectory {
    pool: PgPool,
}

impl PostgresTenantDirectory {
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

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn read(row: &PgRow) -> Result<Tenant, DirectoryError> {
    let raw = TenantRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        admin_email: row.try_get("admin_email")?,
        status: row.try_get("status")?,
        status_detail: row.try_get("status_detail")?,
        database_url: row.try_get("database_url")?,
        pooled_url: row.try_get("pooled_url")?,
        external_ref: row.try_get("external_ref")?,
        provisioning_notes: row.try_get("provisioning_notes")?,
        ready_notified_at: row.try_get("ready_notified_at")?,
        tags: row.try_get("tags")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        revision: row.try_get("revision")?,
    };
    raw.decode()
}

#[async_trait]
impl TenantDirectory for PostgresTenantDirectory {
    async fn insert(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        let row = TenantRow::encode(tenant)?;
        let sql = format!(
            "INSERT INTO tenancy_tenants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING"
        );
        let query = bind_tenant_row!(sqlx::query(&sql), row, &row.tags);
        if query.execute(&self.pool).await?.rows_affected() == 0 {
            return Err(DirectoryError::AlreadyExists(tenant.id.clone()));
        }
        Ok(tenant.clone())
    }

    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tenancy_tenants WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(read).transpose()
    }

    async fn update(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        let row = TenantRow::encode(tenant)?;
        let query = bind_tenant_row!(sqlx::query(UPDATE), row, &row.tags);
        if query.execute(&self.pool).await?.rows_affected() == 1 {
            let mut next = tenant.clone();
            next.revision += 1;
            return Ok(next);
        }
        Err(missed_update(self, tenant).await)
    }

    async fn list(&self, filter: &TenantFilter) -> Result<Vec<Tenant>, DirectoryError> {
        let ids: Vec<&str> = filter.ids().iter().map(TenantId::as_str).collect();
        let tags: Vec<&str> = filter.tags().iter().map(String::as_str).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tenancy_tenants \
             WHERE ($1::text IS NULL OR id > $1) \
               AND (cardinality($2::text[]) = 0 OR id = ANY($2)) \
               AND (cardinality($3::text[]) = 0 OR tags && $3) \
             ORDER BY id LIMIT $4"
        ))
        .bind(filter.after_id().map(TenantId::as_str))
        .bind(&ids)
        .bind(&tags)
        .bind(filter.page_limit().map(i64::from))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read).collect()
    }
}
