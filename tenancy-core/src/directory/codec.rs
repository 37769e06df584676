//! The row shape shared by the SQL stores, and the pieces of their queries that match.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::DirectoryError;
use crate::{DatabaseTarget, DatabaseUrl, EmailAddress, Tenant, TenantId, TenantStatus};

/// A tenant as stored in a SQL row.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct TenantRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) admin_email: String,
    pub(crate) status: String,
    pub(crate) status_detail: String,
    pub(crate) database_url: Option<String>,
    pub(crate) pooled_url: Option<String>,
    pub(crate) external_ref: Option<String>,
    /// The database's provisioning notes as a JSON array; `NULL` when there are none.
    pub(crate) provisioning_notes: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) ready_notified_at: Option<OffsetDateTime>,
    pub(crate) revision: i64,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl TenantRow {
    pub(crate) fn encode(tenant: &Tenant) -> Result<Self, DirectoryError> {
        let status_detail =
            serde_json::to_string(&tenant.status).map_err(|e| DirectoryError::Corrupt {
                id: tenant.id.to_string(),
                reason: e.to_string(),
            })?;
        let db = tenant.database.as_ref();
        Ok(Self {
            id: tenant.id.to_string(),
            name: tenant.name.clone(),
            admin_email: tenant.admin_email.to_string(),
            status: tenant.status.name().to_owned(),
            status_detail,
            database_url: db.map(|d| d.url.expose().to_owned()),
            pooled_url: db
                .and_then(|d| d.transaction_pooler_url.as_ref())
                .map(|u| u.expose().to_owned()),
            external_ref: db.and_then(|d| d.external_ref.clone()),
            provisioning_notes: db
                .filter(|d| !d.provisioning_notes.is_empty())
                .map(|d| serde_json::to_string(&d.provisioning_notes))
                .transpose()
                .map_err(|e| DirectoryError::Corrupt {
                    id: tenant.id.to_string(),
                    reason: e.to_string(),
                })?,
            tags: tenant.tags.iter().cloned().collect(),
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
            ready_notified_at: tenant.ready_notified_at,
            revision: i64::try_from(tenant.revision).unwrap_or(i64::MAX),
        })
    }

    pub(crate) fn decode(self) -> Result<Tenant, DirectoryError> {
        let corrupt = |reason: String| DirectoryError::Corrupt {
            id: self.id.clone(),
            reason,
        };
        let id = TenantId::new(self.id.clone()).map_err(|e| corrupt(e.to_string()))?;
        let admin_email =
            EmailAddress::new(&self.admin_email).map_err(|e| corrupt(e.to_string()))?;
        let status: TenantStatus = serde_json::from_str(&self.status_detail)
            .map_err(|e| corrupt(format!("status: {e}")))?;
        let parse_url = |raw: &str| DatabaseUrl::parse(raw).map_err(|e| corrupt(e.to_string()));
        let database = match &self.database_url {
            None => None,
            Some(raw) => {
                let mut target = DatabaseTarget::new(parse_url(raw)?);
                if let Some(pooled) = &self.pooled_url {
                    target = target.with_transaction_pooler_url(parse_url(pooled)?);
                }
                if let Some(external) = &self.external_ref {
                    target = target.with_external_ref(external.clone());
                }
                if let Some(notes) = &self.provisioning_notes {
                    target.provisioning_notes = serde_json::from_str(notes)
                        .map_err(|e| corrupt(format!("provisioning_notes: {e}")))?;
                }
                Some(target)
            }
        };
        Ok(Tenant {
            id,
            name: self.name,
            admin_email,
            status,
            database,
            tags: self.tags.into_iter().collect::<BTreeSet<_>>(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            ready_notified_at: self.ready_notified_at,
            revision: u64::try_from(self.revision).unwrap_or(0),
        })
    }
}

/// Binds a [`TenantRow`]'s 14 columns in table order (`id` … `ready_notified_at`) (`$1`/`?1` … `$14`/`?14`), with
/// `tags` as the store encodes them (an array in PostgreSQL, JSON text in SQLite).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn bind_tenant_row<'q, D, T>(
    query: sqlx::query::Query<'q, D, <D as sqlx::Database>::Arguments<'q>>,
    row: &'q TenantRow,
    tags: T,
) -> sqlx::query::Query<'q, D, <D as sqlx::Database>::Arguments<'q>>
where
    D: sqlx::Database,
    T: 'q + sqlx::Encode<'q, D> + sqlx::Type<D>,
    &'q str: sqlx::Encode<'q, D> + sqlx::Type<D>,
    Option<&'q str>: sqlx::Encode<'q, D> + sqlx::Type<D>,
    i64: sqlx::Encode<'q, D> + sqlx::Type<D>,
    OffsetDateTime: sqlx::Encode<'q, D> + sqlx::Type<D>,
    Option<OffsetDateTime>: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    query
        .bind(row.id.as_str())
        .bind(row.name.as_str())
        .bind(row.admin_email.as_str())
        .bind(row.status.as_str())
        .bind(row.status_detail.as_str())
        .bind(row.database_url.as_deref())
        .bind(row.pooled_url.as_deref())
        .bind(row.external_ref.as_deref())
        .bind(tags)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.revision)
        .bind(row.provisioning_notes.as_deref())
        .bind(row.ready_notified_at)
}

/// Why an optimistic update touched no row: the tenant is gone, or its revision moved.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) async fn missed_update(
    directory: &dyn super::TenantDirectory,
    tenant: &Tenant,
) -> DirectoryError {
    match directory.get(&tenant.id).await {
        Ok(None) => DirectoryError::NotFound(tenant.id.clone()),
        Ok(Some(_)) => DirectoryError::Conflict {
            id: tenant.id.clone(),
            revision: tenant.revision,
        },
        Err(error) => error,
    }
}
