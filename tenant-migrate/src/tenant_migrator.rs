use std::sync::Arc;

use async_trait::async_trait;
#[cfg(feature = "postgres")]
use sqlx::PgConnection;
#[cfg(feature = "sqlite")]
use sqlx::SqliteConnection;
use tenancy_core::{BackendError, DatabaseTarget, MigrationReport, SchemaMigrator, TenantId};

#[cfg(any(feature = "postgres", feature = "sqlite"))]
use crate::engine::{self, Prior};
#[cfg(feature = "postgres")]
use crate::postgres::{PgBackend, PgSessionState};
#[cfg(feature = "sqlite")]
use crate::sqlite::SqliteBackend;
use crate::{
    MigrateError, MigrateOptions, MigrationOutcome, MigrationSession, MigrationSet, MigrationStatus,
};

/// Migrates one tenant database at a time against a shared [`MigrationSet`].
///
/// Cheap to clone (the set is shared) and safe to call for thousands of tenants
/// at once: the target-taking methods open one connection, do their work and
/// close it. The `*_postgres` / `*_sqlite` methods work on a connection the
/// caller already holds.
///
/// On PostgreSQL, [`apply`](Self::apply):
/// 1. reads the history in one query and returns at once when nothing is pending;
/// 2. refuses a dirty row, a checksum mismatch or an unknown version;
/// 3. takes the database's advisory lock (sqlx's key; waits at most
///    [`MigrateOptions::with_lock_wait`], then [`MigrateError::Locked`]) and
///    re-reads the history under it, in one query;
/// 4. runs each pending migration with its history row in one transaction, under
///    `SET LOCAL lock_timeout` / `statement_timeout`, sent as one request
///    (a `-- no-transaction` file runs, then is recorded);
/// 5. unlocks (in the last transaction's request when it can).
///
/// ```no_run
/// use tenancy_core::{DatabaseTarget, DatabaseUrl};
/// use tenant_migrate::{MigrationSet, TenantMigrator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let migrator = TenantMigrator::new(MigrationSet::from_dir("migrations")?);
/// let target = DatabaseTarget::new(DatabaseUrl::parse("postgres://app:pw@db.internal/tenant_acme")?);
///
/// let status = migrator.status(&target).await?;
/// if !status.is_up_to_date() {
///     let outcome = migrator.apply(&target).await?;
///     println!("{:?} -> {:?}", outcome.from_version, outcome.to_version);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TenantMigrator {
    set: Arc<MigrationSet>,
    options: MigrateOptions,
}

impl TenantMigrator {
    /// A migrator with default [`MigrateOptions`].
    pub fn new(set: impl Into<Arc<MigrationSet>>) -> Self {
        Self {
            set: set.into(),
            options: MigrateOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: MigrateOptions) -> Self {
        self.options = options;
        self
    }

    /// The migrations this migrator applies.
    pub fn migrations(&self) -> &MigrationSet {
        &self.set
    }

    /// The options in use.
    pub fn options(&self) -> &MigrateOptions {
        &self.options
    }

    /// Opens a [`MigrationSession`]: one connection for several operations.
    pub async fn connect(&self, target: &DatabaseTarget) -> Result<MigrationSession, MigrateError> {
        MigrationSession::open(self, target).await
    }

    /// Connects to the tenant database, applies every pending migration, disconnects.
    pub async fn apply(&self, target: &DatabaseTarget) -> Result<MigrationOutcome, MigrateError> {
        let mut session = self.connect(target).await?;
        let result = session.apply().await;
        session.close().await;
        result
    }

    /// Connects, reverts (newest first) every applied migration above `to_version`
    /// with its `.down.sql`, disconnects. `to_version = 0` reverts everything.
    pub async fn revert(
        &self,
        target: &DatabaseTarget,
        to_version: i64,
    ) -> Result<MigrationOutcome, MigrateError> {
        let mut session = self.connect(target).await?;
        let result = session.revert(to_version).await;
        session.close().await;
        result
    }

    /// Connects, reads the tenant's [`MigrationStatus`] in one query, disconnects.
    pub async fn status(&self, target: &DatabaseTarget) -> Result<MigrationStatus, MigrateError> {
        let mut session = self.connect(target).await?;
        let result = session.status().await;
        session.close().await;
        result
    }

    #[cfg(feature = "postgres")]
    /// [`apply`](Self::apply) on an open PostgreSQL connection.
    ///
    /// The connection gets its own timeouts back and the migration lock is released
    /// on success and on error. If the future is dropped mid-run, the lock (and
    /// perhaps an aborted transaction) stays with the connection until it closes:
    /// close it rather than return it to a pool.
    pub async fn apply_postgres(
        &self,
        conn: &mut PgConnection,
    ) -> Result<MigrationOutcome, MigrateError> {
        engine::apply(
            &mut PgBackend::new(conn, &mut PgSessionState::default()),
            &self.set,
            &self.options,
            None,
            Prior::Nothing,
        )
        .await
    }

    #[cfg(feature = "postgres")]
    /// [`revert`](Self::revert) on an open PostgreSQL connection.
    pub async fn revert_postgres(
        &self,
        conn: &mut PgConnection,
        to_version: i64,
    ) -> Result<MigrationOutcome, MigrateError> {
        engine::revert(
            &mut PgBackend::new(conn, &mut PgSessionState::default()),
            &self.set,
            &self.options,
            to_version,
            Prior::Nothing,
        )
        .await
    }

    #[cfg(feature = "postgres")]
    /// [`status`](Self::status) on an open PostgreSQL connection: one round trip.
    pub async fn status_postgres(
        &self,
        conn: &mut PgConnection,
    ) -> Result<MigrationStatus, MigrateError> {
        engine::status(
            &mut PgBackend::new(conn, &mut PgSessionState::default()),
            &self.set,
        )
        .await
    }

    #[cfg(feature = "sqlite")]
    /// [`apply`](Self::apply) on an open SQLite connection.
    pub async fn apply_sqlite(
        &self,
        conn: &mut SqliteConnection,
    ) -> Result<MigrationOutcome, MigrateError> {
        engine::apply(
            &mut SqliteBackend::new(conn, "sqlite"),
            &self.set,
            &self.options,
            None,
            Prior::Nothing,
        )
        .await
    }

    #[cfg(feature = "sqlite")]
    /// [`revert`](Self::revert) on an open SQLite connection.
    pub async fn revert_sqlite(
        &self,
        conn: &mut SqliteConnection,
        to_version: i64,
    ) -> Result<MigrationOutcome, MigrateError> {
        engine::revert(
            &mut SqliteBackend::new(conn, "sqlite"),
            &self.set,
            &self.options,
            to_version,
            Prior::Nothing,
        )
        .await
    }

    #[cfg(feature = "sqlite")]
    /// [`status`](Self::status) on an open SQLite connection.
    pub async fn status_sqlite(
        &self,
        conn: &mut SqliteConnection,
    ) -> Result<MigrationStatus, MigrateError> {
        engine::status(&mut SqliteBackend::new(conn, "sqlite"), &self.set).await
    }
}

/// The onboarding pipeline's view: apply everything, report transient failures
/// (network, lock busy, timeouts) as retryable.
#[async_trait]
impl SchemaMigrator for TenantMigrator {
    async fn migrate(
        &self,
        tenant: &TenantId,
        database: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        match self.apply(database).await {
            Ok(outcome) => Ok(outcome.into()),
            Err(error) => {
                tracing::warn!(%tenant, %error, "tenant migration failed");
                Err(error.into())
            }
        }
    }
}
