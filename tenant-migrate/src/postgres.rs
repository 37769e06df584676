//! The engine's backend on a PostgreSQL connection.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{Connection, PgConnection, Row};

use crate::backend::{execute_and_record, Backend, Step};
use crate::error::is_connection_failure;
use crate::history::{HistoryRow, HistorySnapshot, POSTGRES_DDL};
use crate::lock::{advisory_lock_key, try_lock_within, unlock};
use crate::{MigrateError, MigrateOptions};

/// The whole history plus the database name in one simple-protocol query (one
/// round trip, no prepare). Fails with `42P01` when the table does not exist yet.
const READ_HISTORY: &str = "SELECT current_database(), h.version, h.success, h.checksum \
     FROM (SELECT 1) AS one LEFT JOIN _sqlx_migrations AS h ON TRUE ORDER BY h.version";

const UNDEFINED_TABLE: &str = "42P01";

/// Sets the session's timeouts for a `-- no-transaction` step (`NULL`: keep the
/// current value) and returns the previous values, read first (left to right).
const SWAP_TIMEOUTS: &str =
    "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), \
     set_config('lock_timeout', coalesce($1, current_setting('lock_timeout')), false), \
     set_config('statement_timeout', coalesce($2, current_setting('statement_timeout')), false)";

/// Puts back the values [`SWAP_TIMEOUTS`] returned.
const RESTORE_TIMEOUTS: &str =
    "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)";

/// A PostgreSQL connection driven by the engine.
#[derive(Debug)]
pub(crate) struct PgBackend<'c> {
    conn: &'c mut PgConnection,
    database: Option<String>,
    lock_key: Option<i64>,
}

impl<'c> PgBackend<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection) -> Self {
        Self {
            conn,
            database: None,
            lock_key: None,
        }
    }

    fn database(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| "(current)".to_owned())
    }

    fn bookkeeping_error(&self, during: &'static str, source: sqlx::Error) -> MigrateError {
        if is_connection_failure(&source) {
            return MigrateError::ConnectionLost {
                database: self.database(),
                during: during.to_owned(),
                source: Box::new(source),
            };
        }
        MigrateError::History {
            database: self.database(),
            during,
            source: Box::new(source),
        }
    }

    fn step_error(&self, step: &Step<'_>, source: sqlx::Error) -> MigrateError {
        let version = step.migration.version();
        if is_connection_failure(&source) {
            return MigrateError::ConnectionLost {
                database: self.database(),
                during: format!("running migration {version} ({})", step.file()),
                source: Box::new(source),
            };
        }
        let pg = match &source {
            sqlx::Error::Database(db) => db.try_downcast_ref::<PgDatabaseError>(),
            _ => None,
        };
        let line = pg
            .and_then(PgDatabaseError::position)
            .and_then(|position| match position {
                PgErrorPosition::Original(position) => Some(line_of_position(step.sql(), position)),
                _ => None,
            });
        MigrateError::Execute {
            version,
            file: step.file().to_owned(),
            line,
            code: pg.map(|e| e.code().to_owned()),
            message: pg.map_or_else(|| source.to_string(), |e| e.message().to_owned()),
            no_tx: step.no_tx(),
            source: Box::new(source),
        }
    }

    async fn current_database(&mut self) -> Result<String, MigrateError> {
        if let Some(name) = &self.database {
            return Ok(name.clone());
        }
        let name: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut *self.conn)
            .await
            .map_err(|e| self.bookkeeping_error("read the database name", e))?;
        self.database = Some(name.clone());
        Ok(name)
    }
}

/// The 1-based line of `sql` holding the 1-based character position that
/// PostgreSQL reports with an error.
fn line_of_position(sql: &str, position: usize) -> u32 {
    let newlines = sql
        .chars()
        .take(position.saturating_sub(1))
        .filter(|c| *c == '\n')
        .count();
    u32::try_from(newlines)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

/// Tells a failure of the step's own SQL from a failure of the bookkeeping around it.
enum RunError {
    Step(sqlx::Error),
    Bookkeeping(&'static str, sqlx::Error),
}

impl PgBackend<'_> {
    async fn run_in_transaction(
        &mut self,
        step: &Step<'_>,
        options: &MigrateOptions,
    ) -> Result<Duration, RunError> {
        let begin = format!("BEGIN; {}", options.timeout_sql("LOCAL "));
        let mut tx = self
            .conn
            .begin_with(begin)
            .await
            .map_err(|e| RunError::Bookkeeping("begin the migration transaction", e))?;
        let elapsed = execute_and_record::<sqlx::Postgres>(&mut tx, step)
            .await
            .map_err(RunError::Step)?;
        tx.commit().await.map_err(RunError::Step)?;
        Ok(elapsed)
    }

    /// Runs a `-- no-transaction` step under the migration timeouts, then gives the
    /// connection its own timeouts back (it may be the caller's).
    async fn run_without_transaction(
        &mut self,
        step: &Step<'_>,
        options: &MigrateOptions,
    ) -> Result<Duration, RunError> {
        let previous = self.swap_timeouts(options).await?;
        let result = execute_and_record::<sqlx::Postgres>(self.conn, step)
            .await
            .map_err(RunError::Step);
        let restored = match previous {
            Some((lock, statement)) => sqlx::query(RESTORE_TIMEOUTS)
                .bind(lock)
                .bind(statement)
                .execute(&mut *self.conn)
                .await
                .map(drop),
            None => Ok(()),
        };
        let elapsed = result?;
        restored.map_err(|e| RunError::Bookkeeping("restore the session's timeouts", e))?;
        Ok(elapsed)
    }

    /// Sets the migration timeouts for the session; returns the values to restore
    /// (`None` when the options set none).
    async fn swap_timeouts(
        &mut self,
        options: &MigrateOptions,
    ) -> Result<Option<(String, String)>, RunError> {
        let (lock, statement) = options.postgres_timeouts();
        if lock.is_none() && statement.is_none() {
            return Ok(None);
        }
        let swapped = async {
            let row = sqlx::query(SWAP_TIMEOUTS)
                .bind(lock)
                .bind(statement)
                .fetch_one(&mut *self.conn)
                .await?;
            Ok((row.try_get(0)?, row.try_get(1)?))
        };
        swapped
            .await
            .map(Some)
            .map_err(|e| RunError::Bookkeeping("set the migration timeouts", e))
    }
}

#[async_trait]
impl Backend for PgBackend<'_> {
    async fn read_history(&mut self) -> Result<HistorySnapshot, MigrateError> {
        let rows = match sqlx::Executor::fetch_all(&mut *self.conn, READ_HISTORY).await {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(UNDEFINED_TABLE) => {
                return Ok(HistorySnapshot::default())
            }
            Err(error) => return Err(self.bookkeeping_error("read the migration history", error)),
        };
        let parse =
            |row: &sqlx::postgres::PgRow| -> Result<(String, Option<HistoryRow>), sqlx::Error> {
                let database: String = row.try_get(0)?;
                let Some(version) = row.try_get::<Option<i64>, _>(1)? else {
                    return Ok((database, None));
                };
                let success: bool = row.try_get(2)?;
                let checksum: Vec<u8> = row.try_get(3)?;
                Ok((
                    database,
                    Some(HistoryRow {
                        version,
                        success,
                        checksum,
                    }),
                ))
            };
        let mut snapshot = HistorySnapshot {
            table_exists: true,
            ..HistorySnapshot::default()
        };
        for row in &rows {
            let (database, history_row) = parse(row)
                .map_err(|e| self.bookkeeping_error("decode the migration history", e))?;
            snapshot.database.get_or_insert(database);
            snapshot.rows.extend(history_row);
        }
        if self.database.is_none() {
            self.database.clone_from(&snapshot.database);
        }
        Ok(snapshot)
    }

    async fn lock(&mut self, options: &MigrateOptions) -> Result<(), MigrateError> {
        let database = self.current_database().await?;
        let key = advisory_lock_key(&database);
        match try_lock_within(self.conn, key, options.lock_wait()).await {
            Ok(Ok(())) => {
                self.lock_key = Some(key);
                Ok(())
            }
            Ok(Err(waited)) => Err(MigrateError::Locked { database, waited }),
            Err(error) => Err(self.bookkeeping_error("take the migration lock", error)),
        }
    }

    async fn unlock(&mut self) -> Result<(), MigrateError> {
        let Some(key) = self.lock_key.take() else {
            return Ok(());
        };
        unlock(self.conn, key)
            .await
            .map_err(|e| self.bookkeeping_error("release the migration lock", e))
    }

    async fn ensure_history_table(&mut self) -> Result<(), MigrateError> {
        sqlx::Executor::execute(&mut *self.conn, POSTGRES_DDL)
            .await
            .map(drop)
            .map_err(|e| self.bookkeeping_error("create the _sqlx_migrations table", e))
    }

    async fn run(
        &mut self,
        step: Step<'_>,
        options: &MigrateOptions,
    ) -> Result<Duration, MigrateError> {
        let result = if step.no_tx() {
            self.run_without_transaction(&step, options).await
        } else {
            self.run_in_transaction(&step, options).await
        };
        result.map_err(|error| match error {
            RunError::Step(source) => self.step_error(&step, source),
            RunError::Bookkeeping(during, source) => self.bookkeeping_error(during, source),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_lines() {
        let sql = "CREATE TABLE a (id INT);\nCREATE TABL b;\n";
        assert_eq!(line_of_position(sql, 1), 1);
        assert_eq!(line_of_position(sql, 25), 1);
        assert_eq!(line_of_position(sql, 26), 2);
        assert_eq!(line_of_position("é\nx", 3), 2);
    }
}
