//! The engine's backend on a SQLite connection: the same history table, no
//! advisory lock. Each step runs in a `BEGIN IMMEDIATE` transaction (one writer at
//! a time) that first checks the history again: a step another migrator did while
//! this one waited ends in [`MigrateError::Locked`], never in running it twice.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::{Connection, Row, SqliteConnection};

use crate::backend::{Backend, Direction, Step};
use crate::error::is_connection_failure;
use crate::history::{HistoryRow, HistorySnapshot, DELETE_ROW, INSERT_ROW, SQLITE_DDL};
use crate::{MigrateError, MigrateOptions};

const READ_HISTORY: &str =
    "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version";

const IS_RECORDED: &str = "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1)";

/// A SQLite connection driven by the engine.
#[derive(Debug)]
pub(crate) struct SqliteBackend<'c> {
    conn: &'c mut SqliteConnection,
    database: String,
}

impl<'c> SqliteBackend<'c> {
    pub(crate) fn new(conn: &'c mut SqliteConnection, database: impl Into<String>) -> Self {
        Self {
            conn,
            database: database.into(),
        }
    }

    fn bookkeeping_error(&self, during: &'static str, source: sqlx::Error) -> MigrateError {
        MigrateError::History {
            database: self.database.clone(),
            during,
            source: Box::new(source),
        }
    }

    fn step_error(&self, step: &Step<'_>, source: sqlx::Error) -> MigrateError {
        if is_connection_failure(&source) {
            return MigrateError::ConnectionLost {
                database: self.database.clone(),
                during: format!(
                    "running migration {} ({})",
                    step.migration.version(),
                    step.file()
                ),
                source: Box::new(source),
            };
        }
        let (code, message) = match &source {
            sqlx::Error::Database(db) => {
                (db.code().map(|c| c.into_owned()), db.message().to_owned())
            }
            other => (None, other.to_string()),
        };
        MigrateError::Execute {
            version: step.migration.version(),
            file: step.file().to_owned(),
            line: None,
            code,
            message,
            no_tx: step.no_tx(),
            source: Box::new(source),
        }
    }
}

/// Tells a failure of the step from a failure of the bookkeeping around it, and
/// a step another migrator did meanwhile.
enum RunError {
    Step(sqlx::Error),
    Bookkeeping(&'static str, sqlx::Error),
    DoneByAnother,
}

/// `SQLITE_BUSY` (and its extended codes): another connection kept the write lock
/// for the whole busy timeout.
fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| code & 0xff == 5),
        _ => false,
    }
}

/// Runs `step` and records it in one `BEGIN IMMEDIATE` transaction, unless the
/// history (read under the write lock) shows another migrator did it already.
async fn run_in_transaction(
    conn: &mut SqliteConnection,
    step: &Step<'_>,
) -> Result<Duration, RunError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| RunError::Bookkeeping("begin the migration transaction", e))?;
    let recorded: bool = sqlx::query_scalar(IS_RECORDED)
        .bind(step.migration.version())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| RunError::Bookkeeping("read the migration history", e))?;
    if recorded != (step.direction == Direction::Up) {
        let elapsed = execute_and_record(&mut tx, step)
            .await
            .map_err(RunError::Step)?;
        return tx.commit().await.map(|()| elapsed).map_err(RunError::Step);
    }
    Err(RunError::DoneByAnother)
}

#[async_trait]
impl Backend for SqliteBackend<'_> {
    async fn read_history(&mut self) -> Result<HistorySnapshot, MigrateError> {
        let rows = match sqlx::Executor::fetch_all(&mut *self.conn, READ_HISTORY).await {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(db)) if db.message().starts_with("no such table") => {
                return Ok(HistorySnapshot::default())
            }
            Err(error) => return Err(self.bookkeeping_error("read the migration history", error)),
        };
        let parse = |row: &sqlx::sqlite::SqliteRow| -> Result<HistoryRow, sqlx::Error> {
            Ok(HistoryRow {
                version: row.try_get(0)?,
                success: row.try_get(1)?,
                checksum: row.try_get(2)?,
            })
        };
        let rows = rows
            .iter()
            .map(parse)
            .collect::<Result<_, _>>()
            .map_err(|e| self.bookkeeping_error("decode the migration history", e))?;
        Ok(HistorySnapshot {
            database: Some(self.database.clone()),
            table_exists: true,
            rows,
        })
    }

    async fn lock(&mut self, _options: &MigrateOptions) -> Result<(), MigrateError> {
        Ok(())
    }

    fn holds_lock(&self) -> bool {
        false
    }

    async fn unlock(&mut self) -> Result<(), MigrateError> {
        Ok(())
    }

    async fn ensure_history_table(&mut self) -> Result<(), MigrateError> {
        sqlx::Executor::execute(&mut *self.conn, SQLITE_DDL)
            .await
            .map(drop)
            .map_err(|e| self.bookkeeping_error("create the _sqlx_migrations table", e))
    }

    async fn run(
        &mut self,
        step: Step<'_>,
        _options: &MigrateOptions,
    ) -> Result<Duration, MigrateError> {
        if step.no_tx() {
            return execute_and_record(self.conn, &step)
                .await
                .map_err(|e| self.step_error(&step, e));
        }
        let started = Instant::now();
        run_in_transaction(self.conn, &step)
            .await
            .map_err(|error| match error {
                RunError::Step(e) => self.step_error(&step, e),
                RunError::Bookkeeping(during, e) if !is_busy(&e) => {
                    self.bookkeeping_error(during, e)
                }
                RunError::Bookkeeping(..) | RunError::DoneByAnother => MigrateError::Locked {
                    database: self.database.clone(),
                    waited: started.elapsed(),
                },
            })
    }
}

/// Runs a step's SQL, then inserts or deletes its history row, on `conn` (a
/// transaction or the bare connection). Returns how long the SQL itself took.
async fn execute_and_record(
    conn: &mut SqliteConnection,
    step: &Step<'_>,
) -> Result<Duration, sqlx::Error> {
    let started = Instant::now();
    sqlx::Executor::execute(&mut *conn, step.sql()).await?;
    let elapsed = started.elapsed();
    let migration = step.migration;
    let record = match step.direction {
        Direction::Up => sqlx::query(INSERT_ROW)
            .bind(migration.version())
            .bind(migration.description())
            .bind(migration.checksum())
            .bind(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)),
        Direction::Down => sqlx::query(DELETE_ROW).bind(migration.version()),
    };
    sqlx::Executor::execute(conn, record).await?;
    Ok(elapsed)
}
