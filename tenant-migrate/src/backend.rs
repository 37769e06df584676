//! What the migration engine needs from one database connection.

use std::time::Duration;

use async_trait::async_trait;

use crate::history::HistorySnapshot;
use crate::{MigrateError, MigrateOptions, Migration, MigrationSet};

/// Which way a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Run the up SQL and insert the history row.
    Up,
    /// Run the down SQL and delete the history row.
    Down,
}

/// One migration about to run in one direction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step<'a> {
    pub(crate) migration: &'a Migration,
    pub(crate) direction: Direction,
    /// The operation's last step: the migration lock is released right after
    /// it, and a backend may release it in the same request (PostgreSQL does).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) last: bool,
}

impl Step<'_> {
    pub(crate) fn sql(&self) -> &str {
        match self.direction {
            Direction::Up => self.migration.sql(),
            Direction::Down => self.migration.down_sql().unwrap_or_default(),
        }
    }

    pub(crate) fn file(&self) -> &str {
        match self.direction {
            Direction::Up => self.migration.file(),
            Direction::Down => self.migration.down_file().unwrap_or_default(),
        }
    }

    pub(crate) fn no_tx(&self) -> bool {
        match self.direction {
            Direction::Up => self.migration.no_tx(),
            Direction::Down => self.migration.down_no_tx(),
        }
    }
}

/// A connection the engine drives: PostgreSQL or SQLite.
#[async_trait]
pub(crate) trait Backend: Send {
    /// Reads the whole history in one query; a missing table reads as empty.
    async fn read_history(&mut self) -> Result<HistorySnapshot, MigrateError>;
    /// Takes the database's migration lock, waiting at most `options.lock_wait()`.
    async fn lock(&mut self, options: &MigrateOptions) -> Result<(), MigrateError>;
    /// Takes the lock, then reads the history under it; a backend may do both in
    /// one request. If this fails, the lock may be held: release it.
    async fn lock_and_read(
        &mut self,
        options: &MigrateOptions,
    ) -> Result<HistorySnapshot, MigrateError> {
        self.lock(options).await?;
        self.read_history().await
    }
    /// Releases the migration lock.
    async fn unlock(&mut self) -> Result<(), MigrateError>;
    /// Whether this connection holds a lock that keeps other migrators out
    /// between operations (SQLite's lock lives only inside each step).
    fn holds_lock(&self) -> bool;
    /// Creates `_sqlx_migrations` if it does not exist.
    async fn ensure_history_table(&mut self) -> Result<(), MigrateError>;
    /// Runs one step and records it (insert or delete its row), atomically unless `no_tx`.
    async fn run(
        &mut self,
        step: Step<'_>,
        options: &MigrateOptions,
    ) -> Result<Duration, MigrateError>;
    /// Leaves `mark` on the history table with every up step this connection
    /// commits from now on (`None`: no more marks). By default, no marks.
    fn mark_commits(&mut self, _mark: Option<String>) {}
    /// Whether the history table carries `mark`; `None` when this connection
    /// cannot mark the database, so its absence means nothing. By default `None`.
    async fn carries_mark(&mut self, _mark: &str) -> Result<Option<bool>, MigrateError> {
        Ok(None)
    }
    /// Whether [`run_guarded`](Self::run_guarded) may be tried on this connection.
    fn applies_in_one_request(&self) -> bool {
        false
    }
    /// Runs one transactional up step in one request that takes the lock for
    /// its transaction and first checks that the history is exactly the clean
    /// history of `expected` in `set`; `Ok(None)` when the lock was held or the
    /// history differs (nothing changed). By default `Ok(None)`.
    async fn run_guarded(
        &mut self,
        _step: Step<'_>,
        _options: &MigrateOptions,
        _set: &MigrationSet,
        _expected: i64,
    ) -> Result<Option<Duration>, MigrateError> {
        Ok(None)
    }
}
