//! One running service per test: the real HTTP server on an ephemeral port, a
//! PostgreSQL control plane in a throw-away database, one PostgreSQL database per
//! tenant (unique prefix, dropped at the end), and a manual clock; [`browser`] drives
//! headless Chromium for tests of server-rendered pages.
#![allow(dead_code, unreachable_pub)]

pub mod browser;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use stripe_billing::pages::BillingPages;
use stripe_billing::{BillingLinks, Reconciler, StripeClient, WebhookVerifier};
use tenancy_core::testing::{server_url, TestDatabase};
use tenancy_core::{
    Clock, DatabaseProvisioner, DatabaseUrl, LocalAdminUserCreator, ManualClock,
    PostgresServerProvisioner, RecordingNotifier, RetryPolicy, TenantId,
};
use tenancy_examples::assembly::Assembly;
use tenancy_examples::control_plane::{ControlPlane, TenantDatabases};
use tenancy_examples::server::{self, AppState, MigrationAdmin};
use time::macros::datetime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const WEBHOOK_SECRET: &str = "whsec_e2e_secret";
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";
pub const STRIPE_KEY: &str = "sk_test_e2e_key";
pub const LINK_SECRET: &str = "e2e-billing-link-secret-0123456789abcdef";

pub struct Service {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub notifier: RecordingNotifier,
    pub assembly: Assembly,
    /// Where the service writes tenants' exports (removed by [`stop`](Self::stop)).
    pub exports: std::path::PathBuf,
    provisioner: PostgresServerProvisioner,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _control_plane: TestDatabase,
}

impl Service {
    /// Starts a service with webhooks and admin routes enabled.
    pub async fn start() -> Self {
        Self::start_with(Some(ADMIN_TOKEN), None).await
    }

    /// Starts a service; `stripe_api` points its Stripe client (which re-reads
    /// subscriptions) at a stand-in server.
    pub async fn start_with(admin_token: Option<&str>, stripe_api: Option<String>) -> Self {
        Self::start_on(admin_token, stripe_api, |local| TenantDatabases {
            provisioner: Arc::new(local),
            admins: Arc::new(LocalAdminUserCreator),
            provider: "postgres",
        })
        .await
    }

    /// Starts a service whose Stripe client points at the stand-in `stripe_api` and
    /// which reconciles with it at start, every `every`, and on its admin route.
    pub async fn start_reconciling(stripe_api: String, every: Duration) -> Self {
        Self::start_full(
            Some(ADMIN_TOKEN),
            Some(stripe_api),
            Some(every),
            false,
            |local| TenantDatabases {
                provisioner: Arc::new(local),
                admins: Arc::new(LocalAdminUserCreator),
                provider: "postgres",
            },
        )
        .await
    }

    /// Starts a service whose tenant databases come from `databases`, given the
    /// provisioner of local databases with this service's unique prefix.
    pub async fn start_on(
        admin_token: Option<&str>,
        stripe_api: Option<String>,
        databases: impl FnOnce(PostgresServerProvisioner) -> TenantDatabases,
    ) -> Self {
        Self::start_full(admin_token, stripe_api, None, false, databases).await
    }

    /// Starts a service whose Stripe client points at `stripe_api` and which
    /// offboards a tenant when its billing reaches cancelled.
    pub async fn start_offboarding_on_cancel(stripe_api: String) -> Self {
        Self::start_full(Some(ADMIN_TOKEN), Some(stripe_api), None, true, |local| {
            TenantDatabases {
                provisioner: Arc::new(local),
                admins: Arc::new(LocalAdminUserCreator),
                provider: "postgres",
            }
        })
        .await
    }

    /// Starts a service; with `reconcile_every` (and `stripe_api`), it reconciles
    /// billing with the Stripe stand-in. Its offboarding keeps tenants 30 days and
    /// checks every 100 ms (of real time; retention follows the manual clock).
    async fn start_full(
        admin_token: Option<&str>,
        stripe_api: Option<String>,
        reconcile_every: Option<Duration>,
        offboard_on_cancel: bool,
        databases: impl FnOnce(PostgresServerProvisioner) -> TenantDatabases,
    ) -> Self {
        let control_plane = TestDatabase::create_with_prefix("tk_e2e").await.unwrap();
        let plane = ControlPlane::open(control_plane.url().expose())
            .await
            .unwrap();
        let prefix = format!("{}_t_", control_plane.name());
        let provisioner =
            PostgresServerProvisioner::new(DatabaseUrl::parse(&server_url()).unwrap())
                .with_prefix(&prefix);
        let databases = databases(provisioner.clone());
        let clock = ManualClock::new(datetime!(2026-01-01 0:00 UTC));
        let env: [(&str, &str); 0] = [];
        let notifier = RecordingNotifier::new();
        let mut assembly =
            Assembly::with_databases(plane, databases, &env, Arc::new(clock.clone()))
                .await
                .unwrap()
                .with_notifier(Arc::new(notifier.clone()));
        if let Some(api) = stripe_api {
            let client = StripeClient::builder(STRIPE_KEY)
                .base_url(api)
                .retry_policy(RetryPolicy::never())
                .build()
                .unwrap();
            assembly = assembly.with_stripe(client);
        }
        let verifier = WebhookVerifier::builder()
            .secret(WEBHOOK_SECRET)
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Browsers keep the admin's `Secure` cookie over plain HTTP on `localhost` only.
        let base = format!("http://localhost:{port}");
        let billing_pages = BillingPages::new(
            assembly.billing.clone(),
            assembly.plane.directory.clone(),
            BillingLinks::new(LINK_SECRET.into()).unwrap(),
            &base,
        )
        .stripe(assembly.stripe.clone())
        .with_clock(Arc::new(clock.clone()));
        let reconciler = match (&assembly.stripe, reconcile_every) {
            (Some(client), Some(_)) => Some(
                Reconciler::new(assembly.billing.clone(), Arc::new(client.clone()))
                    .with_clock(Arc::new(clock.clone())),
            ),
            _ => None,
        };
        let exports = std::env::temp_dir().join(format!("{}_exports", control_plane.name()));
        let offboarding = assembly.offboarding(
            Arc::new(provisioner.clone()),
            exports.clone(),
            time::Duration::days(30),
            Arc::new(clock.clone()),
        );
        let state = AppState::builder(
            assembly.plane.directory.clone(),
            assembly.onboarding.clone(),
            assembly.billing.clone(),
            MigrationAdmin::new(&assembly),
        )
        .verifier(Some(verifier))
        .reconciler(reconciler)
        .reconcile_interval(reconcile_every.unwrap_or(Duration::from_secs(3600)))
        .admin_token(admin_token.map(Into::into))
        .billing_pages(Some(billing_pages))
        .clock(Arc::new(clock.clone()))
        .notifier(Arc::new(notifier.clone()))
        .tick_interval(Duration::from_millis(100))
        .onboarding_retry(RetryPolicy::default().with_initial_delay(Duration::from_millis(20)))
        .offboarding(Some(offboarding))
        .offboard_on_cancel(offboard_on_cancel)
        .offboarding_interval(Duration::from_millis(100))
        .build();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            http: reqwest::Client::new(),
            clock,
            notifier,
            assembly,
            exports,
            provisioner,
            stop: Some(stop),
            task: Some(task),
            _control_plane: control_plane,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An admin GET, answering the status and the JSON body.
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.admin(reqwest::Method::GET, path, None).await
    }

    /// An admin request with an optional JSON body, answering the status and the
    /// JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs up a company and waits until onboarding made it ready and its ready
    /// notice was accepted (the last thing onboarding does; its billing state exists
    /// by then).
    pub async fn signup_ready(&self, company: &str, email: &str) -> TenantId {
        let response = self
            .http
            .post(self.url("/api/signup"))
            .json(&serde_json::json!({ "company": company, "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let body: Value = response.json().await.unwrap();
        let id = TenantId::try_from(body["tenant_id"].as_str().unwrap()).unwrap();
        self.wait_for(&format!("/api/admin/tenants/{id}"), |status, tenant| {
            status == 200
                && tenant["status"]["state"] == "ready"
                && !tenant["ready_notified_at"].is_null()
        })
        .await;
        id
    }

    /// Polls an admin route until `done` holds (at most 30 s).
    pub async fn wait_for(&self, path: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
        for _ in 0..300 {
            let (status, body) = self.admin_get(path).await;
            if done(status, &body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} never reached the expected state");
    }

    /// Moves the clock.
    pub fn advance(&self, by: time::Duration) {
        self.clock.advance(by);
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Every tenant in the directory.
    pub async fn tenants(&self) -> Vec<tenancy_core::Tenant> {
        let directory = &self.assembly.plane.directory;
        directory.list(&Default::default()).await.unwrap()
    }

    /// Stops the server and drops every tenant database it made.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        for tenant in self.tenants().await {
            self.provisioner.delete(&tenant.id).await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.exports);
    }
}
