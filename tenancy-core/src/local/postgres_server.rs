use async_trait::async_trait;
use sqlx::{Connection, PgConnection};

use crate::{
    BackendError, DatabasePauser, DatabaseProvisioner, DatabaseTarget, DatabaseUrl, Tenant,
    TenantId,
};

/// One database per tenant on a PostgreSQL server you run: `CREATE DATABASE
/// <prefix><tenant id>` (hyphens become underscores), idempotent.
///
/// As a [`DatabasePauser`] it pauses a tenant's database with `ALTER DATABASE …
/// ALLOW_CONNECTIONS false` (which holds for every role, superusers included) and
/// closes the connections it has; resuming allows connections again.
///
/// `server` is a URL of the server with a role allowed to create databases
/// (any database name; `postgres` is usual). Tenant URLs are derived from it.
///
/// ```no_run
/// use tenancy_core::{DatabaseUrl, PostgresServerProvisioner};
///
/// let server = DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/postgres")?;
/// let provisioner = PostgresServerProvisioner::new(server).with_prefix("tenant_");
/// # Ok::<(), tenancy_core::DatabaseUrlError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PostgresServerProvisioner {
    server: DatabaseUrl,
    prefix: String,
}

/// PostgreSQL's error code for "database does not exist".
const UNDEFINED_DATABASE: &str = "3D000";

/// PostgreSQL's error codes for "database already exists": `42P04` when it existed
/// before, `23505` on the catalog's unique index when two creates race.
const ALREADY_EXISTS: [&str; 2] = ["42P04", "23505"];

impl PostgresServerProvisioner {
    /// Creates tenant databases on `server`, named `tenant_<id>`.
    pub fn new(server: DatabaseUrl) -> Self {
        Self {
            server,
            prefix: "tenant_".to_owned(),
        }
    }

    /// Sets the database-name prefix (lowercase letters, digits and `_` only;
    /// other characters are dropped).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        self
    }

    /// The database name of a tenant (at most 63 bytes, a PostgreSQL identifier).
    pub fn database_name(&self, tenant: &TenantId) -> String {
        let mut name = format!("{}{}", self.prefix, tenant.as_str().replace('-', "_"));
        name.truncate(63);
        name
    }

    fn target(&self, name: &str) -> DatabaseTarget {
        DatabaseTarget::new(self.server.with_database(name)).with_external_ref(name)
    }

    async fn admin(&self) -> Result<PgConnection, BackendError> {
        PgConnection::connect(self.server.expose())
            .await
            .map_err(BackendError::transient)
    }

    async fn exists(&self, admin: &mut PgConnection, name: &str) -> Result<bool, BackendError> {
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(admin)
            .await
            .map(|row| row.is_some())
            .map_err(BackendError::transient)
    }
}

#[async_trait]
impl DatabaseProvisioner for PostgresServerProvisioner {
    async fn provision(&self, tenant: &Tenant) -> Result<DatabaseTarget, BackendError> {
        let name = self.database_name(&tenant.id);
        let mut admin = self.admin().await?;
        if !self.exists(&mut admin, &name).await? {
            // The name is built from a validated tenant id and a filtered prefix.
            let created = sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .await;
            match created {
                Ok(_) => tracing::info!(tenant = %tenant.id, database = %name, "database created"),
                Err(sqlx::Error::Database(e))
                    if e.code()
                        .is_some_and(|code| ALREADY_EXISTS.contains(&code.as_ref())) => {}
                Err(error) => return Err(BackendError::transient(error)),
            }
        }
        let _ = admin.close().await;
        Ok(self.target(&name))
    }

    async fn find(&self, tenant: &TenantId) -> Result<Option<DatabaseTarget>, BackendError> {
        let name = self.database_name(tenant);
        let mut admin = self.admin().await?;
        let found = self.exists(&mut admin, &name).await?;
        let _ = admin.close().await;
        Ok(found.then(|| self.target(&name)))
    }

    async fn delete(&self, tenant: &TenantId) -> Result<(), BackendError> {
        let name = self.database_name(tenant);
        let mut admin = self.admin().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .map_err(BackendError::transient)?;
        let _ = admin.close().await;
        Ok(())
    }
}

impl PostgresServerProvisioner {
    /// Allows or refuses connections to the tenant's database; closes its open
    /// connections when refusing. A database that does not exist is left alone.
    async fn allow_connections(&self, tenant: &TenantId, allow: bool) -> Result<(), BackendError> {
        let name = self.database_name(tenant);
        let mut admin = self.admin().await?;
        // The name is built from a validated tenant id and a filtered prefix.
        let altered = sqlx::query(&format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS {allow}"
        ))
        .execute(&mut admin)
        .await;
        match altered {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNDEFINED_DATABASE) => {
                tracing::warn!(%tenant, database = %name, "the tenant's database does not exist; nothing to pause or resume");
            }
            Err(error) => return Err(BackendError::transient(error)),
        }
        if !allow {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&name)
            .execute(&mut admin)
            .await
            .map_err(BackendError::transient)?;
        }
        let _ = admin.close().await;
        Ok(())
    }
}

#[async_trait]
impl DatabasePauser for PostgresServerProvisioner {
    async fn pause(&self, tenant: &Tenant, _: &DatabaseTarget) -> Result<(), BackendError> {
        self.allow_connections(&tenant.id, false).await
    }

    async fn resume(&self, tenant: &Tenant, _: &DatabaseTarget) -> Result<(), BackendError> {
        self.allow_connections(&tenant.id, true).await
    }
}
