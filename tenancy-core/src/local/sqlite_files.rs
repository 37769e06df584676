use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::with_suffix;
use crate::{
    BackendError, DatabasePauser, DatabaseProvisioner, DatabaseTarget, DatabaseUrl, Tenant,
    TenantId,
};

/// One SQLite file per tenant, `<folder>/<tenant id>.db`: the embedded default,
/// with no server at all.
///
/// As a [`DatabasePauser`] it pauses a tenant's database by moving its files aside
/// to `<tenant id>.db.paused` (with their `-wal` and `-shm` companions), so nothing
/// opens it by its URL, and moves them back to resume. A connection opened before
/// the pause keeps working until it closes: stop the tenant's traffic first.
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

    /// Where a paused tenant's database file is kept.
    pub fn paused_path_of(&self, tenant: &TenantId) -> PathBuf {
        self.folder.join(format!("{tenant}.db.paused"))
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
        for path in [self.path_of(tenant), self.paused_path_of(tenant)] {
            for suffix in SUFFIXES {
                match tokio::fs::remove_file(with_suffix(&path, suffix)).await {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(BackendError::transient(error)),
                }
            }
        }
        Ok(())
    }
}

/// A SQLite database's files: the database, its write-ahead log and shared memory.
const SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

/// Moves a database's files from `from` to `to`; nothing to move when `from` is
/// gone and `to` is there (an earlier call did it).
async fn move_database(from: &Path, to: &Path) -> Result<(), BackendError> {
    let exists = |path: PathBuf| async move {
        tokio::fs::try_exists(&path)
            .await
            .map_err(BackendError::transient)
    };
    if !exists(from.to_owned()).await? {
        if exists(to.to_owned()).await? {
            return Ok(());
        }
        return Err(BackendError::permanent(format!(
            "neither {} nor {} exists; the tenant's database is gone",
            from.display(),
            to.display()
        )));
    }
    // The database file last: it is what says where the database is.
    for suffix in SUFFIXES.iter().rev() {
        match tokio::fs::rename(with_suffix(from, suffix), with_suffix(to, suffix)).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(BackendError::transient(error)),
        }
    }
    Ok(())
}

#[async_trait]
impl DatabasePauser for SqliteFileProvisioner {
    async fn pause(&self, tenant: &Tenant, _: &DatabaseTarget) -> Result<(), BackendError> {
        move_database(&self.path_of(&tenant.id), &self.paused_path_of(&tenant.id)).await
    }

    async fn resume(&self, tenant: &Tenant, _: &DatabaseTarget) -> Result<(), BackendError> {
        move_database(&self.paused_path_of(&tenant.id), &self.path_of(&tenant.id)).await
    }
}
