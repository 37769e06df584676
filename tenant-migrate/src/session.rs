use tenancy_core::DatabaseTarget;

use crate::connection::TenantConnection;
use crate::engine::{self, Prior};
use crate::{MigrateError, MigrationOutcome, MigrationStatus, TenantMigrator};

/// One open connection to one tenant database, for several operations (read the
/// status, then apply), then closed: what a fleet rollout holds per tenant job.
///
/// Opened by [`TenantMigrator::connect`]; owns its connection and a cheap clone of
/// the migrator, so it can be boxed and moved across tasks. If an operation's
/// future is dropped half way, drop the session too: the migration lock and any
/// open transaction end with the connection.
///
/// ```no_run
/// # use tenancy_core::{DatabaseTarget, DatabaseUrl};
/// # use tenant_migrate::{MigrationSet, TenantMigrator};
/// # async fn run(migrator: TenantMigrator, target: DatabaseTarget) -> Result<(), tenant_migrate::MigrateError> {
/// let mut session = migrator.connect(&target).await?;
/// let before = session.status().await?.current_version;
/// let outcome = session.apply_to(20240127).await?;
/// session.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MigrationSession {
    migrator: TenantMigrator,
    conn: TenantConnection,
    /// What the last operation read, for the next one to build on.
    prior: Prior,
}

impl MigrationSession {
    pub(crate) async fn open(
        migrator: &TenantMigrator,
        target: &DatabaseTarget,
    ) -> Result<Self, MigrateError> {
        let conn = TenantConnection::open(target, migrator.options()).await?;
        Ok(Self {
            migrator: migrator.clone(),
            conn,
            prior: Prior::Nothing,
        })
    }

    /// The tenant's [`MigrationStatus`], in one query.
    pub async fn status(&mut self) -> Result<MigrationStatus, MigrateError> {
        let status =
            engine::status(self.conn.backend().as_mut(), self.migrator.migrations()).await?;
        if !matches!(self.prior, Prior::Locked(_)) {
            self.prior = Prior::Read(status.clone());
        }
        Ok(status)
    }

    /// Takes the tenant's migration lock and reads the [`MigrationStatus`] under
    /// it (on PostgreSQL, one request where the history table exists). No other
    /// migrator can change the status until the next [`apply`](Self::apply) or
    /// [`revert`](Self::revert), which then neither lock nor read again, and
    /// release the lock; closing the session releases it too. (On SQLite, whose
    /// lock lives inside each step, this is [`status`](Self::status).)
    ///
    /// For a caller that records the version it starts from before migrating (a
    /// fleet rollout): one request fewer than [`status`](Self::status) then `apply`.
    ///
    /// Refuses, as `apply` would, a migration never applied whose version sorts
    /// below the latest applied one ([`MigrateError::PendingBelowApplied`], the
    /// lock released): a database already at a target version must not pass
    /// for done while it lacks one of the migrations below it.
    pub async fn lock_status(&mut self) -> Result<MigrationStatus, MigrateError> {
        let (set, options) = (self.migrator.migrations(), self.migrator.options());
        let mut backend = self.conn.backend();
        let (status, history) = match std::mem::take(&mut self.prior) {
            Prior::Locked(history) => (MigrationStatus::compute(set, &history), history),
            _ => engine::lock_status(backend.as_mut(), set, options).await?,
        };
        let held = backend.holds_lock();
        drop(backend);
        self.prior = if held {
            Prior::Locked(history)
        } else {
            Prior::Read(status.clone())
        };
        Ok(status)
    }

    /// Applies every pending migration.
    pub async fn apply(&mut self) -> Result<MigrationOutcome, MigrateError> {
        self.apply_until(None).await
    }

    /// Applies the pending migrations up to and including `version`.
    pub async fn apply_to(&mut self, version: i64) -> Result<MigrationOutcome, MigrateError> {
        self.apply_until(Some(version)).await
    }

    /// Reverts, newest first, every applied migration above `to_version` (`0`: all).
    pub async fn revert(&mut self, to_version: i64) -> Result<MigrationOutcome, MigrateError> {
        let prior = std::mem::take(&mut self.prior);
        let (set, options) = (self.migrator.migrations(), self.migrator.options());
        engine::revert(
            self.conn.backend().as_mut(),
            set,
            options,
            to_version,
            prior,
        )
        .await
    }

    /// Applies the one migration above `expected`, up to `version`, in a single
    /// request when the tenant's history is exactly every migration of the set
    /// up to `expected`, applied cleanly: the request takes the migration lock for
    /// its transaction (`READ COMMITTED`), checks the history under it, applies,
    /// records and commits. Across the internet this costs the connection plus
    /// one round trip, where [`apply_to`](Self::apply_to) costs two.
    ///
    /// `Ok(None)`, with nothing changed, when the history is another one, when
    /// another migrator holds the lock, or when one request cannot do it
    /// ([`can_apply_if_at`](Self::can_apply_if_at) is false): then call
    /// [`apply_to`](Self::apply_to), which waits for the lock and reads.
    pub async fn apply_if_at(
        &mut self,
        expected: i64,
        version: i64,
    ) -> Result<Option<MigrationOutcome>, MigrateError> {
        let (set, options) = (self.migrator.migrations(), self.migrator.options());
        let mut backend = self.conn.backend();
        let outcome =
            engine::apply_if_at(backend.as_mut(), set, options, expected, version).await?;
        drop(backend);
        if outcome.is_some() {
            self.prior = Prior::Nothing;
        }
        Ok(outcome)
    }

    /// Whether [`apply_if_at`](Self::apply_if_at) can try: a PostgreSQL
    /// database, exactly one migration above `expected` up to `version`, run in
    /// a transaction, and no lock held by this session.
    pub fn can_apply_if_at(&mut self, expected: i64, version: i64) -> bool {
        let set = self.migrator.migrations();
        engine::one_request_step(self.conn.backend().as_ref(), set, expected, version).is_some()
    }

    /// Leaves `mark` as the comment of the tenant's `_sqlx_migrations` table, in
    /// the same transaction, with every migration this session applies from now
    /// on (PostgreSQL, where the session's role owns the table; elsewhere nothing).
    ///
    /// A fleet rollout marks its commits with its id, so that a runner resuming
    /// after a crash can ask [`carries_mark`](Self::carries_mark) whether the
    /// rollout changed this tenant.
    pub fn mark_commits(&mut self, mark: impl Into<String>) {
        self.conn.backend().mark_commits(Some(mark.into()));
    }

    /// Whether the tenant's history table carries `mark` (one query): `None`
    /// when this session cannot mark the database (SQLite, or a role that does
    /// not own the table), so that no answer can be read from its absence.
    pub async fn carries_mark(&mut self, mark: &str) -> Result<Option<bool>, MigrateError> {
        self.conn.backend().carries_mark(mark).await
    }

    /// Closes the connection (dropping the session closes it too, less politely).
    pub async fn close(self) {
        self.conn.close().await;
    }

    async fn apply_until(&mut self, until: Option<i64>) -> Result<MigrationOutcome, MigrateError> {
        let prior = std::mem::take(&mut self.prior);
        let (set, options) = (self.migrator.migrations(), self.migrator.options());
        engine::apply(self.conn.backend().as_mut(), set, options, until, prior).await
    }
}
