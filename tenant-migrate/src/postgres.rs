//! The engine's backend on a PostgreSQL connection.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgDatabaseError, PgErrorPosition, PgRow};
use sqlx::{Connection, PgConnection, Row};

use crate::backend::{Backend, Direction, Step};
use crate::error::is_connection_failure;
use crate::history::{HistoryRow, HistorySnapshot, POSTGRES_DDL};
use crate::lock::{advisory_lock_key, lock_sql, try_lock_within, unlock, unlock_sql};
use crate::optimistic::{
    expected_history_digest, guard_sql, mark_if_owner_sql, READ_MARK, REFUSALS,
};
use crate::{MigrateError, MigrateOptions, MigrationSet};

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

/// What one connection remembers between the engine's operations.
#[derive(Debug, Default)]
pub(crate) struct PgSessionState {
    /// The database's name once read: taking the lock never costs a query of its own.
    database: Option<String>,
    /// The key of the migration lock while this connection holds it.
    lock_key: Option<i64>,
    /// The mark every migration committed on this connection leaves on the
    /// history table (see [`crate::optimistic`]).
    mark: Option<String>,
}

/// A PostgreSQL connection driven by the engine.
#[derive(Debug)]
pub(crate) struct PgBackend<'c> {
    conn: &'c mut PgConnection,
    state: &'c mut PgSessionState,
}

impl PgSessionState {
    /// The state of a connection opened to `database` (the name it connected
    /// with is the name `current_database()` returns).
    pub(crate) fn connected_to(database: Option<&str>) -> Self {
        Self {
            database: database.map(str::to_owned),
            lock_key: None,
            mark: None,
        }
    }

    /// The database's name, for messages.
    pub(crate) fn database_name(&self) -> &str {
        self.database.as_deref().unwrap_or("(current)")
    }
}

impl<'c> PgBackend<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection, state: &'c mut PgSessionState) -> Self {
        Self { conn, state }
    }

    fn database(&self) -> String {
        self.state
            .database
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

    /// A failure of the step's SQL; `offset` is where the step begins (in
    /// characters) in the text sent, to map PostgreSQL's position to its line.
    fn step_error(&self, step: &Step<'_>, source: sqlx::Error, offset: usize) -> MigrateError {
        let version = step.migration.version();
        if is_connection_failure(&source) {
            return MigrateError::ConnectionLost {
                database: self.database(),
                during: format!("running migration {version} ({})", step.file()),
                source: Box::new(source),
            };
        }
        let pg = pg_error(&source);
        let line = original_position(pg)
            .and_then(|position| position.checked_sub(offset))
            .map(|position| line_of_position(step.sql(), position));
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
        if let Some(name) = &self.state.database {
            return Ok(name.clone());
        }
        let name: String = sqlx::Executor::fetch_one(&mut *self.conn, "SELECT current_database()")
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| self.bookkeeping_error("read the database name", e))?;
        self.state.database = Some(name.clone());
        Ok(name)
    }
}

impl PgBackend<'_> {
    /// Polls the lock query `sql(key)` until it takes the lock; returns its rows.
    async fn lock_with(
        &mut self,
        options: &MigrateOptions,
        sql: fn(i64) -> String,
    ) -> Result<Vec<PgRow>, MigrateError> {
        let database = self.current_database().await?;
        let key = advisory_lock_key(&database);
        // Marked held before asking: if the request fails after the server took
        // the lock, releasing it must not be forgotten (an unlock of a lock not
        // held only draws a warning).
        self.state.lock_key = Some(key);
        match try_lock_within(self.conn, &sql(key), options.lock_wait()).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(waited)) => {
                self.state.lock_key = None;
                Err(MigrateError::Locked { database, waited })
            }
            Err(error) => Err(self.bookkeeping_error("take the migration lock", error)),
        }
    }

    /// The history in `rows` as [`READ_HISTORY`] returns them: the database name,
    /// then a history row's version, success and checksum (all null when the
    /// table is empty).
    fn snapshot(&mut self, rows: &[PgRow]) -> Result<HistorySnapshot, MigrateError> {
        let mut snapshot = HistorySnapshot {
            table_exists: true,
            ..HistorySnapshot::default()
        };
        for row in rows {
            let (database, history_row) = history_row(row)
                .map_err(|e| self.bookkeeping_error("decode the migration history", e))?;
            snapshot.database.get_or_insert(database);
            snapshot.rows.extend(history_row);
        }
        if self.state.database.is_none() {
            self.state.database.clone_from(&snapshot.database);
        }
        Ok(snapshot)
    }
}

fn history_row(row: &PgRow) -> Result<(String, Option<HistoryRow>), sqlx::Error> {
    let database: String = row.try_get(0)?;
    let Some(version) = row.try_get::<Option<i64>, _>(1)? else {
        return Ok((database, None));
    };
    Ok((
        database,
        Some(HistoryRow {
            version,
            success: row.try_get(2)?,
            checksum: row.try_get(3)?,
        }),
    ))
}

/// Takes the lock, then reads the history, in one request of two statements in
/// a `READ COMMITTED` block: the read takes its snapshot after the lock is held
/// (one statement would take it before, and could miss the last commit of the
/// migrator that just released the lock), whatever the database's default
/// isolation. The lock's row comes first (one column), then the history's.
fn lock_and_read_sql(key: i64) -> String {
    format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; {}; {READ_HISTORY}; COMMIT",
        lock_sql(key)
    )
}

fn is_undefined_table(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some(UNDEFINED_TABLE))
}

/// PostgreSQL's own error, when the server answered with one.
fn pg_error(error: &sqlx::Error) -> Option<&PgDatabaseError> {
    match error {
        sqlx::Error::Database(db) => db.try_downcast_ref::<PgDatabaseError>(),
        _ => None,
    }
}

/// The 1-based character position in the text sent that PostgreSQL reports.
fn original_position(error: Option<&PgDatabaseError>) -> Option<usize> {
    match error?.position()? {
        PgErrorPosition::Original(position) => Some(position),
        _ => None,
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

/// The statement that records `step` in `_sqlx_migrations`, with its values
/// inline so that it can ride in the step's own request (parameters would need a
/// prepare of their own on every fresh connection). `execution_time` is `measured`,
/// or else measured by the server: the time since it received the request.
fn record_sql(step: &Step<'_>, measured: Option<Duration>) -> String {
    let migration = step.migration;
    let execution_time = match measured {
        Some(elapsed) => i64::try_from(elapsed.as_nanos())
            .unwrap_or(i64::MAX)
            .to_string(),
        // Functions named with their exact types: operators and `extract` would
        // have a fresh connection resolve them in the catalog, costing the
        // server as much as a small migration step.
        None => "int8(float8mul(date_part('epoch'::text, \
                 timestamptz_mi(clock_timestamp(), statement_timestamp())), '1e9'::float8))"
            .to_owned(),
    };
    match step.direction {
        Direction::Up => format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ({}, {}, TRUE, decode('{}', 'hex'), {execution_time})",
            migration.version(),
            quote_text(migration.description()),
            hex::encode(migration.checksum()),
        ),
        Direction::Down => format!(
            "DELETE FROM _sqlx_migrations WHERE version = {}",
            migration.version()
        ),
    }
}

/// `text` as a PostgreSQL escape-string literal, whatever the server's
/// `standard_conforming_strings`: backslashes and quotes doubled.
pub(crate) fn quote_text(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 3);
    quoted.push_str("E'");
    for c in text.chars() {
        if matches!(c, '\\' | '\'') {
            quoted.push(c);
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// A step's whole transaction as one simple-protocol request: `BEGIN` with the
/// migration timeouts, the guard if any, the step, its history row, the mark if
/// any, `COMMIT` (and after the operation's last step, the unlock). The server
/// parses each statement before running it; a failure skips the rest and leaves
/// the transaction aborted.
struct TransactionText {
    sql: String,
    /// Where the step's SQL begins and ends in `sql`, in characters.
    step: std::ops::Range<usize>,
    /// Where the history statement begins and ends in `sql`, in characters.
    record: std::ops::Range<usize>,
    /// Whether the transaction opens with the guard.
    guarded: bool,
}

/// What a step's transaction carries besides the step and its history row.
#[derive(Default)]
struct Around {
    /// [`guard_sql`]: the transaction takes the lock itself, marks the history
    /// table and checks the history first.
    guard: Option<String>,
    /// The statement marking the history table, after the history row.
    mark: Option<String>,
    /// The key of the lock to release after `COMMIT`, in the same request.
    unlock: Option<i64>,
}

/// SQLSTATE of a syntax error: always the step's (the text around it is ours,
/// and only a step left open, such as an unterminated string, reaches into it).
const SYNTAX_ERROR: &str = "42601";

impl TransactionText {
    fn new(step: &Step<'_>, options: &MigrateOptions, around: Around) -> Self {
        let timeouts = options.timeout_sql("LOCAL ");
        let guarded = around.guard.is_some();
        let prefix = match &around.guard {
            // Each statement reads the history anew: the guard's read comes after its lock.
            Some(guard) => format!("BEGIN ISOLATION LEVEL READ COMMITTED; {timeouts}{guard};\n"),
            None => format!("BEGIN; {timeouts}\n"),
        };
        let record = record_sql(step, None);
        let start = prefix.chars().count();
        let end = start + step.sql().chars().count();
        let record_start = end + "\n;\n".len();
        let mut sql = format!("{prefix}{}\n;\n{record};\n", step.sql());
        if let Some(mark) = around.mark {
            sql.push_str(&format!("{mark};\n"));
        }
        sql.push_str("COMMIT");
        if let Some(key) = around.unlock {
            sql.push_str(&format!(";\n{}", unlock_sql(key)));
        }
        Self {
            sql,
            step: start..end,
            record: record_start..record_start + record.chars().count(),
            guarded,
        }
    }

    /// Whose failure `error` is: the step's own, or the bookkeeping's around it
    /// (by the position PostgreSQL reports, or the history table it names).
    fn classify(&self, error: sqlx::Error) -> RunError {
        let pg = pg_error(&error);
        let position = original_position(pg);
        if self.guarded && pg.is_some_and(|e| REFUSALS.contains(&e.code())) {
            return RunError::NotAsExpected;
        }
        if pg.is_some_and(|e| e.code() == SYNTAX_ERROR) {
            return RunError::Step {
                error,
                offset: self.step.start,
            };
        }
        // PostgreSQL's positions count from 1.
        match position {
            Some(p) if p <= self.step.start => {
                return RunError::Bookkeeping("begin the migration transaction", error)
            }
            Some(p) if p > self.record.start && p <= self.record.end => {
                return RunError::Bookkeeping("record the migration in _sqlx_migrations", error)
            }
            Some(p) if p > self.record.end => {
                return RunError::Bookkeeping("mark the history table with the rollout", error)
            }
            _ => {}
        }
        if pg.and_then(PgDatabaseError::table) == Some("_sqlx_migrations") {
            return RunError::Bookkeeping("record the migration in _sqlx_migrations", error);
        }
        RunError::Step {
            error,
            offset: self.step.start,
        }
    }
}

/// Tells a failure of the step's own SQL from a failure of the bookkeeping around it.
enum RunError {
    /// The step failed; it begins `offset` characters into the text sent.
    Step {
        error: sqlx::Error,
        offset: usize,
    },
    Bookkeeping(&'static str, sqlx::Error),
    /// The guard found another migrator holding the lock, or another history:
    /// nothing changed.
    NotAsExpected,
}

impl RunError {
    fn step(error: sqlx::Error) -> Self {
        Self::Step { error, offset: 0 }
    }
}

impl PgBackend<'_> {
    /// The step's whole transaction in one round trip ([`TransactionText`]),
    /// marked when the connection marks its commits.
    async fn run_in_transaction(
        &mut self,
        step: &Step<'_>,
        options: &MigrateOptions,
    ) -> Result<Duration, RunError> {
        if self.conn.is_in_transaction() {
            // The caller's own transaction: our BEGIN and COMMIT would end it.
            return Err(RunError::Bookkeeping(
                "begin the migration transaction (the connection is already in a \
                 transaction: pass one outside a transaction)",
                sqlx::Error::InvalidSavePointStatement,
            ));
        }
        // After the last step the engine unlocks: do it in the same request.
        let unlock = self.state.lock_key.filter(|_| step.last);
        let around = Around {
            guard: None,
            mark: self.commit_mark(step).map(|mark| mark_if_owner_sql(&mark)),
            unlock,
        };
        let elapsed = self
            .send(&TransactionText::new(step, options, around))
            .await?;
        if unlock.is_some() {
            self.state.lock_key = None;
        }
        Ok(elapsed)
    }

    /// The mark an up step leaves, when this connection marks its commits.
    fn commit_mark(&self, step: &Step<'_>) -> Option<String> {
        self.state
            .mark
            .clone()
            .filter(|_| step.direction == Direction::Up)
    }

    /// Sends a step's transaction; after a failure, ends what is left of it.
    async fn send(&mut self, text: &TransactionText) -> Result<Duration, RunError> {
        let started = Instant::now();
        match sqlx::Executor::execute(&mut *self.conn, text.sql.as_str()).await {
            Ok(_) => Ok(started.elapsed()),
            Err(error) => {
                if !is_connection_failure(&error) {
                    // End the aborted transaction (after a failed COMMIT there is
                    // none left, and the server only warns).
                    if let Err(rollback) =
                        sqlx::Executor::execute(&mut *self.conn, "ROLLBACK").await
                    {
                        tracing::warn!(%rollback, "could not roll back a failed migration step; close the connection");
                    }
                }
                Err(text.classify(error))
            }
        }
    }

    /// Runs a `-- no-transaction` step under the migration timeouts, then gives the
    /// connection its own timeouts back (it may be the caller's).
    async fn run_without_transaction(
        &mut self,
        step: &Step<'_>,
        options: &MigrateOptions,
    ) -> Result<Duration, RunError> {
        let previous = self.swap_timeouts(options).await?;
        let result = self.execute_then_record(step).await;
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

    /// A `-- no-transaction` step, then its history row (after it, on success only).
    async fn execute_then_record(&mut self, step: &Step<'_>) -> Result<Duration, RunError> {
        if let Some(mark) = self.commit_mark(step) {
            // Before the step: it commits as it goes, and a mark only says the
            // start this rollout recorded was read, not guessed.
            sqlx::Executor::execute(&mut *self.conn, mark_if_owner_sql(&mark).as_str())
                .await
                .map_err(|e| RunError::Bookkeeping("mark the history table with the rollout", e))?;
        }
        let started = Instant::now();
        sqlx::Executor::execute(&mut *self.conn, step.sql())
            .await
            .map_err(RunError::step)?;
        let elapsed = started.elapsed();
        sqlx::Executor::execute(&mut *self.conn, record_sql(step, Some(elapsed)).as_str())
            .await
            .map_err(|e| RunError::Bookkeeping("record the migration in _sqlx_migrations", e))?;
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
            Err(error) if is_undefined_table(&error) => return Ok(HistorySnapshot::default()),
            Err(error) => return Err(self.bookkeeping_error("read the migration history", error)),
        };
        self.snapshot(&rows)
    }

    async fn lock(&mut self, options: &MigrateOptions) -> Result<(), MigrateError> {
        self.lock_with(options, lock_sql).await.map(drop)
    }

    /// One request where the history table exists. On a database that has none
    /// yet the statement fails before it runs: the lock is taken alone, then the
    /// history read (whoever held the lock meanwhile may have created it).
    async fn lock_and_read(
        &mut self,
        options: &MigrateOptions,
    ) -> Result<HistorySnapshot, MigrateError> {
        if self.conn.is_in_transaction() {
            // The caller's own transaction must not be ended by ours.
            self.lock(options).await?;
            return self.read_history().await;
        }
        match self.lock_with(options, lock_and_read_sql).await {
            Ok(rows) => self.snapshot(rows.get(1..).unwrap_or_default()),
            Err(MigrateError::History { source, .. }) if is_undefined_table(&source) => {
                // No history table yet. Whether the lock was taken is unknown:
                // end the block and release it if held, then lock and read apart.
                sqlx::Executor::execute(&mut *self.conn, "ROLLBACK")
                    .await
                    .map_err(|e| self.bookkeeping_error("end the lock request", e))?;
                self.unlock().await?;
                self.lock(options).await?;
                self.read_history().await
            }
            Err(error) => Err(error),
        }
    }

    fn holds_lock(&self) -> bool {
        self.state.lock_key.is_some()
    }

    async fn unlock(&mut self) -> Result<(), MigrateError> {
        let Some(key) = self.state.lock_key.take() else {
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
        result.map_err(|error| self.run_error(&step, error))
    }

    fn mark_commits(&mut self, mark: Option<String>) {
        self.state.mark = mark;
    }

    async fn carries_mark(&mut self, mark: &str) -> Result<Option<bool>, MigrateError> {
        let row = sqlx::Executor::fetch_optional(&mut *self.conn, READ_MARK)
            .await
            .map_err(|e| self.bookkeeping_error("read the history table's mark", e))?;
        let Some(row) = row else {
            return Ok(Some(false));
        };
        let read = || -> Result<(Option<String>, bool), sqlx::Error> {
            Ok((row.try_get(0)?, row.try_get(1)?))
        };
        let (comment, owner) =
            read().map_err(|e| self.bookkeeping_error("read the history table's mark", e))?;
        Ok(owner.then(|| comment.as_deref() == Some(mark)))
    }

    fn applies_in_one_request(&self) -> bool {
        self.state.database.is_some() && !self.conn.is_in_transaction()
    }

    async fn run_guarded(
        &mut self,
        step: Step<'_>,
        options: &MigrateOptions,
        set: &MigrationSet,
        expected: i64,
    ) -> Result<Option<Duration>, MigrateError> {
        let Some(database) = self.state.database.clone() else {
            return Ok(None);
        };
        let digest = expected_history_digest(set, expected);
        let around = Around {
            guard: Some(guard_sql(
                advisory_lock_key(&database),
                &digest,
                self.commit_mark(&step).as_deref(),
            )),
            mark: None,
            unlock: None,
        };
        match self
            .send(&TransactionText::new(&step, options, around))
            .await
        {
            Ok(elapsed) => Ok(Some(elapsed)),
            Err(RunError::NotAsExpected) => Ok(None),
            Err(error) => Err(self.run_error(&step, error)),
        }
    }
}

impl PgBackend<'_> {
    fn run_error(&self, step: &Step<'_>, error: RunError) -> MigrateError {
        match error {
            RunError::Step { error, offset } => self.step_error(step, error, offset),
            RunError::Bookkeeping(during, source) => self.bookkeeping_error(during, source),
            RunError::NotAsExpected => MigrateError::History {
                database: self.database(),
                during: "run a migration step",
                source: Box::new(sqlx::Error::Protocol(
                    "the migration lock or history changed under a locked step".into(),
                )),
            },
        }
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
