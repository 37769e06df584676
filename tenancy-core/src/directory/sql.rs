//! The tenant directory over either SQL engine: the logic written once, each engine
//! adding its statements (how it stores tags and time).

use std::fmt;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use time::OffsetDateTime;

use super::codec::{bind_tenant_row, missed_update, TenantRow};
use super::{DirectoryError, TenantDirectory, TenantFilter};
use crate::{Tenant, TenantId};

mod sealed {
    pub trait Sealed {}
}

/// The statements of one engine. Every one binds and reads tags as a JSON array
/// of strings, whatever the column holds.
#[derive(Debug)]
pub(crate) struct DirectorySql {
    /// `SELECT … WHERE id = $1`.
    pub(crate) get: &'static str,
    /// The 14 columns in `COLUMNS` order; nothing on a conflicting id.
    pub(crate) insert: &'static str,
    /// The 14 columns, `$12` the revision the caller had.
    pub(crate) update: &'static str,
    /// `$1` after id (`''` for the first page), `$2` ids (JSON), `$3` tags (JSON), `$4` limit (NULL: none),
    /// `$5` state names (JSON).
    pub(crate) list: &'static str,
}

/// A SQL engine the tenant directory runs on: PostgreSQL or SQLite (sealed).
pub trait DirectoryEngine: Database + sealed::Sealed {
    /// The engine's statements. (Sealed: only this crate names it.)
    #[doc(hidden)]
    #[allow(private_interfaces)]
    const SQL: &'static DirectorySql;

    /// How many rows a statement changed.
    #[doc(hidden)]
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}
#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

/// A [`TenantDirectory`] on a SQL database (table `tenancy_tenants`); see its two
/// forms, [`PostgresTenantDirectory`](crate::PostgresTenantDirectory) and
/// [`SqliteTenantDirectory`](crate::SqliteTenantDirectory).
pub struct SqlTenantDirectory<D: DirectoryEngine> {
    pub(super) pool: Pool<D>,
}

impl<D: DirectoryEngine> Clone for SqlTenantDirectory<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<D: DirectoryEngine> fmt::Debug for SqlTenantDirectory<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTenantDirectory")
            .field("engine", &D::NAME)
            .finish_non_exhaustive()
    }
}

impl<D: DirectoryEngine> SqlTenantDirectory<D> {
    /// The underlying pool.
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }
}

fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.into_iter().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

fn read<R>(row: &R) -> Result<Tenant, DirectoryError>
where
    R: Row,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> OffsetDateTime: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<OffsetDateTime>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r str: ColumnIndex<R>,
{
    let tags: String = row.try_get("tags")?;
    let id: String = row.try_get("id")?;
    let tags = serde_json::from_str(&tags).map_err(|e| DirectoryError::Corrupt {
        id: id.clone(),
        reason: format!("tags: {e}"),
    })?;
    let raw = TenantRow {
        id,
        name: row.try_get("name")?,
        admin_email: row.try_get("admin_email")?,
        status: row.try_get("status")?,
        status_detail: row.try_get("status_detail")?,
        database_url: row.try_get("database_url")?,
        pooled_url: row.try_get("pooled_url")?,
        external_ref: row.try_get("external_ref")?,
        provisioning_notes: row.try_get("provisioning_notes")?,
        ready_notified_at: row.try_get("ready_notified_at")?,
        tags,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        revision: row.try_get("revision")?,
    };
    raw.decode()
}

#[async_trait]
impl<D> TenantDirectory for SqlTenantDirectory<D>
where
    D: DirectoryEngine,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> Option<i64>: Encode<'q, D> + Type<D>,
    for<'q> OffsetDateTime: Encode<'q, D> + Type<D>,
    for<'q> Option<OffsetDateTime>: Encode<'q, D> + Type<D>,
    for<'r> String: Decode<'r, D>,
    for<'r> Option<String>: Decode<'r, D>,
    for<'r> i64: Decode<'r, D>,
    for<'r> OffsetDateTime: Decode<'r, D>,
    for<'r> Option<OffsetDateTime>: Decode<'r, D>,
    for<'r> &'r str: ColumnIndex<D::Row>,
{
    async fn insert(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        let row = TenantRow::encode(tenant)?;
        let tags = json_list(row.tags.iter().map(String::as_str));
        let done = bind_tenant_row(sqlx::query(D::SQL.insert), &row, tags)
            .execute(&self.pool)
            .await?;
        if D::rows_affected(&done) == 0 {
            return Err(DirectoryError::AlreadyExists(tenant.id.clone()));
        }
        Ok(tenant.clone())
    }

    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        let row = sqlx::query(D::SQL.get)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(read).transpose()
    }

    async fn update(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        let row = TenantRow::encode(tenant)?;
        let tags = json_list(row.tags.iter().map(String::as_str));
        let done = bind_tenant_row(sqlx::query(D::SQL.update), &row, tags)
            .execute(&self.pool)
            .await?;
        if D::rows_affected(&done) == 1 {
            let mut next = tenant.clone();
            next.revision += 1;
            return Ok(next);
        }
        Err(missed_update(self, tenant).await)
    }

    async fn list(&self, filter: &TenantFilter) -> Result<Vec<Tenant>, DirectoryError> {
        let rows = sqlx::query(D::SQL.list)
            // `id > ''` holds for every id and lets the engine range-scan the key.
            .bind(filter.after_id().map_or("", TenantId::as_str))
            .bind(json_list(filter.ids().iter().map(TenantId::as_str)))
            .bind(json_list(filter.tags().iter().map(String::as_str)))
            .bind(filter.page_limit().map(i64::from))
            .bind(json_list(filter.statuses().iter().map(String::as_str)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read).collect()
    }
}
