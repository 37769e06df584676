//! Rehearsal: the pending migrations applied to a throw-away copy of one tenant's
//! database (the canary's, typically), to learn before a rollout how long each
//! takes, which locks it takes, and the schema it leaves.
//!
//! The copy is made on the tenant's own server (`pg_dump | pg_restore` into a new
//! database, or `CREATE DATABASE … TEMPLATE` when asked for) or beside its file
//! (SQLite's `VACUUM INTO`), named `<database>_rehearsal_<unix time>_<hex>` (or
//! `<file>.rehearsal-<unix time>_<hex>.db`), and removed: after a failure, and when
//! cancelled ([`Rehearsal::run_until`]). A copy that a killed process left behind
//! is removed by the next rehearsal of the same tenant once it is a day old. The
//! tenant's own database is only read.
//!
//! ```no_run
//! use tenancy_core::{DatabaseTarget, DatabaseUrl};
//! use tenant_migrate::rehearse::Rehearsal;
//! use tenant_migrate::{MigrationSet, TenantMigrator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let migrator = TenantMigrator::new(MigrationSet::from_dir("migrations")?);
//! let canary = DatabaseTarget::new(DatabaseUrl::parse("postgres://app@db/tenant_acme")?);
//! let report = Rehearsal::new(migrator).run(&canary).await?;
//! for migration in &report.migrations {
//!     println!("{} took {:?}", migration.version, migration.duration);
//!     for lock in &migration.locks {
//!         println!("  {lock}"); // e.g. "AccessExclusiveLock on public.items"
//!     }
//! }
//! assert!(report.passed(), "{:?}", report.failure);
//! # Ok(()) }
//! ```

mod locks;
mod report;
mod scratch;

pub use locks::LockTaken;
pub use report::{RehearsalFailure, RehearsalReport, RehearsedMigration};
pub use scratch::CopyMethod;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::Connection;
use tenancy_core::{DatabaseKind, DatabaseTarget, DirectoryError, TenantFilter, TenantId};

use crate::connection::TenantConnection;
use crate::fingerprint::{read_schema, SchemaScope};
use crate::{MigrateError, Migration, MigrationSet, MigrationStatus, TenantFleet, TenantMigrator};
use locks::LockSampler;
use scratch::ScratchDatabase;

/// How often the sampler reads `pg_locks` by default.
const DEFAULT_SAMPLE_EVERY: Duration = Duration::from_millis(2);

/// Why a rehearsal could not be made (a migration failing on the copy is not an
/// error: it is the finding, in [`RehearsalReport::failure`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RehearsalError {
    /// The tenant's database could not be read or its history is not consistent.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The copy could not be made.
    #[error("could not copy {database} for a rehearsal ({method}): {reason}")]
    Copy {
        /// The tenant's database, password redacted.
        database: String,
        /// The method that failed.
        method: CopyMethod,
        /// What went wrong.
        reason: String,
    },
    /// The copy could not be removed.
    #[error(
        "the rehearsal's scratch copy {scratch} could not be removed ({reason}); drop it by hand"
    )]
    Cleanup {
        /// The scratch copy, password redacted.
        scratch: String,
        /// What went wrong.
        reason: String,
    },
    /// The scratch copy could not be prepared for the rehearsal.
    #[error("the rehearsal's scratch copy {scratch} could not be prepared ({reason}); check that the role may create a schema there")]
    Scratch {
        /// The scratch copy, password redacted.
        scratch: String,
        /// What went wrong.
        reason: String,
    },
    /// The rehearsal was cancelled; its copy was removed.
    #[error(
        "the rehearsal was cancelled; its scratch copy was removed and the tenant is untouched"
    )]
    Cancelled,
    /// The named tenant is not in the fleet, or has no database yet.
    #[error(
        "tenant `{tenant}` is not in the fleet or has no database yet; name a provisioned tenant"
    )]
    UnknownTenant {
        /// The tenant named.
        tenant: TenantId,
    },
    /// No tenant of the fleet has a database to copy.
    #[error("no tenant of the fleet has a database yet; provision one, or name a tenant")]
    EmptyFleet,
    /// The fleet could not be read.
    #[error(transparent)]
    Fleet(#[from] DirectoryError),
    /// A database this build cannot copy.
    #[error("{database} cannot be rehearsed: only PostgreSQL databases and SQLite files can be copied (enable the crate's feature for the engine)")]
    Unsupported {
        /// The database, password redacted.
        database: String,
    },
}

/// A rehearsal of a migrator's pending migrations (see the [module](self) docs).
#[derive(Debug, Clone)]
pub struct Rehearsal {
    migrator: TenantMigrator,
    scope: SchemaScope,
    sample_every: Duration,
    copy: Option<CopyMethod>,
}

impl Rehearsal {
    /// Rehearses `migrator`'s migrations, with its options.
    pub fn new(migrator: TenantMigrator) -> Self {
        Self {
            migrator,
            scope: SchemaScope::default(),
            sample_every: DEFAULT_SAMPLE_EVERY,
            copy: None,
        }
    }

    /// The schemas the fingerprints cover (default: `public`).
    pub fn scope(mut self, scope: SchemaScope) -> Self {
        self.scope = scope;
        self
    }

    /// How often `pg_locks` is read while a migration runs (default 2 ms). Locks
    /// held to the end of a migration's transaction are seen whatever this is.
    pub fn sample_every(mut self, every: Duration) -> Self {
        self.sample_every = every.max(Duration::from_micros(100));
        self
    }

    /// Copies with this method (PostgreSQL; default [`CopyMethod::DumpRestore`],
    /// which the tenant's service does not notice; [`CopyMethod::Template`] is
    /// faster but keeps new connections out of the tenant's database while it
    /// copies, and fails while anyone is connected).
    pub fn copy_method(mut self, method: CopyMethod) -> Self {
        self.copy = Some(method);
        self
    }

    /// Rehearses on a copy of `target`.
    pub async fn run(&self, target: &DatabaseTarget) -> Result<RehearsalReport, RehearsalError> {
        self.run_until(target, std::future::pending()).await
    }

    /// Rehearses on a copy of `target` until `cancel` completes (Ctrl-C, say): then
    /// the copy is removed and [`RehearsalError::Cancelled`] returned.
    pub async fn run_until(
        &self,
        target: &DatabaseTarget,
        cancel: impl Future<Output = ()>,
    ) -> Result<RehearsalReport, RehearsalError> {
        let options = self.migrator.options();
        let status = self.migrator.status(target).await?;
        if let Some(problem) = status.problem(self.migrator.migrations(), options.ignore_missing())
        {
            return Err(problem.into());
        }
        let before = read_schema(target, &self.scope, options).await?;
        let mut report = RehearsalReport {
            database: target.url.redacted(),
            copy_method: None,
            copy_duration: Duration::ZERO,
            from_version: status.current_version,
            fingerprint_before: before.fingerprint(),
            migrations: Vec::new(),
            failure: None,
        };
        if status.pending.is_empty() {
            return Ok(report);
        }
        let scratch = ScratchDatabase::name_beside(target)?;
        scratch.remove_stale(options).await;
        tokio::pin!(cancel);
        let rehearsed = self
            .copy_and_apply(target, &scratch, &status, &mut report, cancel)
            .await;
        let removed = scratch.remove(options).await;
        match (rehearsed, removed) {
            (Ok(()), Ok(())) => Ok(report),
            (Err(error), Ok(())) | (Ok(()), Err(error)) => Err(error),
            (Err(error), Err(cleanup)) => {
                tracing::error!(%cleanup, "after the rehearsal failed, its copy could not be removed");
                Err(error)
            }
        }
    }

    /// Copies the tenant's database and applies the pending migrations to the copy,
    /// until `cancel` completes. SQLite's `VACUUM INTO` finishes on SQLite's own
    /// thread even when abandoned, so it is waited for: the copy is then removed
    /// whole.
    async fn copy_and_apply(
        &self,
        target: &DatabaseTarget,
        scratch: &ScratchDatabase,
        status: &MigrationStatus,
        report: &mut RehearsalReport,
        mut cancel: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), RehearsalError> {
        let options = self.migrator.options();
        let started = Instant::now();
        let copying = scratch.copy_from(target, self.copy, options);
        let method = if target.kind() == DatabaseKind::Sqlite {
            copying.await?
        } else {
            tokio::select! {
                method = copying => method?,
                () = &mut cancel => return Err(RehearsalError::Cancelled),
            }
        };
        report.copy_method = Some(method);
        report.copy_duration = started.elapsed();
        tokio::select! {
            applied = self.apply_on_copy(target, scratch, status, report) => applied,
            () = &mut cancel => Err(RehearsalError::Cancelled),
        }
    }

    async fn apply_on_copy(
        &self,
        target: &DatabaseTarget,
        scratch: &ScratchDatabase,
        status: &MigrationStatus,
        report: &mut RehearsalReport,
    ) -> Result<(), RehearsalError> {
        let probed = target.kind() == DatabaseKind::Postgres;
        let migrator = if probed {
            let set = with_probes(self.migrator.migrations(), &status.pending);
            TenantMigrator::new(set).with_options(self.migrator.options().clone())
        } else {
            self.migrator.clone()
        };
        let mut watch = if probed {
            Some(
                LockWatch::start(scratch.target(), self.migrator.options(), self.sample_every)
                    .await?,
            )
        } else {
            None
        };
        let applied = self
            .apply_each(
                &migrator,
                scratch.target(),
                &status.pending,
                watch.as_mut(),
                report,
            )
            .await;
        if let Some(watch) = watch {
            watch.stop().await;
        }
        applied
    }

    /// Applies the pending migrations one at a time, reading the locks and the
    /// schema after each.
    async fn apply_each(
        &self,
        migrator: &TenantMigrator,
        scratch: &DatabaseTarget,
        pending: &[i64],
        mut watch: Option<&mut LockWatch>,
        report: &mut RehearsalReport,
    ) -> Result<(), RehearsalError> {
        let mut session = migrator.connect(scratch).await?;
        for &version in pending {
            let description = migrator
                .migrations()
                .get(version)
                .map(|m| m.description().to_owned())
                .unwrap_or_default();
            if let Some(watch) = watch.as_deref_mut() {
                watch.before(version).await;
            }
            let started = Instant::now();
            let applied = session.apply_to(version).await;
            let duration = started.elapsed();
            let locks = match watch.as_deref_mut() {
                Some(watch) => watch.locks(version).await,
                None => Vec::new(),
            };
            if let Err(error) = applied {
                report.failure = Some(RehearsalFailure {
                    version,
                    description,
                    error: error.to_string(),
                    locks,
                });
                break;
            }
            let after = read_schema(scratch, &self.scope, migrator.options()).await?;
            report.migrations.push(RehearsedMigration {
                version,
                description,
                duration,
                locks,
                fingerprint_after: after.fingerprint(),
            });
        }
        session.close().await;
        Ok(())
    }
}

/// The tenant to rehearse on: `tenant` when named, otherwise the fleet's first
/// tenant with a database, in id order (the one a `canary:1` rollout starts with).
pub async fn choose_canary(
    fleet: &dyn TenantFleet,
    tenant: Option<&TenantId>,
) -> Result<(TenantId, DatabaseTarget), RehearsalError> {
    if let Some(tenant) = tenant {
        return match fleet.database(tenant).await? {
            Some(target) => Ok((tenant.clone(), target)),
            None => Err(RehearsalError::UnknownTenant {
                tenant: tenant.clone(),
            }),
        };
    }
    let mut filter = TenantFilter::all().limit(100);
    loop {
        let page = fleet.members(&filter).await?;
        let Some(last) = page.last().map(|member| member.id.clone()) else {
            return Err(RehearsalError::EmptyFleet);
        };
        if let Some(member) = page.into_iter().find(|member| member.database.is_some()) {
            let target = member.database.ok_or(RehearsalError::EmptyFleet)?;
            return Ok((member.id, target));
        }
        filter = filter.after(last);
    }
}

/// The set with the probe appended to each pending migration that runs in a
/// transaction (the copy's history records the probed checksums; the copy goes).
fn with_probes(set: &MigrationSet, pending: &[i64]) -> MigrationSet {
    let mut builder = MigrationSet::builder();
    for migration in set {
        let probed = pending.contains(&migration.version()) && !migration.no_tx();
        builder = builder.migration(if probed {
            let sql = format!(
                "{}{}",
                migration.sql(),
                locks::probe_sql(migration.version())
            );
            Migration::new(
                migration.version(),
                migration.description(),
                migration.file(),
                sql,
            )
        } else {
            migration.clone()
        });
    }
    // Rebuilding a valid set with the same versions cannot fail; if it did, the
    // rehearsal would go on without the probe (the sampler still runs).
    builder.build().unwrap_or_else(|_| set.clone())
}

/// The probe's table and the sampler, on the scratch copy.
struct LockWatch {
    probe: sqlx::PgConnection,
    sampler: LockSampler,
    existing: locks::Existing,
}

impl LockWatch {
    async fn start(
        scratch: &DatabaseTarget,
        options: &crate::MigrateOptions,
        every: Duration,
    ) -> Result<Self, RehearsalError> {
        let unsupported = || RehearsalError::Unsupported {
            database: scratch.url.redacted(),
        };
        let open = || async {
            TenantConnection::open(scratch, options)
                .await?
                .into_postgres()
                .ok_or_else(unsupported)
        };
        let mut probe = open().await?;
        locks::prepare_probe(&mut probe)
            .await
            .map_err(|e| RehearsalError::Scratch {
                scratch: scratch.url.redacted(),
                reason: e.to_string(),
            })?;
        let sampler = LockSampler::start(open().await?, every);
        Ok(Self {
            probe,
            sampler,
            existing: locks::Existing::new(),
        })
    }

    /// Notes the relations that exist before `version` runs.
    async fn before(&mut self, version: i64) {
        self.sampler.running(version);
        match locks::existing(&mut self.probe).await {
            Ok(existing) => self.existing = existing,
            Err(error) => {
                tracing::warn!(%error, version, "could not list the relations before a rehearsed migration")
            }
        }
    }

    /// What the probe recorded for `version` and the sampler saw, on relations
    /// that existed before it, strongest first.
    async fn locks(&mut self, version: i64) -> Vec<LockTaken> {
        self.sampler.running(0);
        let mut locks = self.sampler.seen(version);
        match locks::probed(&mut self.probe, version).await {
            Ok(probed) => locks.extend(probed),
            Err(error) => {
                tracing::warn!(%error, version, "could not read the locks a rehearsed migration took")
            }
        }
        let existing = &self.existing;
        let kept: BTreeSet<LockTaken> = locks
            .into_iter()
            .filter(|(oid, _)| existing.contains(oid))
            .map(|(_, lock)| lock)
            .collect();
        kept.into_iter().collect()
    }

    async fn stop(self) {
        self.sampler.stop().await;
        let _ = self.probe.close().await;
    }
}
