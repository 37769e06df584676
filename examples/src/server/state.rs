use std::sync::Arc;
use std::time::Duration;

use stripe_billing::{BillingProcessor, Reconciler, WebhookVerifier};
use tenancy_core::{
    Clock, LoggingNotifier, Notifier, Offboarding, Onboarding, RetryPolicy, SecretString,
    SystemClock, TenantDirectory, TenantId,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use axum::extract::FromRef;
use stripe_billing::http::WebhookRoutes;
use stripe_billing::pages::{BillingPages, BillingSection};
use tenancy_core::http::pages::{AdminPage, AdminSessions};
use tenancy_core::http::{AdminToken, OffboardingRoutes, TenantRoutes};
use tenant_migrate::http::RolloutRoutes;

use super::MigrationAdmin;

/// Everything the handlers and background tasks share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Arc<dyn TenantDirectory>,
    onboarding: Onboarding,
    onboarding_retry: RetryPolicy,
    offboarding: Option<Offboarding>,
    offboard_on_cancel: bool,
    offboarding_interval: Duration,
    billing: BillingProcessor,
    verifier: Option<WebhookVerifier>,
    reconciler: Option<Reconciler>,
    reconcile_interval: Duration,
    admin_token: Option<SecretString>,
    admin_sessions: AdminSessions,
    billing_pages: Option<BillingPages>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    migrations: MigrationAdmin,
    tick_interval: Duration,
    effects_wake: tokio::sync::Notify,
    onboarding_slots: Semaphore,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("webhooks", &self.inner.verifier.is_some())
            .field("reconciliation", &self.inner.reconciler.is_some())
            .field("admin", &self.inner.admin_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds an [`AppState`]; the optional parts default to "disabled" (no webhook
/// secret, no admin token), the system clock and a logging notifier.
pub struct AppStateBuilder {
    directory: Arc<dyn TenantDirectory>,
    onboarding: Onboarding,
    billing: BillingProcessor,
    migrations: MigrationAdmin,
    verifier: Option<WebhookVerifier>,
    reconciler: Option<Reconciler>,
    reconcile_interval: Duration,
    admin_token: Option<SecretString>,
    secure_cookie: bool,
    billing_pages: Option<BillingPages>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    tick_interval: Duration,
    onboarding_retry: RetryPolicy,
    onboarding_concurrency: usize,
    offboarding: Option<Offboarding>,
    offboard_on_cancel: bool,
    offboarding_interval: Duration,
}

impl std::fmt::Debug for AppStateBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppStateBuilder").finish_non_exhaustive()
    }
}

impl AppStateBuilder {
    /// Verifies webhooks with `verifier` (without one, the webhook route answers 503).
    pub fn verifier(mut self, verifier: Option<WebhookVerifier>) -> Self {
        self.verifier = verifier;
        self
    }

    /// Reconciles billing with Stripe through `reconciler`: at start, every
    /// [`reconcile_interval`](Self::reconcile_interval), and on
    /// `POST /api/admin/billing/reconcile` (without one, that route answers 503 and
    /// nothing runs on a schedule).
    pub fn reconciler(mut self, reconciler: Option<Reconciler>) -> Self {
        self.reconciler = reconciler;
        self
    }

    /// Reconciles with Stripe every `interval` (default one hour).
    pub fn reconcile_interval(mut self, interval: Duration) -> Self {
        self.reconcile_interval = interval;
        self
    }

    /// Guards the admin routes with `token` (without one, they answer 503).
    pub fn admin_token(mut self, token: Option<SecretString>) -> Self {
        self.admin_token = token;
        self
    }

    /// Marks the admin sign-in cookie `Secure` (default `true`).
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// Serves tenants' billing pages with `pages` (without them, `/billing`
    /// answers 503).
    pub fn billing_pages(mut self, pages: Option<BillingPages>) -> Self {
        self.billing_pages = pages;
        self
    }

    /// Sends notices through `notifier`.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Uses `clock` for trials, grace periods and the billing tick.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs the billing clock every `interval`.
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.tick_interval = interval;
        self
    }

    /// Retries background onboarding with `policy`.
    pub fn onboarding_retry(mut self, policy: RetryPolicy) -> Self {
        self.onboarding_retry = policy;
        self
    }

    /// Onboards at most `n` tenants at once (default 8): a restart with thousands of
    /// unfinished signups must not open thousands of provider requests at once.
    pub fn onboarding_concurrency(mut self, n: usize) -> Self {
        self.onboarding_concurrency = n.max(1);
        self
    }

    /// Offboards tenants with `offboarding`: `DELETE /api/admin/tenants/{id}` and
    /// `POST …/restore`, unfinished offboardings resumed at start, and tenants past
    /// their retention deleted every [`offboarding_interval`](Self::offboarding_interval)
    /// (without it, those routes answer 503).
    pub fn offboarding(mut self, offboarding: Option<Offboarding>) -> Self {
        self.offboarding = offboarding;
        self
    }

    /// Starts offboarding a tenant when its billing reaches cancelled (default off;
    /// needs [`offboarding`](Self::offboarding)).
    pub fn offboard_on_cancel(mut self, on: bool) -> Self {
        self.offboard_on_cancel = on;
        self
    }

    /// Resumes offboardings and deletes tenants past their retention every
    /// `interval` (default one hour).
    pub fn offboarding_interval(mut self, interval: Duration) -> Self {
        self.offboarding_interval = interval;
        self
    }

    /// The state.
    pub fn build(self) -> AppState {
        let admin_sessions = AdminSessions::new(self.admin_token.clone())
            .secure_cookie(self.secure_cookie)
            .with_clock(self.clock.clone());
        AppState {
            inner: Arc::new(Inner {
                directory: self.directory,
                onboarding: self.onboarding,
                onboarding_retry: self.onboarding_retry,
                offboarding: self.offboarding,
                offboard_on_cancel: self.offboard_on_cancel,
                offboarding_interval: self.offboarding_interval,
                billing: self.billing,
                verifier: self.verifier,
                reconciler: self.reconciler,
                reconcile_interval: self.reconcile_interval,
                admin_token: self.admin_token,
                admin_sessions,
                billing_pages: self.billing_pages,
                notifier: self.notifier,
                clock: self.clock,
                migrations: self.migrations,
                tick_interval: self.tick_interval,
                effects_wake: tokio::sync::Notify::new(),
                onboarding_slots: Semaphore::new(self.onboarding_concurrency),
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }
}

impl AppState {
    /// A builder over the required parts.
    pub fn builder(
        directory: Arc<dyn TenantDirectory>,
        onboarding: Onboarding,
        billing: BillingProcessor,
        migrations: MigrationAdmin,
    ) -> AppStateBuilder {
        AppStateBuilder {
            directory,
            onboarding,
            billing,
            migrations,
            verifier: None,
            reconciler: None,
            reconcile_interval: Duration::from_secs(3600),
            admin_token: None,
            secure_cookie: true,
            billing_pages: None,
            notifier: Arc::new(LoggingNotifier),
            clock: Arc::new(SystemClock),
            tick_interval: Duration::from_secs(60),
            onboarding_retry: RetryPolicy::default(),
            onboarding_concurrency: 8,
            offboarding: None,
            offboard_on_cancel: false,
            offboarding_interval: Duration::from_secs(3600),
        }
    }

    /// The tenant directory.
    pub fn directory(&self) -> &Arc<dyn TenantDirectory> {
        &self.inner.directory
    }

    /// The onboarding pipeline.
    pub fn onboarding(&self) -> &Onboarding {
        &self.inner.onboarding
    }

    /// The offboarding pipeline, when configured.
    pub fn offboarding(&self) -> Option<&Offboarding> {
        self.inner.offboarding.as_ref()
    }

    /// Whether a cancelled subscription starts offboarding.
    pub fn offboards_on_cancel(&self) -> bool {
        self.inner.offboard_on_cancel && self.inner.offboarding.is_some()
    }

    /// How often offboardings are resumed and retention checked.
    pub fn offboarding_interval(&self) -> Duration {
        self.inner.offboarding_interval
    }

    /// The billing processor.
    pub fn billing(&self) -> &BillingProcessor {
        &self.inner.billing
    }

    /// The webhook verifier, when a secret is configured.
    pub fn verifier(&self) -> Option<&WebhookVerifier> {
        self.inner.verifier.as_ref()
    }

    /// The reconciler, when a Stripe secret key is configured.
    pub fn reconciler(&self) -> Option<&Reconciler> {
        self.inner.reconciler.as_ref()
    }

    /// How often billing is reconciled with Stripe.
    pub fn reconcile_interval(&self) -> Duration {
        self.inner.reconcile_interval
    }

    /// The admin token, when configured.
    pub fn admin_token(&self) -> Option<&SecretString> {
        self.inner.admin_token.as_ref()
    }

    /// The tenants' billing pages, when configured.
    pub fn billing_pages(&self) -> Option<&BillingPages> {
        self.inner.billing_pages.as_ref()
    }

    /// The notifier.
    pub fn notifier(&self) -> &Arc<dyn Notifier> {
        &self.inner.notifier
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The migration administration (rollouts).
    pub fn migrations(&self) -> &MigrationAdmin {
        &self.inner.migrations
    }

    /// How often the billing clock runs.
    pub fn tick_interval(&self) -> Duration {
        self.inner.tick_interval
    }

    /// Cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Background tasks, waited for at shutdown.
    pub(super) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// Wakes the effect-delivery task.
    pub(super) fn wake_effects(&self) {
        self.inner.effects_wake.notify_one();
    }

    /// Waits until the effect-delivery task is woken.
    pub(super) async fn effects_woken(&self) {
        self.inner.effects_wake.notified().await;
    }

    /// Onboards `tenant` in the background (with retries; the pipeline starts its
    /// trial and sends the ready notice).
    pub fn spawn_onboarding(&self, tenant: TenantId) {
        let state = self.clone();
        self.inner.tasks.spawn(async move {
            let run = async {
                let _slot = state.inner.onboarding_slots.acquire().await;
                state.onboarding().run_with_retry(&tenant, &state.inner.onboarding_retry).await
            };
            let result = tokio::select! {
                result = run => result,
                () = state.shutdown_token().cancelled() => return,
            };
            match result {
                // The trial's effects wait in the billing outbox.
                Ok(_) => state.wake_effects(),
                Err(error) => tracing::warn!(%tenant, %error, "onboarding stopped; it resumes at the next start or signup"),
            }
        });
    }
}

impl FromRef<AppState> for TenantRoutes {
    fn from_ref(state: &AppState) -> Self {
        let background = state.clone();
        TenantRoutes::new(state.onboarding().clone(), state.directory().clone())
            .on_signup(move |tenant| background.spawn_onboarding(tenant))
    }
}

impl AppState {
    /// Starts (if needed) and runs `tenant`'s offboarding in the background, with
    /// the onboarding retry policy; a failed step is resumed by the next scheduled
    /// check. Does nothing without offboarding.
    pub fn spawn_offboarding(&self, tenant: TenantId) {
        let Some(offboarding) = self.offboarding().cloned() else {
            return;
        };
        let state = self.clone();
        self.inner.tasks.spawn(async move {
            let run = async {
                offboarding.start(&tenant).await?;
                state
                    .inner
                    .onboarding_retry
                    .run(
                        |_| offboarding.run(&tenant),
                        |error| {
                            if error.is_retryable() {
                                tenancy_core::RetryDecision::Retry
                            } else {
                                tenancy_core::RetryDecision::GiveUp
                            }
                        },
                    )
                    .await
            };
            let result = tokio::select! {
                result = run => result,
                () = state.shutdown_token().cancelled() => return,
            };
            match result {
                // Ending billing queued its effects in the outbox.
                Ok(_) => state.wake_effects(),
                Err(error @ tenancy_core::OffboardingError::Busy { .. }) => {
                    tracing::info!(%tenant, %error, "offboarding left to the process running it");
                }
                Err(error) => tracing::warn!(%tenant, %error, "offboarding stopped; the next scheduled check resumes it"),
            }
        });
    }
}

impl FromRef<AppState> for OffboardingRoutes {
    fn from_ref(state: &AppState) -> Self {
        let Some(offboarding) = state.offboarding() else {
            return OffboardingRoutes::unavailable();
        };
        let background = state.clone();
        let onboarding = state.clone();
        OffboardingRoutes::new(offboarding.clone())
            .on_start(move |tenant| background.spawn_offboarding(tenant))
            // A tenant restored before it finished onboarding finishes it now.
            .on_restored(move |tenant| {
                if tenant.status == tenancy_core::TenantStatus::Pending {
                    onboarding.spawn_onboarding(tenant.id.clone());
                }
            })
    }
}

impl FromRef<AppState> for WebhookRoutes {
    fn from_ref(state: &AppState) -> Self {
        let waker = state.clone();
        let routes = WebhookRoutes::new(state.billing().clone(), state.verifier().cloned())
            .with_clock(state.clock().clone())
            .on_applied(move || waker.wake_effects());
        match state.reconciler() {
            Some(reconciler) => routes.with_reconciler(reconciler.clone()),
            None => routes,
        }
    }
}

impl FromRef<AppState> for RolloutRoutes {
    fn from_ref(state: &AppState) -> Self {
        let background = state.clone();
        let resumer = state.clone();
        let routes = state.migrations().routes().on_migrations_changed(move || {
            let state = resumer.clone();
            resumer
                .tasks()
                .spawn(super::workers::resume_failed_migrations(state));
        });
        routes.on_background(move |task| {
            let shutdown = background.shutdown_token().clone();
            background.tasks().spawn(async move {
                tokio::select! {
                    () = task => {}
                    () = shutdown.cancelled() => tracing::info!("rollout paused by shutdown; it resumes when run again"),
                }
            });
        })
    }
}

impl FromRef<AppState> for AdminToken {
    fn from_ref(state: &AppState) -> Self {
        AdminToken::new(state.admin_token().cloned())
    }
}

impl FromRef<AppState> for AdminSessions {
    fn from_ref(state: &AppState) -> Self {
        state.inner.admin_sessions.clone()
    }
}

impl FromRef<AppState> for AdminPage {
    fn from_ref(state: &AppState) -> Self {
        AdminPage::new(state.directory().clone())
            .section(Arc::new(tenant_migrate::pages::RolloutSection::new(
                RolloutRoutes::from_ref(state),
            )))
            .section(Arc::new(BillingSection::new(state.billing().clone())))
    }
}
