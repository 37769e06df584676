//! HTTP routes for a host's axum service (feature `axum`): the Stripe webhook and its
//! set-up check, a tenant's billing state and reconciliation with Stripe for the
//! admin, as composable [`Router`]s over state the host owns ([`FromRef`]).
//!
//! # Example: a host that wants only Stripe webhooks
//!
//! Such a host needs neither the Stripe API client nor `reqwest`:
//!
//! ```toml
//! [dependencies]
//! stripe-billing = { version = "0.1", default-features = false, features = ["axum", "sqlite"] }
//! ```
//!
//! It keeps the billing state in SQLite, and mounts [`webhook_router`] where Stripe
//! delivers (the endpoint configured in the dashboard). The router's state is the host's
//! own: [`WebhookRoutes`] only has to be reachable from it through [`FromRef`].
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::body::Body;
//! use axum::extract::FromRef;
//! use axum::http::{Request, StatusCode};
//! use axum::Router;
//! use stripe_billing::http::{webhook_router, WebhookRoutes};
//! use stripe_billing::{BillingProcessor, LifecycleConfig, PlanCatalog, PricingPlan, WebhookVerifier};
//! use tower::ServiceExt; // `oneshot`: call the router without binding a port
//!
//! /// The host's state; the webhook routes take their part through `FromRef`.
//! #[derive(Clone)]
//! struct AppState {
//!     billing: WebhookRoutes,
//!     // … the host's own state
//! }
//!
//! impl FromRef<AppState> for WebhookRoutes {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.billing.clone()
//!     }
//! }
//!
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = PlanCatalog::new([
//!     PricingPlan::new("starter", "Starter").monthly("price_starter_m", 9_900).modules(["inventory"]),
//! ])?;
//! // A file in production, such as "sqlite://billing.db?mode=rwc".
//! let store = stripe_billing::SqliteBillingStore::connect("sqlite::memory:").await?;
//! let processor = BillingProcessor::new(Arc::new(store), LifecycleConfig::new(catalog));
//! // The endpoint's signing secret, e.g. from STRIPE_WEBHOOK_SECRET.
//! let verifier = WebhookVerifier::new("whsec_test_secret")?;
//! let state = AppState {
//!     billing: WebhookRoutes::new(processor.clone(), Some(verifier)),
//! };
//!
//! let app: Router = Router::new()
//!     .nest("/api/webhooks/stripe", webhook_router())
//!     // .merge(the host's own routes)
//!     .with_state(state);
//! // To serve it: axum::serve(tokio::net::TcpListener::bind("0.0.0.0:8000").await?, app).await?;
//!
//! // Stripe delivers a signed event: 200, and the tenant's billing starts.
//! let body = br#"{"id": "evt_1", "object": "event", "type": "checkout.session.completed",
//!   "created": 1767225600, "livemode": false, "api_version": "2025-03-31.basil",
//!   "data": {"object": {"id": "cs_1", "object": "checkout.session", "mode": "subscription",
//!   "payment_status": "paid", "client_reference_id": "acme", "customer": "cus_1",
//!   "subscription": "sub_1", "created": 1767225600, "metadata": {}}}}"#;
//! let now = time::OffsetDateTime::now_utc().unix_timestamp();
//! let signature = stripe_billing::sign(body, &"whsec_test_secret".into(), now);
//! let delivery = Request::post("/api/webhooks/stripe")
//!     .header("stripe-signature", signature)
//!     .body(Body::from(body.to_vec()))?;
//! assert_eq!(app.clone().oneshot(delivery).await?.status(), StatusCode::OK);
//! let acme = tenancy_core::TenantId::new("acme")?;
//! assert!(processor.state(&acme).await?.is_some());
//!
//! // A forged delivery: 400, nothing applied.
//! let forged = Request::post("/api/webhooks/stripe")
//!     .header("stripe-signature", "t=1767225600,v1=00")
//!     .body(Body::from(body.to_vec()))?;
//! assert_eq!(app.clone().oneshot(forged).await?.status(), StatusCode::BAD_REQUEST);
//!
//! // The set-up check.
//! let check = Request::get("/api/webhooks/stripe/test").body(Body::empty())?;
//! assert_eq!(app.oneshot(check).await?.status(), StatusCode::OK);
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tenancy_core::http::{rfc3339, ApiError};
use tenancy_core::{Clock, SystemClock, TenantId};

use crate::{
    BillingPhase, BillingProcessor, EventType, Module, ProcessError, ProcessOutcome,
    ReconcileError, ReconcileReport, Reconciler, TenantReconciliation, WebhookVerifier,
};

/// The largest webhook body accepted (Stripe's events are far smaller).
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// The largest reconciliation request body accepted (`{"tenant": "…"}`).
const MAX_RECONCILE_BODY: usize = 4 * 1024;

/// The state of [`webhook_router`], [`billing_router`] and [`reconcile_router`].
#[derive(Clone)]
pub struct WebhookRoutes {
    processor: BillingProcessor,
    verifier: Option<WebhookVerifier>,
    reconciler: Option<Reconciler>,
    clock: Arc<dyn Clock>,
    on_applied: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for WebhookRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRoutes")
            .field("processor", &self.processor)
            .field("verifier", &self.verifier.is_some())
            .field("reconciler", &self.reconciler.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookRoutes {
    /// Routes over `processor`; without a verifier the webhook answers 503 (a
    /// webhook that cannot check signatures must not accept events).
    pub fn new(processor: BillingProcessor, verifier: Option<WebhookVerifier>) -> Self {
        Self {
            processor,
            verifier,
            reconciler: None,
            clock: Arc::new(SystemClock),
            on_applied: None,
        }
    }

    /// Reconciles with Stripe through `reconciler` on [`reconcile_router`]'s route
    /// (without one, it answers 503).
    pub fn with_reconciler(mut self, reconciler: Reconciler) -> Self {
        self.reconciler = Some(reconciler);
        self
    }

    /// Uses `clock` for parking times (default the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Calls `wake` after an event (or a reconciliation) changed a tenant, e.g. to
    /// wake the task that carries out the effects queued in the outbox.
    pub fn on_applied(mut self, wake: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_applied = Some(Arc::new(wake));
        self
    }

    /// The processor.
    pub fn processor(&self) -> &BillingProcessor {
        &self.processor
    }

    fn wake(&self) {
        if let Some(wake) = &self.on_applied {
            wake();
        }
    }
}

/// The answer to a webhook delivery.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WebhookReceipt {
    /// Always `true`: the event was verified and kept (applied, parked or ignored).
    pub received: bool,
    /// Whether the event had been processed before.
    pub duplicate: bool,
    /// Why the event was acknowledged without being applied, when it names a tenant
    /// this service does not have ([`ProcessOutcome::TenantNotInDirectory`]) or a
    /// value that is no tenant id ([`ProcessError::InvalidTenantReference`]); left
    /// out otherwise (a duplicate says only `duplicate`). Stripe shows it in the
    /// endpoint's delivery log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// The answer of the set-up check.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WebhookSetup {
    /// Always `true`: the route is mounted.
    pub ok: bool,
    /// Whether a signing secret is configured (without one, deliveries answer 503).
    pub secret_configured: bool,
    /// The event types that change billing state.
    pub handled_events: &'static [&'static str],
}

/// A tenant's billing state, for the admin.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BillingView {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The phase's name (`trialing`, `active`, `past_due`, `suspended`, `cancelled`).
    pub status: &'static str,
    /// The plan, when one is chosen.
    pub plan: Option<String>,
    /// The modules enabled now.
    pub modules: BTreeSet<Module>,
    /// When the trial ends (RFC 3339), while trialing.
    pub trial_ends_at: Option<String>,
    /// When the grace period ends (RFC 3339), while past due.
    pub grace_ends_at: Option<String>,
}

/// `POST /` (the Stripe webhook: verify the raw body, process the event) → 200
/// [`WebhookReceipt`]; 400 when verification fails, 413 above [`MAX_WEBHOOK_BODY`],
/// 500 when the store or the processor's tenant lookup fails (Stripe then delivers
/// again), 503 without a verifier. An event for a tenant the processor's lookup does
/// not know answers 200 with `ignored` saying so.
/// `GET /test` → [`WebhookSetup`].
pub fn webhook_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    WebhookRoutes: FromRef<S>,
{
    Router::new()
        .route(
            "/",
            post(receive::<S>).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY)),
        )
        .route("/test", get(setup::<S>))
}

/// `GET /tenants/{id}/billing` → [`BillingView`]; 404 while the tenant has no billing
/// state. An admin route: mount it behind the host's admin guard.
pub fn billing_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    WebhookRoutes: FromRef<S>,
{
    Router::new().route("/tenants/{id}/billing", get(billing::<S>))
}

/// The body of the reconciliation route: a tenant to check against its Stripe
/// subscription, or nothing for the fleet's missed events.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ReconcileRequest {
    /// The tenant to reconcile.
    #[serde(default)]
    pub tenant: Option<String>,
    /// For the fleet: read Stripe's events created since this time (RFC 3339, e.g.
    /// `2026-01-05T00:00:00Z`) instead of since the stored cursor; no earlier than 30
    /// days ago either way.
    #[serde(default)]
    pub since: Option<String>,
}

impl ReconcileRequest {
    /// The `since` time, parsed: 400 when it is not RFC 3339 or comes with a tenant.
    fn since(&self) -> Result<Option<time::OffsetDateTime>, ApiError> {
        let Some(raw) = &self.since else {
            return Ok(None);
        };
        if self.tenant.is_some() {
            return Err(ApiError::bad_request(
                "`since` applies to the whole fleet's events; leave it out when reconciling one tenant",
            ));
        }
        time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
            .map(Some)
            .map_err(|error| {
                ApiError::bad_request(format_args!(
                    "`since` is not an RFC 3339 time ({error}); write it like 2026-01-05T00:00:00Z"
                ))
            })
    }
}

/// `POST /billing/reconcile` → 200 [`ReconcileReport`]
/// (`{"events_seen", "events_applied", "duplicates", "tenants_reconciled"}`).
///
/// Without a body (or with `{}`), applies the events Stripe created since the
/// reconciliation cursor (or in the last 30 days, Stripe's retention) that were
/// not processed ([`Reconciler::reconcile`]); with `{"since": "2026-01-05T00:00:00Z"}`
/// (RFC 3339), those created since then instead. With `{"tenant": "id"}`, checks that
/// tenant against its Stripe subscription and moves it to match
/// ([`Reconciler::reconcile_tenant`]). 400 for a bad body, tenant id or `since`, 404 when the
/// tenant has no billing state, 502 when Stripe cannot be read (what was applied
/// stays applied; run it again), 503 without a reconciler. An admin route: mount it
/// behind the host's admin guard.
pub fn reconcile_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    WebhookRoutes: FromRef<S>,
{
    Router::new().route(
        "/billing/reconcile",
        post(reconcile::<S>).layer(DefaultBodyLimit::max(MAX_RECONCILE_BODY)),
    )
}

async fn reconcile<S>(
    State(state): State<S>,
    body: Bytes,
) -> Result<Json<ReconcileReport>, ApiError>
where
    WebhookRoutes: FromRef<S>,
{
    let routes = WebhookRoutes::from_ref(&state);
    let Some(reconciler) = &routes.reconciler else {
        return Err(ApiError::unavailable(
            "reconciliation is off: it reads Stripe's API, so configure a Stripe secret key (STRIPE_SECRET_KEY)",
        ));
    };
    let request: ReconcileRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReconcileRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request(format_args!(
                "the body is not {{\"tenant\": \"id\"}} or {{\"since\": \"RFC 3339 time\"}}: {error}; send it empty to reconcile the whole fleet from where the last run stopped"
            ))
        })?
    };
    let since = request.since()?;
    let report = match request.tenant {
        Some(tenant) => {
            let tenant_id = TenantId::try_from(tenant.as_str()).map_err(ApiError::bad_request)?;
            let outcome = reconciler
                .reconcile_tenant(&tenant_id)
                .await
                .map_err(reconcile_error)?;
            let mut report = ReconcileReport::default();
            if matches!(outcome, TenantReconciliation::Moved { .. }) {
                report.tenants_reconciled = 1;
            }
            report
        }
        None => match reconciler.reconcile(since).await {
            Ok(report) => report,
            Err(error) => {
                // Events applied before the failure may have queued effects.
                routes.wake();
                return Err(reconcile_error(error));
            }
        },
    };
    if report.changed_anything() {
        routes.wake();
    }
    Ok(Json(report))
}

fn reconcile_error(error: ReconcileError) -> ApiError {
    match error {
        error @ ReconcileError::NoBillingState(_) => ApiError::not_found(error),
        error @ ReconcileError::Stripe { .. } => {
            tracing::warn!(%error, "reconciliation stopped");
            ApiError::new(StatusCode::BAD_GATEWAY, error.to_string())
        }
        error => ApiError::internal(error),
    }
}

async fn receive<S>(
    State(state): State<S>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceipt>, ApiError>
where
    WebhookRoutes: FromRef<S>,
{
    let routes = WebhookRoutes::from_ref(&state);
    let Some(verifier) = &routes.verifier else {
        return Err(ApiError::unavailable(
            "webhooks are disabled: set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret",
        ));
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let event = verifier.verify(&body, signature).map_err(|error| {
        tracing::warn!(%error, "rejected a Stripe webhook");
        ApiError::bad_request(error)
    })?;
    let now = routes.clock.now();
    let mut ignored = None;
    let duplicate = match routes.processor.process_webhook(&event, &body, now).await {
        Ok(ProcessOutcome::AlreadyProcessed { .. }) => true,
        // Parked by the processor until its tenant is known.
        Ok(ProcessOutcome::UnknownTenant { .. }) => false,
        // Another environment's tenant (logged by the processor): acknowledged, so that
        // Stripe does not retry what this service will never apply.
        Ok(ProcessOutcome::TenantNotInDirectory { tenant_id, .. }) => {
            ignored = Some(format!(
                "tenant `{tenant_id}` is not in this service's tenant directory"
            ));
            false
        }
        Ok(other) => {
            tracing::info!(event = %event.id, ?other, "webhook processed");
            if let Some(wake) = &routes.on_applied {
                wake();
            }
            false
        }
        // A bad tenant reference will not get better when Stripe retries: acknowledge it.
        Err(error @ ProcessError::InvalidTenantReference { .. }) => {
            tracing::warn!(event = %event.id, %error, "webhook ignored");
            ignored = Some(error.to_string());
            false
        }
        // Storage or tenant lookup trouble: answer 500 so that Stripe delivers the event again.
        Err(error) => return Err(ApiError::internal(error)),
    };
    Ok(Json(WebhookReceipt {
        received: true,
        duplicate,
        ignored,
    }))
}

async fn setup<S>(State(state): State<S>) -> Json<WebhookSetup>
where
    WebhookRoutes: FromRef<S>,
{
    let routes = WebhookRoutes::from_ref(&state);
    Json(WebhookSetup {
        ok: true,
        secret_configured: routes.verifier.is_some(),
        handled_events: EventType::NAMED,
    })
}

async fn billing<S>(
    State(state): State<S>,
    Path(id): Path<String>,
) -> Result<Json<BillingView>, ApiError>
where
    WebhookRoutes: FromRef<S>,
{
    let routes = WebhookRoutes::from_ref(&state);
    let tenant_id = TenantId::try_from(id.as_str()).map_err(ApiError::bad_request)?;
    let processor = &routes.processor;
    let Some(billing) = processor
        .state(&tenant_id)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::not_found(format!(
            "tenant `{tenant_id}` has no billing state; it starts when onboarding finishes"
        )));
    };
    let (trial_ends_at, grace_ends_at) = match &billing.phase {
        BillingPhase::Trialing { ends_at, .. } => (Some(*ends_at), None),
        BillingPhase::PastDue { grace_ends_at } => (None, Some(*grace_ends_at)),
        _ => (None, None),
    };
    Ok(Json(BillingView {
        status: billing.phase.name(),
        plan: billing.plan.as_ref().map(|p| p.plan.to_string()),
        modules: billing.enabled_modules(processor.config()),
        trial_ends_at: trial_ends_at.map(rfc3339),
        grace_ends_at: grace_ends_at.map(rfc3339),
        tenant_id,
    }))
}
