//! The table-level locks a migration takes, read from `pg_locks` on the scratch copy.
//!
//! Two readers, merged:
//! - a probe appended to each transactional migration, inside its transaction:
//!   PostgreSQL keeps a table lock until the transaction ends, so the probe sees
//!   every one the migration took, however short the migration;
//! - a sampler polling `pg_locks` from a second connection while the migration
//!   runs, for migrations outside a transaction (`CREATE INDEX CONCURRENTLY`) and
//!   for locks waited on.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::PgConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The schema the probe writes to on the scratch copy; left out of every report.
pub(crate) const PROBE_SCHEMA: &str = "tenancy_rehearsal";

/// Lock modes from the weakest to the strongest, as `pg_locks.mode` names them.
const MODES: [&str; 8] = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

/// The relation locks of other sessions in this database, with what they lock.
/// Relations the catalog cannot name yet (created in the migration's open
/// transaction) are left out: nobody else can wait on them.
const OTHERS_LOCKS: &str = "\
SELECT c.oid::bigint, l.mode, n.nspname || '.' || c.relname
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenancy_rehearsal')
  AND n.nspname NOT LIKE 'pg_toast%' AND c.relname NOT LIKE '\\_sqlx\\_migrations%'";

/// A table-level lock a migration took: its mode and what it locked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LockTaken {
    /// The mode, as `pg_locks` names it (`AccessExclusiveLock`, `ShareLock`, …).
    pub mode: String,
    /// The table, index or sequence, schema-qualified.
    pub relation: String,
    /// Whether the lock blocks plain reads of the relation while held.
    pub blocks_reads: bool,
    /// Whether the lock blocks writes (`INSERT`, `UPDATE`, `DELETE`) while held.
    pub blocks_writes: bool,
}

impl LockTaken {
    /// A lock of `mode` on `relation`.
    pub fn new(mode: impl Into<String>, relation: impl Into<String>) -> Self {
        let mode = mode.into();
        let rank = strength(&mode);
        Self {
            blocks_reads: mode == "AccessExclusiveLock",
            blocks_writes: rank >= strength("ShareLock"),
            mode,
            relation: relation.into(),
        }
    }

    /// Whether the lock blocks plain reads of the relation while held.
    pub fn blocks_reads(&self) -> bool {
        self.blocks_reads
    }

    /// Whether the lock blocks writes while held.
    pub fn blocks_writes(&self) -> bool {
        self.blocks_writes
    }
}

impl fmt::Display for LockTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.mode, self.relation)
    }
}

impl Ord for LockTaken {
    /// Strongest first, then by relation.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        strength(&other.mode)
            .cmp(&strength(&self.mode))
            .then_with(|| self.relation.cmp(&other.relation))
            .then_with(|| self.mode.cmp(&other.mode))
    }
}

impl PartialOrd for LockTaken {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A mode's rank among [`MODES`]; an unknown mode ranks above all (reported, and
/// treated as blocking).
fn strength(mode: &str) -> usize {
    MODES
        .iter()
        .position(|known| *known == mode)
        .unwrap_or(MODES.len())
}

/// The relations a lock can be reported on: those that exist before a migration.
/// A lock on a relation the migration itself creates blocks nobody.
pub(crate) type Existing = HashSet<i64>;

/// Creates the probe's table on the scratch copy.
pub(crate) async fn prepare_probe(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(
        conn,
        "CREATE SCHEMA tenancy_rehearsal; \
         CREATE UNLOGGED TABLE tenancy_rehearsal.locks \
           (version BIGINT NOT NULL, oid BIGINT NOT NULL, mode TEXT NOT NULL, relation TEXT NOT NULL);",
    )
    .await?;
    Ok(())
}

/// The relations of the scratch copy now.
pub(crate) async fn existing(conn: &mut PgConnection) -> Result<Existing, sqlx::Error> {
    let oids: Vec<i64> = sqlx::query_scalar("SELECT oid::bigint FROM pg_class")
        .fetch_all(conn)
        .await?;
    Ok(oids.into_iter().collect())
}

/// SQL to append to migration `version`: inside its transaction, it records the
/// relation locks the transaction holds.
pub(crate) fn probe_sql(version: i64) -> String {
    format!(
        "\n;\nINSERT INTO tenancy_rehearsal.locks (version, oid, mode, relation) \
         SELECT {version}, c.oid::bigint, l.mode, n.nspname || '.' || c.relname \
         FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', '{PROBE_SCHEMA}') \
           AND n.nspname NOT LIKE 'pg_toast%' AND c.relname NOT LIKE '\\_sqlx\\_migrations%';\n"
    )
}

/// What the probe recorded for `version`: the locks and the relations' oids.
pub(crate) async fn probed(
    conn: &mut PgConnection,
    version: i64,
) -> Result<Vec<(i64, LockTaken)>, sqlx::Error> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT DISTINCT oid, mode, relation FROM tenancy_rehearsal.locks WHERE version = $1",
    )
    .bind(version)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(lock_of).collect())
}

fn lock_of((oid, mode, relation): (i64, String, String)) -> (i64, LockTaken) {
    (oid, LockTaken::new(mode, relation))
}

/// Locks seen per version, with their relations' oids.
type Seen = Arc<Mutex<BTreeMap<i64, BTreeSet<(i64, LockTaken)>>>>;

/// Polls `pg_locks` on its own connection while migrations run, filing what it
/// sees under the version running.
#[derive(Debug)]
pub(crate) struct LockSampler {
    running: Arc<AtomicI64>,
    seen: Seen,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LockSampler {
    /// Starts polling every `every` on `conn` (connected to the scratch copy).
    pub(crate) fn start(mut conn: PgConnection, every: Duration) -> Self {
        let running = Arc::new(AtomicI64::new(0));
        let seen = Seen::default();
        let (stop, mut stopped) = watch::channel(false);
        let (version, filed) = (running.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let current = version.load(Ordering::Acquire);
                if current != 0 {
                    match sqlx::query_as::<_, (i64, String, String)>(OTHERS_LOCKS)
                        .fetch_all(&mut conn)
                        .await
                    {
                        Ok(rows) => file(&filed, current, rows),
                        Err(error) => {
                            tracing::debug!(%error, "lock sampling stopped");
                            break;
                        }
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => break,
                }
            }
            let _ = sqlx::Connection::close(conn).await;
        });
        Self {
            running,
            seen,
            stop,
            task,
        }
    }

    /// Files what is seen from now on under `version`.
    pub(crate) fn running(&self, version: i64) {
        self.running.store(version, Ordering::Release);
    }

    /// What was seen while `version` ran, with the relations' oids.
    pub(crate) fn seen(&self, version: i64) -> BTreeSet<(i64, LockTaken)> {
        self.seen
            .lock()
            .map(|seen| seen.get(&version).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Stops polling and closes the connection.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn file(seen: &Seen, version: i64, rows: Vec<(i64, String, String)>) {
    if let Ok(mut seen) = seen.lock() {
        seen.entry(version)
            .or_default()
            .extend(rows.into_iter().map(lock_of));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_sort_strongest_first_and_say_what_they_block() {
        let mut locks = [
            LockTaken::new("RowExclusiveLock", "public.items"),
            LockTaken::new("AccessExclusiveLock", "public.orders"),
            LockTaken::new("ShareLock", "public.items"),
        ];
        locks.sort();
        let shown: Vec<String> = locks.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "AccessExclusiveLock on public.orders",
                "ShareLock on public.items",
                "RowExclusiveLock on public.items"
            ]
        );
        assert!(locks[0].blocks_reads() && locks[0].blocks_writes());
        assert!(!locks[1].blocks_reads() && locks[1].blocks_writes());
        assert!(!locks[2].blocks_reads() && !locks[2].blocks_writes());
        let unknown = LockTaken::new("SomeFutureLock", "public.items");
        assert!(
            unknown.blocks_writes(),
            "an unknown mode is not assumed harmless"
        );
    }
}
