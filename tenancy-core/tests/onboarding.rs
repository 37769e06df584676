//! The onboarding pipeline against fakes that fail at every step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tenancy_core::{
    AdminUser, AdminUserCreator, BackendError, DatabaseProvisioner, DatabaseTarget, DatabaseUrl,
    DirectoryError, MemoryTenantDirectory, MigrationReport, NewTenant, Onboarding, OnboardingError,
    OnboardingStep, RecordingNotifier, RetryPolicy, SchemaMigrator, Tenant, TenantDirectory,
    TenantFilter, TenantId, TenantStatus,
};

/// Failure injection: fail the next `n` calls.
#[derive(Default)]
struct Faults(AtomicU32);

impl Faults {
    fn set(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }
    fn trip(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A provider that holds databases by tenant id and counts what it creates.
#[derive(Default)]
struct FakeProvisioner {
    databases: Mutex<HashMap<TenantId, DatabaseTarget>>,
    created: AtomicU32,
    provision_calls: AtomicU32,
    find_calls: AtomicU32,
    /// When set, every provision waits here for the others: runs that really overlap.
    rendezvous: std::sync::OnceLock<tokio::sync::Barrier>,
    fail_before_create: Faults,
    fail_after_create: Faults,
    hang_after_create: AtomicBool,
}

impl FakeProvisioner {
    fn count(&self) -> usize {
        self.databases.lock().unwrap().len()
    }
}

#[async_trait]
impl DatabaseProvisioner for FakeProvisioner {
    async fn provision(&self, tenant: &Tenant) -> Result<DatabaseTarget, BackendError> {
        self.provision_calls.fetch_add(1, Ordering::SeqCst);
        // Let a concurrent run interleave here, as a real provider's I/O would.
        tokio::task::yield_now().await;
        if let Some(rendezvous) = self.rendezvous.get() {
            rendezvous.wait().await;
        }
        if self.fail_before_create.trip() {
            return Err(BackendError::transient(std::io::Error::other(
                "provider unavailable",
            )));
        }
        let target = {
            let mut dbs = self.databases.lock().unwrap();
            dbs.entry(tenant.id.clone())
                .or_insert_with(|| {
                    self.created.fetch_add(1, Ordering::SeqCst);
                    let url = format!(
                        "postgres://app:pw@db.local:5432/{}",
                        tenant.id.as_str().replace('-', "_")
                    );
                    DatabaseTarget::new(DatabaseUrl::parse(&url).unwrap())
                })
                .clone()
        };
        if self.hang_after_create.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.fail_after_create.trip() {
            return Err(BackendError::transient(std::io::Error::other(
                "gateway timeout",
            )));
        }
        Ok(target)
    }

    async fn find(&self, tenant: &TenantId) -> Result<Option<DatabaseTarget>, BackendError> {
        self.find_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.databases.lock().unwrap().get(tenant).cloned())
    }

    async fn delete(&self, tenant: &TenantId) -> Result<(), BackendError> {
        self.databases.lock().unwrap().remove(tenant);
        Ok(())
    }
}

#[derive(Default)]
struct FakeMigrator {
    calls: AtomicU32,
    faults: Faults,
}

#[async_trait]
impl SchemaMigrator for FakeMigrator {
    async fn migrate(
        &self,
        _: &TenantId,
        _: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if self.faults.trip() {
            return Err(BackendError::permanent(std::io::Error::other(
                "syntax error at line 3",
            )));
        }
        Ok(MigrationReport::new(None, Some(20240127), 2))
    }
}

#[derive(Default)]
struct FakeAdmins {
    calls: AtomicU32,
    faults: Faults,
}

#[async_trait]
impl AdminUserCreator for FakeAdmins {
    async fn create_admin(
        &self,
        tenant: &Tenant,
        _: &DatabaseTarget,
    ) -> Result<AdminUser, BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.faults.trip() {
            return Err(BackendError::transient(std::io::Error::other(
                "auth service 503",
            )));
        }
        Ok(AdminUser::new("user-1", tenant.admin_email.clone(), true))
    }
}

/// A directory whose updates fail while `broken` is set: a crash of the writer.
#[derive(Default)]
struct FlakyDirectory {
    inner: MemoryTenantDirectory,
    fail_updates_after: Mutex<Option<u32>>,
}

#[async_trait]
impl TenantDirectory for FlakyDirectory {
    async fn insert(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        self.inner.insert(tenant).await
    }
    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        self.inner.get(id).await
    }
    async fn update(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        {
            let mut budget = self.fail_updates_after.lock().unwrap();
            match budget.as_mut() {
                Some(0) => return Err(DirectoryError::Storage("disk gone".into())),
                Some(n) => *n -= 1,
                None => {}
            }
        }
        self.inner.update(tenant).await
    }
    async fn list(&self, filter: &TenantFilter) -> Result<Vec<Tenant>, DirectoryError> {
        self.inner.list(filter).await
    }
}

struct Harness {
    directory: Arc<FlakyDirectory>,
    provisioner: Arc<FakeProvisioner>,
    migrator: Arc<FakeMigrator>,
    admins: Arc<FakeAdmins>,
    notifier: RecordingNotifier,
    onboarding: Onboarding,
}

fn harness() -> Harness {
    let directory = Arc::new(FlakyDirectory::default());
    let provisioner = Arc::new(FakeProvisioner::default());
    let migrator = Arc::new(FakeMigrator::default());
    let admins = Arc::new(FakeAdmins::default());
    let notifier = RecordingNotifier::new();
    let onboarding = Onboarding::new(
        directory.clone(),
        provisioner.clone(),
        migrator.clone(),
        admins.clone(),
    )
    .with_notifier(Arc::new(notifier.clone()));
    Harness {
        directory,
        provisioner,
        migrator,
        admins,
        notifier,
        onboarding,
    }
}

fn acme() -> NewTenant {
    NewTenant::new("Acme Pharmacy", "owner@acme.example").unwrap()
}

async fn status(h: &Harness, id: &TenantId) -> TenantStatus {
    h.directory.get(id).await.unwrap().unwrap().status
}

#[tokio::test]
async fn happy_path_reaches_ready_with_one_database() {
    let h = harness();
    let tenant = h.onboarding.onboard(acme()).await.unwrap();
    assert_eq!(tenant.status, TenantStatus::Ready);
    assert!(tenant.database.is_some());
    assert_eq!(h.provisioner.count(), 1);
    assert_eq!(h.migrator.calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.admins.calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.notifier.sent().len(), 1);
    assert!(tenant.ready_notified_at.is_some());
    // Provisioning is one idempotent call: no separate look-up first.
    assert_eq!(h.provisioner.find_calls.load(Ordering::SeqCst), 0);
    // Running a ready tenant again does nothing, and sends no second notice.
    h.onboarding.run(&tenant.id).await.unwrap();
    assert_eq!(h.notifier.sent().len(), 1);
    assert_eq!(h.provisioner.provision_calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.migrator.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn provision_failure_is_recorded_and_resumed() {
    let h = harness();
    h.provisioner.fail_before_create.set(2);
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    for attempt in 1..=2 {
        let err = h.onboarding.run(&id).await.unwrap_err();
        assert!(matches!(
            err,
            OnboardingError::Step {
                step: OnboardingStep::Provision,
                ..
            }
        ));
        assert!(err.is_retryable());
        assert!(matches!(
            status(&h, &id).await,
            TenantStatus::Failed { step: OnboardingStep::Provision, attempts, .. } if attempts == attempt
        ));
    }
    assert_eq!(
        h.onboarding.run(&id).await.unwrap().status,
        TenantStatus::Ready
    );
    assert_eq!(h.provisioner.count(), 1);
}

#[tokio::test]
async fn ambiguous_provision_failure_adopts_the_database_it_made() {
    let h = harness();
    h.provisioner.fail_after_create.set(1);
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    h.onboarding.run(&id).await.unwrap_err();
    assert_eq!(h.provisioner.count(), 1, "the provider did create it");
    h.onboarding.run(&id).await.unwrap();
    // Provisioning again is idempotent: it hands back what the first call made.
    assert_eq!(h.provisioner.provision_calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        h.provisioner.created.load(Ordering::SeqCst),
        1,
        "adopted, not made twice"
    );
}

#[tokio::test]
async fn migrate_failure_resumes_at_migrate_without_provisioning_again() {
    let h = harness();
    h.migrator.faults.set(1);
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    let err = h.onboarding.run(&id).await.unwrap_err();
    assert!(matches!(
        err,
        OnboardingError::Step {
            step: OnboardingStep::Migrate,
            ..
        }
    ));
    assert!(!err.is_retryable(), "a syntax error needs a fix");
    assert!(err.to_string().contains("resumes at this step"), "{err}");
    let failed = h.directory.get(&id).await.unwrap().unwrap();
    assert!(failed.database.is_some(), "the database stays recorded");

    h.onboarding.run(&id).await.unwrap();
    assert_eq!(h.provisioner.provision_calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.migrator.calls.load(Ordering::SeqCst), 2);
    assert_eq!(h.provisioner.count(), 1);
}

#[tokio::test]
async fn admin_failure_counts_attempts_and_resumes() {
    let h = harness();
    h.admins.faults.set(2);
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    h.onboarding.run(&id).await.unwrap_err();
    h.onboarding.run(&id).await.unwrap_err();
    match status(&h, &id).await {
        TenantStatus::Failed {
            step,
            attempts,
            reason,
        } => {
            assert_eq!((step, attempts), (OnboardingStep::CreateAdmin, 2));
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("expected failed, got {other:?}"),
    }
    h.onboarding.run(&id).await.unwrap();
    assert_eq!(h.migrator.calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.admins.calls.load(Ordering::SeqCst), 3);
    assert_eq!(h.provisioner.count(), 1);
}

#[tokio::test]
async fn crash_before_the_database_is_recorded_never_provisions_twice() {
    let h = harness();
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    // The first update (entering Provisioning) succeeds; the one recording the
    // database fails, as if the process died right after the provider answered.
    *h.directory.fail_updates_after.lock().unwrap() = Some(1);
    let err = h.onboarding.run(&id).await.unwrap_err();
    assert!(matches!(
        err,
        OnboardingError::Directory(DirectoryError::Storage(_))
    ));
    assert_eq!(status(&h, &id).await, TenantStatus::Provisioning);

    *h.directory.fail_updates_after.lock().unwrap() = None;
    let tenant = h.onboarding.run(&id).await.unwrap();
    assert!(tenant.status.is_ready());
    assert_eq!(h.provisioner.created.load(Ordering::SeqCst), 1);
    assert_eq!(h.provisioner.count(), 1);
}

#[tokio::test]
async fn process_killed_mid_provision_then_rerun_adopts() {
    let h = harness();
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    h.provisioner
        .hang_after_create
        .store(true, Ordering::SeqCst);
    // The run is abandoned mid-step, as when the process is killed.
    let killed = tokio::time::timeout(Duration::from_millis(50), h.onboarding.run(&id)).await;
    assert!(killed.is_err());
    assert_eq!(status(&h, &id).await, TenantStatus::Provisioning);

    h.provisioner
        .hang_after_create
        .store(false, Ordering::SeqCst);
    h.onboarding.run(&id).await.unwrap();
    assert_eq!(h.provisioner.created.load(Ordering::SeqCst), 1);
    assert_eq!(h.provisioner.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_one_tenant_make_one_database() {
    let h = harness();
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    // Both runs must be inside the provider at once before either goes on.
    let _ = h.provisioner.rendezvous.set(tokio::sync::Barrier::new(2));
    // Two processes: two pipelines over the same directory and provider.
    let second_process = Onboarding::new(
        h.directory.clone(),
        h.provisioner.clone(),
        h.migrator.clone(),
        h.admins.clone(),
    );
    let (first, second) = (h.onboarding.clone(), second_process);
    let (a, b) = (id.clone(), id.clone());
    let both = async {
        tokio::join!(
            tokio::spawn(async move { first.run(&a).await }),
            tokio::spawn(async move { second.run(&b).await })
        )
    };
    let (a, b) = tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("both runs reach the provider together");
    let (a, b) = (a.unwrap(), b.unwrap());
    // One may lose the race on the record (a conflict); the tenant still ends
    // ready with one database.
    assert_eq!(h.provisioner.provision_calls.load(Ordering::SeqCst), 2);
    assert!(a.is_ok() || b.is_ok());
    for lost in [a, b].into_iter().filter_map(Result::err) {
        assert!(
            matches!(
                lost,
                OnboardingError::Directory(DirectoryError::Conflict { .. })
            ),
            "{lost:?}"
        );
    }
    h.onboarding.run(&id).await.unwrap();
    assert_eq!(h.provisioner.created.load(Ordering::SeqCst), 1);
    assert!(status(&h, &id).await.is_ready());
}

#[tokio::test(start_paused = true)]
async fn run_with_retry_gets_through_transient_failures() {
    let h = harness();
    h.provisioner.fail_before_create.set(1);
    h.admins.faults.set(2);
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    let policy = RetryPolicy::default().with_max_attempts(5);
    let tenant = h.onboarding.run_with_retry(&id, &policy).await.unwrap();
    assert!(tenant.status.is_ready());
    assert_eq!(h.provisioner.count(), 1);

    // A permanent failure is not retried.
    let h = harness();
    h.migrator.faults.set(1);
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    h.onboarding.run_with_retry(&id, &policy).await.unwrap_err();
    assert_eq!(h.migrator.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn signup_is_idempotent_for_the_same_admin_only() {
    let h = harness();
    let first = h.onboarding.signup(acme()).await.unwrap();
    let again = h.onboarding.signup(acme()).await.unwrap();
    assert_eq!(first.id, again.id);
    let other = NewTenant::new("Acme Pharmacy", "someone@else.example").unwrap();
    let err = h.onboarding.signup(other).await.unwrap_err();
    assert!(matches!(err, OnboardingError::AlreadySignedUp(_)));
    assert_eq!(
        h.directory.list(&TenantFilter::all()).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn unknown_tenant_is_a_typed_error() {
    let h = harness();
    let err = h
        .onboarding
        .run(&TenantId::try_from("ghost").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        OnboardingError::Directory(DirectoryError::NotFound(_))
    ));
}

/// Starts billing, failing the next `n` calls; records the status the directory held
/// at each call.
#[derive(Default)]
struct FakeBilling {
    directory: Option<Arc<FlakyDirectory>>,
    seen: Mutex<Vec<TenantStatus>>,
    faults: Faults,
}

#[async_trait]
impl tenancy_core::BillingStarter for FakeBilling {
    async fn start_billing(
        &self,
        tenant: &TenantId,
        _now: time::OffsetDateTime,
    ) -> Result<(), BackendError> {
        if let Some(directory) = &self.directory {
            let status = directory.get(tenant).await.unwrap().unwrap().status;
            self.seen.lock().unwrap().push(status);
        }
        if self.faults.trip() {
            return Err(BackendError::transient(std::io::Error::other(
                "billing store unavailable",
            )));
        }
        Ok(())
    }
}

#[tokio::test]
async fn billing_starts_as_a_recorded_step_and_resumes_after_a_failure() {
    let h = harness();
    let billing = Arc::new(FakeBilling {
        directory: Some(h.directory.clone()),
        ..FakeBilling::default()
    });
    billing.faults.set(1);
    let onboarding = h.onboarding.clone().with_billing(billing.clone());

    let error = onboarding.onboard(acme()).await.unwrap_err();
    assert!(
        matches!(
            error,
            OnboardingError::Step {
                step: OnboardingStep::StartBilling,
                ..
            }
        ),
        "{error:?}"
    );
    let id = TenantId::try_from("acme-pharmacy").unwrap();
    assert!(matches!(
        status(&h, &id).await,
        TenantStatus::Failed {
            step: OnboardingStep::StartBilling,
            attempts: 1,
            ..
        }
    ));
    assert!(h.notifier.sent().is_empty(), "no notice before ready");

    let tenant = onboarding.run(&id).await.unwrap();
    assert!(tenant.status.is_ready());
    // The step ran while the record said so, and only it was repeated.
    assert_eq!(
        billing.seen.lock().unwrap().as_slice(),
        [TenantStatus::StartingBilling, TenantStatus::StartingBilling]
    );
    assert_eq!(h.provisioner.provision_calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.admins.calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.notifier.sent().len(), 1);
}

/// A notifier that fails the next `n` notices and records the tenant's status as
/// the directory held it when told.
struct CheckingNotifier {
    directory: Arc<FlakyDirectory>,
    seen: Mutex<Vec<(TenantStatus, bool)>>,
    faults: Faults,
}

#[async_trait]
impl tenancy_core::Notifier for CheckingNotifier {
    async fn notify(&self, notification: &tenancy_core::Notification) -> Result<(), BackendError> {
        let tenant = self
            .directory
            .get(&notification.tenant_id)
            .await
            .unwrap()
            .unwrap();
        let failed = self.faults.trip();
        self.seen.lock().unwrap().push((tenant.status, failed));
        if failed {
            return Err(BackendError::transient(std::io::Error::other("smtp down")));
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_ready_notice_follows_the_saved_ready_and_is_sent_again_until_accepted() {
    let h = harness();
    let notifier = Arc::new(CheckingNotifier {
        directory: h.directory.clone(),
        seen: Mutex::new(Vec::new()),
        faults: Faults::default(),
    });
    notifier.faults.set(1);
    let onboarding = Onboarding::new(
        h.directory.clone(),
        h.provisioner.clone(),
        h.migrator.clone(),
        h.admins.clone(),
    )
    .with_notifier(notifier.clone());

    let tenant = onboarding.onboard(acme()).await.unwrap();
    assert!(
        tenant.status.is_ready(),
        "a failed notice does not fail onboarding"
    );
    assert_eq!(tenant.ready_notified_at, None);
    let stored = h.directory.get(&tenant.id).await.unwrap().unwrap();
    assert_eq!(stored.ready_notified_at, None);

    let tenant = onboarding.run(&tenant.id).await.unwrap();
    assert!(tenant.ready_notified_at.is_some());
    onboarding.run(&tenant.id).await.unwrap();
    assert_eq!(
        notifier.seen.lock().unwrap().as_slice(),
        [(TenantStatus::Ready, true), (TenantStatus::Ready, false)],
        "told only once Ready was saved, again until accepted, then never"
    );
}

#[tokio::test]
async fn a_tenant_waiting_for_billing_is_not_made_ready_without_billing() {
    let h = harness();
    let billing = Arc::new(FakeBilling::default());
    billing.faults.set(1);
    let with_billing = h.onboarding.clone().with_billing(billing);
    with_billing.onboard(acme()).await.unwrap_err();
    let id = TenantId::try_from("acme-pharmacy").unwrap();

    // An onboarding assembled without billing must not skip the step.
    let error = h.onboarding.run(&id).await.unwrap_err();
    assert!(
        matches!(
            &error,
            OnboardingError::Step {
                step: OnboardingStep::StartBilling,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("with_billing"), "{error}");
    assert!(!status(&h, &id).await.is_ready());
}

/// In one process, a second run of a tenant (a resume at start-up racing the
/// signup's own run) waits for the first instead of repeating its steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_one_tenant_in_one_process_go_one_after_another() {
    let h = harness();
    let id = h.onboarding.signup(acme()).await.unwrap().id;
    let (first, second) = (h.onboarding.clone(), h.onboarding.clone());
    let (a, b) = (id.clone(), id.clone());
    let (a, b) = tokio::join!(
        tokio::spawn(async move { first.run(&a).await }),
        tokio::spawn(async move { second.run(&b).await })
    );
    assert!(a.unwrap().unwrap().status.is_ready());
    assert!(b.unwrap().unwrap().status.is_ready());
    assert_eq!(h.provisioner.provision_calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.notifier.sent().len(), 1);
}
