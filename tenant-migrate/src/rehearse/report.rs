//! What a rehearsal found.

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::{CopyMethod, LockTaken};
use crate::fingerprint::SchemaFingerprint;

/// What applying the pending migrations to a copy of one tenant's database did.
///
/// As JSON (the admin API's and `migrate rehearse --json`'s shape):
///
/// ```json
/// {
///   "database": "postgres://app:[redacted]@db/tenant_acme",
///   "copy_method": "template",
///   "copy_ms": 41,
///   "from_version": 20240101000000,
///   "fingerprint_before": "9c1f…",
///   "migrations": [
///     {"version": 20240102000000, "description": "add note", "duration_ms": 3,
///      "locks": [{"mode": "AccessExclusiveLock", "relation": "public.items",
///                 "blocks_reads": true, "blocks_writes": true}],
///      "fingerprint_after": "5be0…"}
///   ],
///   "failure": null
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RehearsalReport {
    /// The rehearsed database, password redacted.
    pub database: String,
    /// How the copy was made (`None` when nothing was pending and nothing copied).
    pub copy_method: Option<CopyMethod>,
    /// How long the copy took.
    #[serde(rename = "copy_ms", serialize_with = "millis")]
    pub copy_duration: Duration,
    /// The tenant's version before (`None`: nothing applied).
    pub from_version: Option<i64>,
    /// The fingerprint of the tenant's schema before.
    #[serde(serialize_with = "fingerprint")]
    pub fingerprint_before: SchemaFingerprint,
    /// The migrations applied to the copy, in order.
    pub migrations: Vec<RehearsedMigration>,
    /// The migration that failed on the copy, if one did; those after it did not run.
    pub failure: Option<RehearsalFailure>,
}

impl RehearsalReport {
    /// Whether every pending migration applied on the copy.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Every lock that blocks the tenant's reads (`AccessExclusiveLock`), with the
    /// version that took it: what to look at before a rollout in business hours.
    pub fn read_blocking_locks(&self) -> impl Iterator<Item = (i64, &LockTaken)> {
        self.migrations.iter().flat_map(|migration| {
            migration
                .locks
                .iter()
                .filter(|lock| lock.blocks_reads())
                .map(|lock| (migration.version, lock))
        })
    }
}

/// One migration applied to the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RehearsedMigration {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long applying it took (its transaction with its history row).
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// The table-level locks it took, strongest first (empty on SQLite, which locks
    /// the whole database for each migration).
    pub locks: Vec<LockTaken>,
    /// The fingerprint of the schema after it.
    #[serde(serialize_with = "fingerprint")]
    pub fingerprint_after: SchemaFingerprint,
}

/// The migration that failed on the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RehearsalFailure {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// The database's error, as text.
    pub error: String,
    /// The locks seen while it ran, before it failed.
    pub locks: Vec<LockTaken>,
}

fn millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

fn fingerprint<S: Serializer>(
    fingerprint: &SchemaFingerprint,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(fingerprint)
}
