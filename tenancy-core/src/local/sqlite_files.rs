use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{BackendError, DatabaseProvisioner, DatabaseTarget, DatabaseUrl, Tenant, TenantId};

/// One SQLite file per tenant, `<folder>/<tenant id>.db`: the embedded default,
/// with no server at all.
///
/// ```no_run
/// use tenancy_core::SqliteFileProvisioner;
///
/// let provisioner = SqliteFileProvisioner::new("./tenants");
/// ```
#[derive(Debug, Clone)]
pub struct SqliteFileProvisioner {
    folder: PathBuf,
}

impl SqliteFileProvisioner {
    /// Keeps tenant databases in `folder` (created when needed).
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            folder: folder.into(),
        }
    }

    /// The file of a tenant's database.
    pub fn path_of(&self, tenant: &TenantId) -> PathBuf {
        self.folder.join(format!("{tenant}.db"))
    }

    fn target(path: &Path) -> Result<DatabaseTarget, BackendError> {
        let url = DatabaseUrl::parse(&format!("sqlite:{}", path.display()))
            .map_err(BackendError::permanent)?;
        Ok(DatabaseTarget::new(url).with_external_ref(path.display().to_string()))
    }
}

#[async_trait]
impl DatabaseProvisioner for SqliteFileProvisioner {
    async fn provision(&self, tenant: &Tenant) -> Result<DatabaseTarget, BackendError> {
        tokio::fs::create_dir_all(&self.folder)
            .await
            .map_err(BackendError::permanent)?;
        let path = self.path_of(&tenant.id);
        let target = Self::target(&path)?;
        let connection = SqliteConnectOptions::from_str(target.url.expose())
            .map_err(BackendError::permanent)?
            .create_if_missing(true)
            .connect()
            .await
            .map_err(BackendError::transient)?;
        connection.close().await.map_err(BackendError::transient)?;
        Ok(target)
    }

    async fn find(&self, tenant: &TenantId) -> Result<Option<DatabaseTarget>, BackendError> {
        let path = self.path_of(tenant);
        match tokio::fs::try_exists(&path).await {
            Ok(true) => Self::target(&path).map(Some),
            Ok(false) => Ok(None),
            Err(error) => Err(BackendError::transient(error)),
        }
    }

    async fn delete(&self, tenant: &TenantId) -> Result<(), BackendError> {
        let path = self.path_of(tenant);
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            match tokio::fs::remove_file(&file).await {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(BackendError::transient(error)),
            }
        }
        Ok(())
    }
}
