//! The resumable offboarding pipeline: cancel billing → export → pause → retained →
//! delete.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{
    DatabaseExport, DatabaseExporter, DatabasePauser, ExportDestination, ExportFormat,
    OffboardingError, OffboardingStep,
};
use crate::in_flight::InFlight;
use crate::{
    BackendError, BillingCanceller, Clock, DatabaseProvisioner, DatabaseTarget, DirectoryError,
    SchemaMigrator, SystemClock, Tenant, TenantDirectory, TenantFilter, TenantId, TenantStatus,
};

/// How long an offboarded tenant's database is kept (paused) before it is deleted,
/// unless [`Offboarding::with_retention`] says otherwise: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::days(30);

/// How long a run's claim on a step keeps other processes from running it, unless
/// [`Offboarding::with_claim_timeout`] says otherwise: 1 hour. A claim this old is
/// taken to be a run that was interrupted (a crash), and the step is run again.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::hours(1);

/// How many tenants [`Offboarding::run_pending`] reads at a time.
const PAGE: u32 = 500;

/// Drives tenants through offboarding, the mirror of [`Onboarding`](crate::Onboarding).
///
/// [`start`](Self::start) records `Offboarding { step: cancel_billing }`; each
/// [`run`](Self::run) then does the recorded step and writes the next before going on:
///
/// 1. **cancel billing** (with [`with_billing`](Self::with_billing)): the subscription
///    is cancelled if it is still live, the billing state moves to cancelled;
/// 2. **export**: the database is exported ([`DatabaseExporter`]) to the host's
///    [`ExportDestination`] under a name fixed when offboarding started, and the
///    export (location, size, SHA-256) is recorded on the tenant: a resumed run finds
///    a recorded or stored export and never exports twice;
/// 3. **pause**: the database stops accepting connections ([`DatabasePauser`]); the
///    tenant is `Retained { until }`, `until` being now plus the retention period;
/// 4. **delete**, once the [clock](Self::with_clock) passes `until` (on a run, or
///    [`run_pending`](Self::run_pending), which a host calls on a schedule): the
///    database is deleted ([`DatabaseProvisioner::delete`]) and the tenant becomes
///    `Deleted { at }`, a tombstone that keeps its id from being used again.
///
/// Each step is claimed on the tenant record before it runs (`claimed_at`, saved
/// under the directory's revision check): of two processes running the same tenant,
/// only one runs the step, the other stops with [`OffboardingError::Busy`]. So the
/// export is made once even across processes. A claim older than the
/// [claim timeout](Self::with_claim_timeout) is a run that was interrupted, and the
/// step is run again (finding an export already stored rather than making another).
///
/// A failed step is recorded on the tenant (`last_error`, `attempts`) and resumed by
/// the next run. Until deletion starts, [`restore`](Self::restore) resumes the
/// database and makes the tenant `Ready` again, its data intact.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use tenancy_core::*;
/// # async fn run(directory: Arc<dyn TenantDirectory>, id: TenantId) -> Result<(), Box<dyn std::error::Error>> {
/// let provisioner = Arc::new(SqliteFileProvisioner::new("./tenants"));
/// let offboarding = Offboarding::new(
///     directory,
///     provisioner.clone(),
///     provisioner,
///     Arc::new(DumpExporter::new()),
///     Arc::new(DirectoryExportDestination::new("./exports")),
/// )
/// .with_retention(time::Duration::days(30));
/// let tenant = offboarding.offboard(&id).await?;
/// assert_eq!(tenant.status.name(), "retained");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Offboarding {
    directory: Arc<dyn TenantDirectory>,
    provisioner: Arc<dyn DatabaseProvisioner>,
    pauser: Arc<dyn DatabasePauser>,
    exporter: Arc<dyn DatabaseExporter>,
    destination: Arc<dyn ExportDestination>,
    billing: Option<Arc<dyn BillingCanceller>>,
    migrator: Option<Arc<dyn SchemaMigrator>>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    claim_timeout: Duration,
    staging: PathBuf,
    running: Arc<InFlight>,
}

impl std::fmt::Debug for Offboarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offboarding")
            .field("clock", &self.clock)
            .field("retention", &self.retention)
            .field("billing", &self.billing.is_some())
            .field("migrator", &self.migrator.is_some())
            .field("staging", &self.staging)
            .finish_non_exhaustive()
    }
}

/// What [`Offboarding::run_pending`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffboardingReport {
    /// Tenants whose unfinished offboarding was resumed and is now retained.
    pub retained: Vec<TenantId>,
    /// Tenants deleted because their retention was over.
    pub deleted: Vec<TenantId>,
    /// Tenants whose offboarding stopped at a failed step, with the error.
    pub failed: Vec<(TenantId, String)>,
    /// Tenants another process was offboarding at the time: left to it.
    pub busy: Vec<TenantId>,
}

impl Offboarding {
    /// A pipeline over these implementations (`provisioner` deletes databases,
    /// `pauser` pauses and resumes them), with the system clock, the default
    /// retention and no billing.
    pub fn new(
        directory: Arc<dyn TenantDirectory>,
        provisioner: Arc<dyn DatabaseProvisioner>,
        pauser: Arc<dyn DatabasePauser>,
        exporter: Arc<dyn DatabaseExporter>,
        destination: Arc<dyn ExportDestination>,
    ) -> Self {
        Self {
            directory,
            provisioner,
            pauser,
            exporter,
            destination,
            billing: None,
            migrator: None,
            clock: Arc::new(SystemClock),
            retention: DEFAULT_RETENTION,
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
            staging: std::env::temp_dir(),
            running: Arc::default(),
        }
    }

    /// Ends each tenant's billing as the first step.
    pub fn with_billing(mut self, billing: Arc<dyn BillingCanceller>) -> Self {
        self.billing = Some(billing);
        self
    }

    /// Brings a restored tenant's schema up to date with `migrator` (the one
    /// onboarding uses) before it is `Ready` again: schema rollouts skip a retained
    /// tenant, whose database is paused, so it may be behind.
    pub fn with_migrator(mut self, migrator: Arc<dyn SchemaMigrator>) -> Self {
        self.migrator = Some(migrator);
        self
    }

    /// Uses `clock` for the records' timestamps and the end of retention.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps offboarded tenants' databases (paused) for `retention` before deleting
    /// them (default [`DEFAULT_RETENTION`]; a negative value counts as zero).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention.max(Duration::ZERO);
        self
    }

    /// Takes a step's claim older than `timeout` to be a run that was interrupted,
    /// and runs the step again (default [`DEFAULT_CLAIM_TIMEOUT`]; a negative value
    /// counts as zero). Make it longer than the longest export takes.
    pub fn with_claim_timeout(mut self, timeout: Duration) -> Self {
        self.claim_timeout = timeout.max(Duration::ZERO);
        self
    }

    /// Writes exports to `folder` before handing them to the destination (default:
    /// the system's temporary folder).
    pub fn with_staging_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.staging = folder.into();
        self
    }

    /// The retention period.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Starts offboarding a tenant: records `Offboarding { step: cancel_billing }`
    /// without running any step. A tenant already offboarding or retained is
    /// returned as it is; a deleted one is refused.
    pub async fn start(&self, id: &TenantId) -> Result<Tenant, OffboardingError> {
        self.running
            .exclusive(id, async {
                let tenant = self.load(id).await?;
                match &tenant.status {
                    TenantStatus::Deleted { at, .. } => Err(OffboardingError::Deleted {
                        tenant: tenant.id.clone(),
                        at: *at,
                    }),
                    TenantStatus::Offboarding { .. } | TenantStatus::Retained { .. } => Ok(tenant),
                    _ => {
                        let onboarded = tenant.status.is_ready();
                        let mut next = tenant;
                        next.status = TenantStatus::Offboarding {
                            step: OffboardingStep::CancelBilling,
                            started_at: self.clock.now(),
                            onboarded,
                            export: None,
                            last_error: None,
                            attempts: 0,
                            claimed_at: None,
                        };
                        tracing::info!(tenant = %next.id, "offboarding started");
                        Ok(self.save(next).await?)
                    }
                }
            })
            .await
    }

    /// Starts offboarding a tenant and runs it until it is retained (or deleted,
    /// with no retention).
    pub async fn offboard(&self, id: &TenantId) -> Result<Tenant, OffboardingError> {
        self.start(id).await?;
        self.run(id).await
    }

    /// Runs (or resumes) a tenant's offboarding: the recorded steps until it is
    /// retained, and the deletion once its retention is over. Any other tenant is
    /// returned as it is. [`OffboardingError::Busy`] when another process is running
    /// the tenant's step: nothing was done, and that process carries on.
    pub async fn run(&self, id: &TenantId) -> Result<Tenant, OffboardingError> {
        self.running.exclusive(id, self.run_steps(id)).await
    }

    /// Resumes every unfinished offboarding and deletes every retained tenant whose
    /// retention is over (a host calls this on a schedule). A tenant whose step fails
    /// is reported and the others go on.
    pub async fn run_pending(&self) -> Result<OffboardingReport, OffboardingError> {
        let mut report = OffboardingReport::default();
        let mut filter = TenantFilter::all()
            .with_status("offboarding")
            .with_status("retained")
            .limit(PAGE);
        loop {
            let page = self.directory.list(&filter).await?;
            let Some(last) = page.last().map(|t| t.id.clone()) else {
                return Ok(report);
            };
            for tenant in page {
                if next_step(&tenant, self.clock.now()).is_none() {
                    continue;
                }
                match self.run(&tenant.id).await {
                    Ok(done) if done.status.is_deleted() => report.deleted.push(done.id),
                    Ok(done) => report.retained.push(done.id),
                    Err(OffboardingError::Busy { tenant, .. }) => report.busy.push(tenant),
                    Err(error) => report.failed.push((tenant.id, error.to_string())),
                }
            }
            filter = filter.after(last);
        }
    }

    /// Restores a tenant being offboarded or retained: resumes its database (its data
    /// intact), brings its schema up to date (with [`with_migrator`](Self::with_migrator))
    /// and makes it `Ready` again (`Pending`, for onboarding to finish, if it had not
    /// finished onboarding; onboarding migrates it then). A failed migration pauses
    /// the database again (if offboarding had paused it) and leaves the tenant as it
    /// was ([`OffboardingError::Migrate`]). Billing is not restarted: its subscription stays
    /// cancelled until the tenant chooses a plan again.
    ///
    /// Refused once deletion has started, and for a tenant that is not offboarding.
    pub async fn restore(&self, id: &TenantId) -> Result<Tenant, OffboardingError> {
        self.running
            .exclusive(id, async {
                let tenant = self.load(id).await?;
                let onboarded = match &tenant.status {
                    TenantStatus::Deleted { at, .. } => {
                        return Err(OffboardingError::Deleted {
                            tenant: tenant.id.clone(),
                            at: *at,
                        })
                    }
                    TenantStatus::Offboarding {
                        step: OffboardingStep::Delete,
                        ..
                    } => return Err(OffboardingError::Deleting(tenant.id.clone())),
                    TenantStatus::Offboarding { onboarded, .. }
                    | TenantStatus::Retained { onboarded, .. } => *onboarded,
                    other => {
                        return Err(OffboardingError::NotOffboarding {
                            tenant: tenant.id.clone(),
                            state: other.name(),
                        })
                    }
                };
                if let Some(database) = &tenant.database {
                    self.pauser
                        .resume(&tenant, database)
                        .await
                        .map_err(|source| OffboardingError::Resume {
                            tenant: tenant.id.clone(),
                            source,
                        })?;
                    if onboarded {
                        self.migrate_restored(&tenant, database).await?;
                    }
                }
                let mut next = tenant;
                next.status = if onboarded {
                    TenantStatus::Ready
                } else {
                    TenantStatus::Pending
                };
                tracing::info!(tenant = %next.id, status = %next.status, "tenant restored");
                Ok(self.save(next).await?)
            })
            .await
    }

    /// Migrates a restored tenant's resumed database; on failure, pauses it again if
    /// it had been paused, so that it matches its record (still offboarding or retained).
    async fn migrate_restored(
        &self,
        tenant: &Tenant,
        database: &DatabaseTarget,
    ) -> Result<(), OffboardingError> {
        let Some(migrator) = &self.migrator else {
            return Ok(());
        };
        let source = match migrator.migrate(&tenant.id, database).await {
            Ok(report) => {
                tracing::info!(tenant = %tenant.id, ?report, "restored tenant migrated");
                return Ok(());
            }
            Err(source) => source,
        };
        // Paused again only if it had been: offboarding pauses at its pause step,
        // which a tenant stopped at an earlier one has not reached.
        let was_paused = matches!(
            tenant.status,
            TenantStatus::Retained { .. }
                | TenantStatus::Offboarding {
                    step: OffboardingStep::Pause,
                    ..
                }
        );
        let paused_again = match was_paused {
            false => None,
            true => match self.pauser.pause(tenant, database).await {
                Ok(()) => Some(true),
                Err(error) => {
                    tracing::error!(tenant = %tenant.id, %error, "could not pause the database again after its migration failed");
                    Some(false)
                }
            },
        };
        Err(OffboardingError::Migrate {
            tenant: tenant.id.clone(),
            state: tenant.status.name(),
            paused_again,
            source,
        })
    }

    async fn run_steps(&self, id: &TenantId) -> Result<Tenant, OffboardingError> {
        let mut tenant = self.load(id).await?;
        while let Some(step) = next_step(&tenant, self.clock.now()) {
            tenant = self.enter(tenant, step).await?;
            tenant = match self.perform(step, &tenant).await {
                Ok(done) => self.save(done).await?,
                Err(source) => return Err(self.record_failure(tenant, step, source).await?),
            };
        }
        Ok(tenant)
    }

    async fn perform(
        &self,
        step: OffboardingStep,
        tenant: &Tenant,
    ) -> Result<Tenant, BackendError> {
        let mut next = tenant.clone();
        let TenantStatus::Offboarding {
            started_at,
            onboarded,
            export,
            ..
        } = &tenant.status
        else {
            return Err(BackendError::permanent(format!(
                "tenant `{}` is {}, not offboarding",
                tenant.id,
                tenant.status.name()
            )));
        };
        let now = self.clock.now();
        let offboarding = |step, export: Option<DatabaseExport>| TenantStatus::Offboarding {
            step,
            started_at: *started_at,
            onboarded: *onboarded,
            export,
            last_error: None,
            attempts: 0,
            claimed_at: None,
        };
        next.status = match step {
            OffboardingStep::CancelBilling => {
                if let Some(billing) = &self.billing {
                    billing.cancel_billing(&tenant.id, now).await?;
                    tracing::info!(tenant = %tenant.id, "billing cancelled");
                }
                offboarding(OffboardingStep::Export, export.clone())
            }
            OffboardingStep::Export => {
                let export = match (export, &tenant.database) {
                    (Some(done), _) => Some(done.clone()),
                    (None, Some(database)) => {
                        Some(self.export(&tenant.id, *started_at, database).await?)
                    }
                    (None, None) => None,
                };
                offboarding(OffboardingStep::Pause, export)
            }
            OffboardingStep::Pause => {
                if let Some(database) = &tenant.database {
                    self.pauser.pause(tenant, database).await?;
                    tracing::info!(tenant = %tenant.id, "database paused");
                }
                TenantStatus::Retained {
                    until: now.saturating_add(self.retention),
                    onboarded: *onboarded,
                    export: export.clone(),
                }
            }
            OffboardingStep::Delete => {
                // Deleting a database that does not exist succeeds: a resumed run is safe.
                self.provisioner.delete(&tenant.id).await?;
                tracing::info!(tenant = %tenant.id, "database deleted");
                next.database = None;
                TenantStatus::Deleted {
                    at: now,
                    export: export.clone(),
                }
            }
        };
        Ok(next)
    }

    /// Exports the database under a name fixed by the offboarding's start, unless
    /// the destination already holds it (stored by a run that crashed before
    /// recording it).
    async fn export(
        &self,
        id: &TenantId,
        started_at: OffsetDateTime,
        database: &DatabaseTarget,
    ) -> Result<DatabaseExport, BackendError> {
        let format = ExportFormat::of(database.kind());
        let name = format!(
            "{id}-{}.{}",
            started_at.unix_timestamp(),
            format.extension()
        );
        let now = self.clock.now();
        if let Some(stored) = self.destination.find(&name).await? {
            tracing::info!(tenant = %id, location = %stored.location, "export found at the destination; not exporting again");
            let made_at = stored.stored_at.unwrap_or(now);
            return Ok(DatabaseExport::new(stored, format, made_at));
        }
        tokio::fs::create_dir_all(&self.staging)
            .await
            .map_err(BackendError::transient)?;
        let staged = self.staging.join(format!(
            "{name}.{}-{:08x}.staging",
            std::process::id(),
            fastrand::u32(..)
        ));
        let stored = async {
            self.exporter.export(database, &staged).await?;
            let sha256 = sha256_of(&staged).await?;
            self.destination.store(&name, &staged, &sha256).await
        }
        .await;
        if let Err(error) = tokio::fs::remove_file(&staged).await {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %staged.display(), %error, "could not remove a staged export");
            }
        }
        let stored = stored?;
        tracing::info!(tenant = %id, location = %stored.location, bytes = stored.size_bytes, "database exported");
        Ok(DatabaseExport::new(stored, format, now))
    }

    /// Claims the step on the record before it runs (so a crash is visible in the
    /// record, and of two processes only one runs it): the save goes through the
    /// directory's revision check, and a live claim by another run is respected.
    async fn enter(
        &self,
        tenant: Tenant,
        step: OffboardingStep,
    ) -> Result<Tenant, OffboardingError> {
        let now = self.clock.now();
        let busy = |tenant: &Tenant| OffboardingError::Busy {
            tenant: tenant.id.clone(),
            step,
        };
        let (started_at, onboarded, export, last_error, attempts) = match &tenant.status {
            TenantStatus::Offboarding {
                step: current,
                started_at,
                onboarded,
                export,
                last_error,
                attempts,
                claimed_at,
            } if *current == step => {
                if claimed_at.is_some_and(|at| now < at.saturating_add(self.claim_timeout)) {
                    return Err(busy(&tenant));
                }
                (
                    *started_at,
                    *onboarded,
                    export.clone(),
                    last_error.clone(),
                    *attempts,
                )
            }
            TenantStatus::Offboarding {
                started_at,
                onboarded,
                export,
                ..
            } => (*started_at, *onboarded, export.clone(), None, 0),
            TenantStatus::Retained {
                onboarded, export, ..
            } => (now, *onboarded, export.clone(), None, 0),
            _ => (now, false, None, None, 0),
        };
        let mut next = tenant;
        next.status = TenantStatus::Offboarding {
            step,
            started_at,
            onboarded,
            export,
            last_error,
            attempts,
            claimed_at: Some(now),
        };
        match self.save(next).await {
            Ok(claimed) => Ok(claimed),
            Err(DirectoryError::Conflict { id, .. }) => {
                Err(OffboardingError::Busy { tenant: id, step })
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn record_failure(
        &self,
        tenant: Tenant,
        step: OffboardingStep,
        source: BackendError,
    ) -> Result<OffboardingError, DirectoryError> {
        let mut failed = tenant;
        if let TenantStatus::Offboarding {
            last_error,
            attempts,
            claimed_at,
            ..
        } = &mut failed.status
        {
            *claimed_at = None;
            *attempts += 1;
            *last_error = Some(source.to_string());
            tracing::warn!(tenant = %failed.id, %step, attempts = *attempts, error = %source, "offboarding step failed");
        }
        self.save(failed.clone()).await?;
        Ok(OffboardingError::Step {
            tenant: failed.id,
            step,
            source,
        })
    }

    async fn load(&self, id: &TenantId) -> Result<Tenant, OffboardingError> {
        Ok(self
            .directory
            .get(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(id.clone()))?)
    }

    async fn save(&self, mut tenant: Tenant) -> Result<Tenant, DirectoryError> {
        tenant.updated_at = self.clock.now();
        self.directory.update(&tenant).await
    }
}

/// The step a tenant's offboarding runs next at `now`, if any.
fn next_step(tenant: &Tenant, now: OffsetDateTime) -> Option<OffboardingStep> {
    match &tenant.status {
        TenantStatus::Offboarding { step, .. } => Some(*step),
        TenantStatus::Retained { until, .. } if now >= *until => Some(OffboardingStep::Delete),
        _ => None,
    }
}

/// The SHA-256 of a file, lowercase hex, read off the async runtime's threads.
pub(super) async fn sha256_of(path: &Path) -> Result<String, BackendError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;

    let path = path.to_owned();
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                return Ok(hex::encode(hasher.finalize()));
            }
            hasher.update(&buffer[..read]);
        }
    })
    .await
    .map_err(BackendError::transient)?;
    digest.map_err(BackendError::transient)
}
