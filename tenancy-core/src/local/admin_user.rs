use async_trait::async_trait;
use sqlx::Connection;
use time::OffsetDateTime;

use crate::{AdminUser, AdminUserCreator, BackendError, DatabaseKind, DatabaseTarget, Tenant};

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tenant_admin_users (\
    email TEXT PRIMARY KEY NOT NULL, created_at TEXT NOT NULL)";

/// Records the tenant's first admin user as a row of `tenant_admin_users` in the
/// tenant's own database (PostgreSQL or SQLite): the stand-in for an auth service
/// when running locally. Idempotent: an existing row is reported with `created: false`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalAdminUserCreator;

#[async_trait]
impl AdminUserCreator for LocalAdminUserCreator {
    async fn create_admin(
        &self,
        tenant: &Tenant,
        database: &DatabaseTarget,
    ) -> Result<AdminUser, BackendError> {
        let email = tenant.admin_email.as_str();
        let now = OffsetDateTime::now_utc().to_string();
        let created = match database.kind() {
            #[cfg(feature = "postgres")]
            DatabaseKind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(database.url.expose())
                    .await
                    .map_err(BackendError::transient)?;
                sqlx::query(CREATE_TABLE)
                    .execute(&mut conn)
                    .await
                    .map_err(BackendError::transient)?;
                let inserted = sqlx::query(
                    "INSERT INTO tenant_admin_users (email, created_at) VALUES ($1, $2) \
                     ON CONFLICT (email) DO NOTHING",
                )
                .bind(email)
                .bind(&now)
                .execute(&mut conn)
                .await
                .map_err(BackendError::transient)?;
                let _ = conn.close().await;
                inserted.rows_affected() == 1
            }
            #[cfg(feature = "sqlite")]
            DatabaseKind::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(database.url.expose())
                    .await
                    .map_err(BackendError::transient)?;
                sqlx::query(CREATE_TABLE)
                    .execute(&mut conn)
                    .await
                    .map_err(BackendError::transient)?;
                let inserted = sqlx::query(
                    "INSERT INTO tenant_admin_users (email, created_at) VALUES (?, ?) \
                     ON CONFLICT (email) DO NOTHING",
                )
                .bind(email)
                .bind(&now)
                .execute(&mut conn)
                .await
                .map_err(BackendError::transient)?;
                let _ = conn.close().await;
                inserted.rows_affected() == 1
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(BackendError::permanent(format!(
                    "{other} databases need the `{other}` feature of tenancy-core"
                )))
            }
        };
        Ok(AdminUser::new(email, tenant.admin_email.clone(), created))
    }
}
