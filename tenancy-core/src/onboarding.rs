//! The resumable onboarding pipeline: signup → provision → migrate → create admin → ready.

use std::sync::Arc;

use crate::in_flight::InFlight;
use crate::{
    AdminUserCreator, BackendError, BillingStarter, Clock, DatabaseProvisioner, DirectoryError,
    NewTenant, Notification, NotificationKind, Notifier, OnboardingStep, RetryDecision,
    RetryPolicy, SchemaMigrator, SystemClock, Tenant, TenantDirectory, TenantId, TenantStatus,
};

/// Why onboarding stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardingError {
    /// A step failed; the tenant is recorded as `Failed` at that step.
    #[error("onboarding of tenant `{tenant}` failed at step {step}: {source}; fix the cause and run onboarding again, it resumes at this step")]
    Step {
        /// The tenant.
        tenant: TenantId,
        /// The step that failed.
        step: OnboardingStep,
        /// The implementation's error.
        #[source]
        source: BackendError,
    },
    /// A tenant with this id exists with another admin email.
    #[error(
        "tenant `{0}` is already signed up with another admin email; choose another company name"
    )]
    AlreadySignedUp(TenantId),
    /// The tenant with this id was deleted: its id is never given out again.
    #[error(
        "tenant `{0}` was deleted and its id is never reused; sign up under another company name"
    )]
    IdRetired(TenantId),
    /// The tenant with this id is being offboarded (or is retained after it).
    #[error("tenant `{0}` is being offboarded; restore it (POST /api/admin/tenants/{0}/restore or `offboard restore {0}`) instead of signing up again")]
    Offboarded(TenantId),
    /// Reading or writing the tenant record failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl OnboardingError {
    /// Whether running onboarding again may succeed without anyone fixing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Step { source, .. } => source.is_retryable(),
            Self::Directory(DirectoryError::Conflict { .. } | DirectoryError::Storage(_)) => true,
            _ => false,
        }
    }
}

/// Drives tenants through onboarding over the traits of this crate.
///
/// Each step reads the tenant record, does its work idempotently, and writes the
/// next status before the following step starts: provision, migrate, create the
/// admin user, then (with [`with_billing`](Self::with_billing)) start billing. A
/// failure records `Failed { step, reason, attempts }`; running again resumes at
/// that step. A database is never provisioned twice for one tenant: a recorded
/// database is reused, and provisioning itself is idempotent (an earlier attempt
/// may have created the database and crashed before recording it).
///
/// Once `Ready` is saved, the [notifier](Self::with_notifier) is told; its
/// confirmation is kept in [`Tenant::ready_notified_at`], so a notice lost to a
/// crash or a failed delivery is sent by the next run for that tenant (at least
/// once: two runs at the same moment may both send it).
///
/// ```no_run
/// # use std::sync::Arc;
/// # use tenancy_core::*;
/// # async fn run(
/// #     provisioner: Arc<dyn DatabaseProvisioner>,
/// #     migrator: Arc<dyn SchemaMigrator>,
/// #     admins: Arc<dyn AdminUserCreator>,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// let directory = Arc::new(MemoryTenantDirectory::new());
/// let onboarding = Onboarding::new(directory, provisioner, migrator, admins);
/// let tenant = onboarding
///     .onboard(NewTenant::new("Acme Pharmacy", "owner@acme.example")?)
///     .await?;
/// assert!(tenant.status.is_ready());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Onboarding {
    directory: Arc<dyn TenantDirectory>,
    provisioner: Arc<dyn DatabaseProvisioner>,
    migrator: Arc<dyn SchemaMigrator>,
    admins: Arc<dyn AdminUserCreator>,
    clock: Arc<dyn Clock>,
    billing: Option<Arc<dyn BillingStarter>>,
    notifier: Option<Arc<dyn Notifier>>,
    running: Arc<InFlight>,
}

impl std::fmt::Debug for Onboarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onboarding")
            .field("clock", &self.clock)
            .field("billing", &self.billing.is_some())
            .field("notifier", &self.notifier.is_some())
            .finish_non_exhaustive()
    }
}

impl Onboarding {
    /// A pipeline over these implementations, with the system clock and no notifier.
    pub fn new(
        directory: Arc<dyn TenantDirectory>,
        provisioner: Arc<dyn DatabaseProvisioner>,
        migrator: Arc<dyn SchemaMigrator>,
        admins: Arc<dyn AdminUserCreator>,
    ) -> Self {
        Self {
            directory,
            provisioner,
            migrator,
            admins,
            clock: Arc::new(SystemClock),
            billing: None,
            notifier: None,
            running: Arc::default(),
        }
    }

    /// Starts each tenant's billing (its trial) as the last step before `Ready`.
    pub fn with_billing(mut self, billing: Arc<dyn BillingStarter>) -> Self {
        self.billing = Some(billing);
        self
    }

    /// Uses `clock` for the records' timestamps.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends a [`NotificationKind::TenantReady`] notification once a tenant's `Ready`
    /// status is saved (again on later runs until the notifier accepts it).
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Records a signup as a `Pending` tenant. Signing up again with the same id and
    /// email returns the existing record; with another email it is an error, and so
    /// it is for the id of a deleted or offboarding tenant.
    pub async fn signup(&self, signup: NewTenant) -> Result<Tenant, OnboardingError> {
        let tenant = signup.into_tenant(self.clock.now());
        match self.directory.insert(&tenant).await {
            Ok(stored) => Ok(stored),
            Err(DirectoryError::AlreadyExists(id)) => {
                let existing = self
                    .directory
                    .get(&id)
                    .await?
                    .ok_or_else(|| DirectoryError::NotFound(id.clone()))?;
                if existing.status.is_deleted() {
                    return Err(OnboardingError::IdRetired(id));
                }
                if existing.status.is_offboarded() {
                    return Err(OnboardingError::Offboarded(id));
                }
                if existing.admin_email == tenant.admin_email {
                    Ok(existing)
                } else {
                    Err(OnboardingError::AlreadySignedUp(id))
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Signs a tenant up and runs onboarding to the end.
    pub async fn onboard(&self, signup: NewTenant) -> Result<Tenant, OnboardingError> {
        let tenant = self.signup(signup).await?;
        self.run(&tenant.id).await
    }

    /// Runs (or resumes) onboarding of a signed-up tenant until it is ready or a
    /// step fails, then sends the ready notice if it has not been accepted yet. A
    /// tenant being offboarded (or deleted) is returned as it is.
    ///
    /// A second run of the same tenant through this pipeline (or a clone) waits for
    /// the first, then resumes from what it left.
    pub async fn run(&self, id: &TenantId) -> Result<Tenant, OnboardingError> {
        self.running.exclusive(id, self.run_steps(id)).await
    }

    async fn run_steps(&self, id: &TenantId) -> Result<Tenant, OnboardingError> {
        let mut tenant = self
            .directory
            .get(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(id.clone()))?;
        while let Some(step) = next_step(&tenant) {
            let failed_before = failures_at(&tenant.status, step);
            tenant = self.enter(tenant, step.status()).await?;
            tenant = match self.perform(step, &tenant).await {
                Ok(done) => self.save(done).await?,
                Err(source) => {
                    let attempts = failed_before + 1;
                    return Err(self.record_failure(tenant, step, attempts, source).await?);
                }
            };
        }
        self.announce_ready(tenant).await
    }

    /// Like [`run`](Self::run), but runs again after retryable failures following
    /// `policy` (the workspace's one retry implementation).
    pub async fn run_with_retry(
        &self,
        id: &TenantId,
        policy: &RetryPolicy,
    ) -> Result<Tenant, OnboardingError> {
        policy
            .run(
                |_| self.run(id),
                |error| {
                    if error.is_retryable() {
                        RetryDecision::Retry
                    } else {
                        RetryDecision::GiveUp
                    }
                },
            )
            .await
    }

    async fn perform(&self, step: OnboardingStep, tenant: &Tenant) -> Result<Tenant, BackendError> {
        let mut next = tenant.clone();
        match step {
            OnboardingStep::Provision => {
                // Provisioning is idempotent: it finds a database an earlier attempt made.
                let target = self.provisioner.provision(tenant).await?;
                tracing::info!(tenant = %tenant.id, database = %target.url, "database provisioned");
                for note in &target.provisioning_notes {
                    tracing::warn!(tenant = %tenant.id, note = %note, "the provider repaired the tenant's database");
                }
                next.database = Some(target);
                next.status = TenantStatus::Migrating;
            }
            OnboardingStep::Migrate => {
                let report = self.migrator.migrate(&tenant.id, database(tenant)?).await?;
                tracing::info!(tenant = %tenant.id, applied = report.applied, version = ?report.to_version, "database migrated");
                next.status = TenantStatus::CreatingAdmin;
            }
            OnboardingStep::CreateAdmin => {
                let admin = self.admins.create_admin(tenant, database(tenant)?).await?;
                tracing::info!(tenant = %tenant.id, user = %admin.user_id, created = admin.created, "admin user ready");
                next.status = match self.billing {
                    Some(_) => TenantStatus::StartingBilling,
                    None => TenantStatus::Ready,
                };
            }
            OnboardingStep::StartBilling => {
                let billing = self.billing.as_ref().ok_or_else(|| {
                    BackendError::permanent(format!(
                        "tenant `{}` waits for its billing to start, but this onboarding has none; build it with Onboarding::with_billing",
                        tenant.id
                    ))
                })?;
                billing.start_billing(&tenant.id, self.clock.now()).await?;
                tracing::info!(tenant = %tenant.id, "billing started");
                next.status = TenantStatus::Ready;
            }
        }
        Ok(next)
    }

    /// Tells the notifier that a ready tenant is ready, unless it already accepted
    /// that notice; records its acceptance. A failed delivery is logged and tried
    /// again by the next run.
    async fn announce_ready(&self, tenant: Tenant) -> Result<Tenant, OnboardingError> {
        let Some(notifier) = &self.notifier else {
            return Ok(tenant);
        };
        if !tenant.status.is_ready() || tenant.ready_notified_at.is_some() {
            return Ok(tenant);
        }
        let notification = Notification::new(tenant.id.clone(), NotificationKind::TenantReady);
        if let Err(error) = notifier.notify(&notification).await {
            tracing::warn!(tenant = %tenant.id, %error, "could not send the tenant-ready notice; the next onboarding run sends it");
            return Ok(tenant);
        }
        let mut notified = tenant;
        notified.ready_notified_at = Some(self.clock.now());
        Ok(self.save(notified).await?)
    }

    /// Writes `status` before a step starts, so a crash is visible in the record.
    async fn enter(&self, tenant: Tenant, status: TenantStatus) -> Result<Tenant, DirectoryError> {
        if tenant.status == status {
            return Ok(tenant);
        }
        let mut next = tenant;
        next.status = status;
        self.save(next).await
    }

    async fn save(&self, mut tenant: Tenant) -> Result<Tenant, DirectoryError> {
        tenant.updated_at = self.clock.now();
        self.directory.update(&tenant).await
    }

    async fn record_failure(
        &self,
        tenant: Tenant,
        step: OnboardingStep,
        attempts: u32,
        source: BackendError,
    ) -> Result<OnboardingError, DirectoryError> {
        tracing::warn!(tenant = %tenant.id, %step, attempts, error = %source, "onboarding step failed");
        let mut failed = tenant;
        failed.status = TenantStatus::Failed {
            step,
            reason: source.to_string(),
            attempts,
        };
        self.save(failed.clone()).await?;
        Ok(OnboardingError::Step {
            tenant: failed.id,
            step,
            source,
        })
    }
}

fn next_step(tenant: &Tenant) -> Option<OnboardingStep> {
    let step = match &tenant.status {
        TenantStatus::Ready
        | TenantStatus::Offboarding { .. }
        | TenantStatus::Retained { .. }
        | TenantStatus::Deleted { .. } => return None,
        TenantStatus::Pending | TenantStatus::Provisioning => OnboardingStep::Provision,
        TenantStatus::Migrating => OnboardingStep::Migrate,
        TenantStatus::CreatingAdmin => OnboardingStep::CreateAdmin,
        TenantStatus::StartingBilling => OnboardingStep::StartBilling,
        TenantStatus::Failed { step, .. } => *step,
    };
    // A record without a database cannot be past provisioning, whatever it says.
    if tenant.database.is_none() {
        return Some(OnboardingStep::Provision);
    }
    Some(step)
}

/// How many times `step` had failed in a row, as recorded in `status`.
fn failures_at(status: &TenantStatus, step: OnboardingStep) -> u32 {
    match status {
        TenantStatus::Failed {
            step: failed,
            attempts,
            ..
        } if *failed == step => *attempts,
        _ => 0,
    }
}

fn database(tenant: &Tenant) -> Result<&crate::DatabaseTarget, BackendError> {
    tenant.database.as_ref().ok_or_else(|| {
        BackendError::permanent(format!(
            "tenant `{}` has no database recorded; run onboarding again to provision it",
            tenant.id
        ))
    })
}
