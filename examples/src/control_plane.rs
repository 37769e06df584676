//! The control plane behind `--state`: one database (SQLite by default, PostgreSQL
//! accepted) holding the tenant directory and the billing state, plus the provider of
//! tenant databases.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stripe_billing::{BillingStore, PostgresBillingStore, SqliteBillingStore};
use supabase_mgmt::{
    DatabasePasswords, ManagementClient, SupabaseAdminUserCreator, SupabaseProjectPauser,
    SupabaseProvisioner, WaitOptions,
};
use tenancy_core::persistence::{StorePool, StorePoolOptions};
use tenancy_core::{
    AdminUserCreator, DatabaseKind, DatabasePauser, DatabaseProvisioner, DatabaseUrl,
    LocalAdminUserCreator, PostgresServerProvisioner, PostgresTenantDirectory,
    SqliteFileProvisioner, SqliteTenantDirectory, TenantDirectory,
};
use tenant_migrate::rollout::store::{PostgresRolloutStore, RolloutStore, SqliteRolloutStore};

use crate::config::SupabaseConfig;

/// Why the control plane could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlPlaneError {
    /// `--state` is not a usable database URL.
    #[error("--state: {0}")]
    StateUrl(#[from] tenancy_core::DatabaseUrlError),
    /// The state database could not be opened.
    #[error(
        "could not open the state database {url}: {source}; check that it exists and is reachable"
    )]
    Open {
        /// The URL (password redacted).
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A store could not create its tables.
    #[error("could not prepare the state database: {0}")]
    Schema(String),
    /// The Supabase client could not be built.
    #[error("Supabase configuration: {0}")]
    Supabase(String),
}

/// The stores of the control plane.
#[derive(Clone)]
pub struct ControlPlane {
    /// The state database's URL.
    pub state_url: DatabaseUrl,
    /// The state database's pool, shared by the stores.
    pub pool: StorePool,
    /// Tenant records.
    pub directory: Arc<dyn TenantDirectory>,
    /// Billing state, processed event ids and the effect outbox.
    pub billing: Arc<dyn BillingStore>,
    /// Rollouts and their per-tenant states.
    pub rollouts: Arc<dyn RolloutStore>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("state_url", &self.state_url)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// The file of a SQLite `state_url` that does not exist (`None` for PostgreSQL,
    /// `:memory:`, or a file that is there): for commands that must not create a
    /// state database because of a typo in its path.
    pub fn missing_file(state_url: &str) -> Option<PathBuf> {
        use std::str::FromStr;
        let url = DatabaseUrl::parse(state_url).ok()?;
        if url.kind() != tenancy_core::DatabaseKind::Sqlite {
            return None;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose()).ok()?;
        let path = options.get_filename();
        let in_memory = path.as_os_str().is_empty() || path == Path::new(":memory:");
        (!in_memory && !path.exists()).then(|| path.to_owned())
    }

    /// Opens (creating if needed) the stores in the database at `state_url`: one pool
    /// under tenancy-core's persistence policy, shared by every store.
    pub async fn open(state_url: &str) -> Result<Self, ControlPlaneError> {
        let url = DatabaseUrl::parse(state_url)?;
        let pool = StorePoolOptions::new()
            .create_if_missing(true)
            .open(&url)
            .await
            .map_err(|source| ControlPlaneError::Open {
                url: url.to_string(),
                source,
            })?;
        let (directory, billing, rollouts) =
            stores(&pool).await.map_err(ControlPlaneError::Schema)?;
        adopt_parked_events(&pool)
            .await
            .map_err(|e| ControlPlaneError::Schema(e.to_string()))?;
        Ok(Self {
            state_url: url,
            pool,
            directory,
            billing,
            rollouts,
        })
    }

    /// The folder that holds tenant SQLite files when the state is SQLite: beside the state file.
    pub fn tenant_folder(&self) -> PathBuf {
        self.state_folder().join("tenants")
    }

    /// The folder tenants' exports go to unless `TENANT_EXPORT_DIR` says otherwise:
    /// `exports` beside a SQLite state file, `./exports` for a PostgreSQL state.
    pub fn export_folder(&self) -> PathBuf {
        self.state_folder().join("exports")
    }

    fn state_folder(&self) -> PathBuf {
        if self.state_url.kind() != DatabaseKind::Sqlite {
            return PathBuf::from(".");
        }
        let state = self.state_url.database_name().unwrap_or("tenancy.db");
        Path::new(state)
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf()
    }
}

type Stores = (
    Arc<dyn TenantDirectory>,
    Arc<dyn BillingStore>,
    Arc<dyn RolloutStore>,
);

/// The control plane's stores, on one pool.
async fn stores(pool: &StorePool) -> Result<Stores, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    Ok(match pool {
        StorePool::Postgres(pool) => (
            Arc::new(
                PostgresTenantDirectory::from_pool(pool.clone())
                    .await
                    .map_err(|e| text(&e))?,
            ),
            Arc::new(
                PostgresBillingStore::from_pool(pool.clone())
                    .await
                    .map_err(|e| text(&e))?,
            ),
            Arc::new(
                PostgresRolloutStore::from_pool(pool.clone())
                    .await
                    .map_err(|e| text(&e))?,
            ),
        ),
        StorePool::Sqlite(pool) => (
            Arc::new(
                SqliteTenantDirectory::from_pool(pool.clone())
                    .await
                    .map_err(|e| text(&e))?,
            ),
            Arc::new(
                SqliteBillingStore::from_pool(pool.clone())
                    .await
                    .map_err(|e| text(&e))?,
            ),
            Arc::new(
                SqliteRolloutStore::from_pool(pool.clone())
                    .await
                    .map_err(|e| text(&e))?,
            ),
        ),
        other => return Err(format!("no store for a {} control plane", other.kind())),
    })
}

/// Moves the Stripe events that earlier versions of this service parked in their own
/// table (`tenancy_parked_events`) into the billing store's, then drops that table:
/// they were acknowledged to Stripe, which will not send them again. (`WHERE true`
/// lets SQLite tell the upsert from a join.)
async fn adopt_parked_events(pool: &StorePool) -> Result<(), sqlx::Error> {
    const ADOPT: &str =
        "INSERT INTO billing_parked_events (event_id, customer_id, body, parked_at) \
        SELECT event_id, customer_id, body, parked_at FROM tenancy_parked_events WHERE true \
        ON CONFLICT (event_id) DO NOTHING;
        DROP TABLE tenancy_parked_events";
    if !pool.table_exists("tenancy_parked_events").await? {
        return Ok(());
    }
    let moved = pool.execute_script(ADOPT).await?;
    tracing::info!(
        events = moved,
        "moved parked Stripe events into the billing store"
    );
    Ok(())
}

/// Where tenant databases come from, and who creates their first admin user.
#[derive(Clone)]
pub struct TenantDatabases {
    /// Creates, finds and deletes tenant databases.
    pub provisioner: Arc<dyn DatabaseProvisioner>,
    /// Creates each tenant's first admin user.
    pub admins: Arc<dyn AdminUserCreator>,
    /// A short name for logs: `supabase`, `postgres` or `sqlite`.
    pub provider: &'static str,
}

impl std::fmt::Debug for TenantDatabases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDatabases")
            .field("provider", &self.provider)
            .finish()
    }
}

impl TenantDatabases {
    /// Supabase when configured; otherwise one database per tenant on the state's
    /// PostgreSQL server, or one SQLite file per tenant beside a SQLite state.
    pub fn choose(
        supabase: Option<&SupabaseConfig>,
        plane: &ControlPlane,
    ) -> Result<Self, ControlPlaneError> {
        if let Some(config) = supabase {
            return supabase_databases(config, None);
        }
        Ok(match plane.state_url.kind() {
            DatabaseKind::Postgres => Self {
                provisioner: Arc::new(PostgresServerProvisioner::new(plane.state_url.clone())),
                admins: Arc::new(LocalAdminUserCreator),
                provider: "postgres",
            },
            _ => Self::sqlite_files(plane.tenant_folder()),
        })
    }

    /// One SQLite file per tenant in `folder`.
    pub fn sqlite_files(folder: PathBuf) -> Self {
        Self {
            provisioner: Arc::new(SqliteFileProvisioner::new(folder)),
            admins: Arc::new(LocalAdminUserCreator),
            provider: "sqlite",
        }
    }
}

/// What pauses tenant databases during offboarding's retention, matching
/// [`TenantDatabases::choose`]: Supabase projects paused, databases on the state's
/// PostgreSQL server refusing connections, or SQLite files moved aside.
pub fn database_pauser(
    supabase: Option<&SupabaseConfig>,
    plane: &ControlPlane,
) -> Result<Arc<dyn DatabasePauser>, ControlPlaneError> {
    if let Some(config) = supabase {
        let client = management_client(config)?;
        return Ok(Arc::new(SupabaseProjectPauser::new(client)));
    }
    Ok(match plane.state_url.kind() {
        DatabaseKind::Postgres => Arc::new(PostgresServerProvisioner::new(plane.state_url.clone())),
        _ => Arc::new(SqliteFileProvisioner::new(plane.tenant_folder())),
    })
}

fn management_client(config: &SupabaseConfig) -> Result<ManagementClient, ControlPlaneError> {
    let mut client = ManagementClient::builder(config.access_token.clone());
    if let Some(api_url) = &config.api_url {
        client = client.base_url(api_url.clone());
    }
    client
        .build()
        .map_err(|e| ControlPlaneError::Supabase(e.to_string()))
}

/// Tenant databases on Supabase: one project per tenant, its first admin user through
/// the project's Auth admin API. `progress` sees each readiness poll (for a spinner).
pub fn supabase_databases(
    config: &SupabaseConfig,
    progress: Option<supabase_mgmt::ProgressCallback>,
) -> Result<TenantDatabases, ControlPlaneError> {
    let error = |e: supabase_mgmt::ManagementError| ControlPlaneError::Supabase(e.to_string());
    let client = management_client(config)?;
    let passwords = DatabasePasswords::derived(config.password_secret.clone()).map_err(error)?;
    let mut wait = WaitOptions::new(std::time::Duration::from_secs(600));
    if let Some(progress) = progress {
        wait = wait.on_progress(move |p| progress(p));
    }
    let mut provisioner =
        SupabaseProvisioner::builder(client.clone(), &config.organization_slug, passwords)
            .wait(wait);
    if let Some(region) = &config.region {
        provisioner = provisioner.region(region.clone());
    }
    if let Some(size) = &config.instance_size {
        provisioner = provisioner.instance_size(size.clone());
    }
    let provisioner = provisioner.build().map_err(error)?;
    let mut admins = SupabaseAdminUserCreator::new(client);
    if let Some(template) = &config.project_url_template {
        admins = admins
            .with_project_url_template(template.clone())
            .map_err(error)?;
    }
    Ok(TenantDatabases {
        provisioner: Arc::new(provisioner),
        admins: Arc::new(admins),
        provider: "supabase",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_parked_by_an_earlier_version_move_into_the_billing_store() {
        let dir = std::env::temp_dir().join(format!("tk-adopt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}?mode=rwc", dir.join("control.db").display());
        let old = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE tenancy_parked_events (event_id TEXT PRIMARY KEY, customer_id TEXT, \
             body TEXT NOT NULL, parked_at BIGINT NOT NULL);
             INSERT INTO tenancy_parked_events VALUES ('evt_1', 'cus_1', '{}', 1767225600)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;

        let plane = ControlPlane::open(&url).await.unwrap();
        let parked = plane.billing.parked(None, None, 10).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(
            (
                parked[0].event_id.as_str(),
                parked[0].customer_id.as_deref()
            ),
            ("evt_1", Some("cus_1"))
        );
        // Opening again finds nothing more to move.
        let again = ControlPlane::open(&url).await.unwrap();
        assert_eq!(again.billing.parked(None, None, 10).await.unwrap().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
