//! Stripe billing for database-per-tenant SaaS: verified webhooks, typed events, an
//! order-safe subscription lifecycle, plan entitlements, and a Stripe API client.
//!
//! Stripe may deliver an event twice, late, or out of order, and signs it with every
//! active secret while one is being rolled. This crate verifies every signature against
//! every secret, applies each event once, and never moves a tenant backwards.
//!
//! - **Webhooks**: [`WebhookVerifier`] checks the `Stripe-Signature` header (HMAC-SHA256,
//!   constant-time, secret rotation, tolerance both ways) and decodes an [`Event`];
//!   [`sign`] makes headers for tests.
//! - **Events**: [`Event`] with typed objects ([`CheckoutSession`], [`Subscription`],
//!   [`Invoice`]) for the types a billing integration subscribes to ([`EventType`]);
//!   other types are kept as JSON, never an error.
//! - **Lifecycle**: the pure state machine [`transition`] over [`BillingState`] —
//!   `Trialing → Active → PastDue → Suspended → Cancelled` — whose [`Effect`]s (modules to
//!   enable or disable, [`BillingNotice`]s) the host carries out; configured by
//!   [`LifecycleConfig`] and the [`PlanCatalog`].
//! - **Processing**: [`BillingProcessor`] resolves the tenant, applies the event
//!   idempotently in one store transaction, queues effects in an outbox, and
//!   [`tick`](BillingProcessor::tick)s trials and grace periods; stores:
//!   [`MemoryBillingStore`], `SqliteBillingStore` (feature `sqlite`),
//!   `PostgresBillingStore` (feature `postgres`). A [`SubscriptionSource`] lets it re-read
//!   subscriptions from Stripe. [`process_webhook`](BillingProcessor::process_webhook)
//!   parks an event that arrives before its tenant is known ([`ParkedEvent`], in the
//!   same store) and applies it when the tenant appears; an event leaves the parking
//!   only in the transaction that applies it, or after [`PARKING_LIMIT`]. With a
//!   [`TenantLookup`] ([`with_tenant_directory`](BillingProcessor::with_tenant_directory)
//!   for tenancy-core's directory), an event naming a tenant the service does not have
//!   (another environment's, when one Stripe account delivers to several) is recorded
//!   and gives it no billing state ([`ProcessOutcome::TenantNotInDirectory`]).
//! - **Reconciliation**: [`Reconciler`] heals what missed webhooks left behind (an
//!   endpoint down for more than Stripe's three days of retries, a secret rotated
//!   without the endpoint, a handler that failed). [`reconcile`](Reconciler::reconcile)
//!   reads Stripe's events list back (the handled types, from a stored
//!   [`ReconcileCursor`] or 30 days back, [`EVENT_RETENTION`] being as long as Stripe
//!   keeps events) and applies the events not processed yet, oldest first, through
//!   the webhooks' own path; [`reconcile_tenant`](Reconciler::reconcile_tenant) moves
//!   a tenant whose state disagrees with its Stripe subscription through the state
//!   machine, with an [`Effect::Reconciled`]. It reads Stripe through the
//!   [`StripeEvents`] trait, so it needs no HTTP client of its own.
//! - **Offboarding**: [`SubscriptionCancellation`] is tenancy-core's
//!   [`BillingCanceller`](tenancy_core::BillingCanceller): it cancels the tenant's
//!   subscription at once ([`SubscriptionCanceller`], `DELETE /v1/subscriptions/{id}`
//!   with the client) and moves its billing to cancelled through the state machine.
//! - **Billing links**: [`BillingLinks`] signs and checks expiring links (HMAC-SHA256)
//!   that take a tenant to its billing page without a login.
//! - **HTTP** (feature `axum`): `http::webhook_router`, `http::billing_router` and
//!   `http::reconcile_router`, over state the host owns; a host that wants only
//!   webhooks mounts the first.
//! - **API client** (feature `client`, on by default): `StripeClient` creates
//!   customers, Checkout sessions (answered with the same [`CheckoutSession`] type the
//!   events carry) and billing-portal sessions, reads subscriptions and customers, and
//!   cancels at period end or at once; errors are `StripeError` with Stripe's `ApiError`, told apart
//!   by predicates (`is_retryable`, `is_timeout`, `is_rate_limited`, `is_connect`,
//!   `status`, `retry_after`) as supabase-mgmt's are. It also serves as the
//!   processor's [`SubscriptionSource`] and the reconciler's [`StripeEvents`] (the
//!   events list, an event, a customer's subscriptions). A host that only receives webhooks turns it
//!   off (`default-features = false`) and does without `reqwest`.
//!
//! # Example: a webhook handler
//!
//! ```
//! use std::sync::Arc;
//! use stripe_billing::{BillingProcessor, MemoryBillingStore, LifecycleConfig, PricingPlan, PlanCatalog, ProcessError, ProcessOutcome, WebhookVerifier};
//!
//! /// `POST /api/webhooks/stripe`: the HTTP status to answer with.
//! async fn stripe_webhook(verifier: &WebhookVerifier, processor: &BillingProcessor, signature: Option<&str>, body: &[u8]) -> u16 {
//!     let Ok(event) = verifier.verify(body, signature) else {
//!         return 400; // forged, replayed or not an event
//!     };
//!     let now = time::OffsetDateTime::now_utc();
//!     match processor.process_webhook(&event, body, now).await {
//!         Ok(ProcessOutcome::UnknownTenant { .. }) => 200, // parked until its tenant is known
//!         Ok(ProcessOutcome::TenantNotInDirectory { .. }) => 200, // not this service's tenant
//!         Ok(_) => 200, // applied, unchanged, already processed or ignored
//!         Err(ProcessError::InvalidTenantReference { .. }) => 200, // log it; a retry cannot help
//!         Err(_) => 500, // the store failed; nothing changed, Stripe retries
//!     }
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = PlanCatalog::new([
//!     PricingPlan::new("starter", "Starter").monthly("price_starter_m", 9_900).modules(["inventory"]),
//!     PricingPlan::new("professional", "Professional").monthly("price_pro_m", 29_900).modules(["inventory", "reports"]),
//! ])?;
//! let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), LifecycleConfig::new(catalog));
//! let verifier = WebhookVerifier::new("whsec_test_secret")?;
//!
//! let body = br#"{"id": "evt_1", "object": "event", "type": "checkout.session.completed",
//!   "created": 1767225600, "livemode": false, "api_version": "2025-03-31.basil",
//!   "data": {"object": {"id": "cs_1", "object": "checkout.session", "mode": "subscription",
//!   "payment_status": "paid", "client_reference_id": "acme", "customer": "cus_1",
//!   "subscription": "sub_1", "created": 1767225600, "metadata": {}}}}"#;
//! let now = time::OffsetDateTime::now_utc().unix_timestamp();
//! let signature = stripe_billing::sign(body, &"whsec_test_secret".into(), now);
//!
//! assert_eq!(stripe_webhook(&verifier, &processor, Some(&signature), body).await, 200);
//! assert_eq!(stripe_webhook(&verifier, &processor, Some(&signature), b"{}").await, 400);
//! let effects = processor.store().pending_effects(10).await?; // enable modules, notify "activated"
//! assert_eq!(effects.len(), 2);
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `client` | `StripeClient`, the Stripe API client (customers, Checkout, billing portal, subscriptions), with `reqwest` | yes |
//! | `sqlite` | `SqliteBillingStore`, billing state in SQLite | no |
//! | `postgres` | `PostgresBillingStore`, billing state in PostgreSQL | no |
//! | `axum` | `http`: the webhook route, its set-up check, a tenant's billing view and reconciliation as axum routers | no |
//! | `pages` | `pages`: the tenant's billing page (plans, Checkout, portal) behind signed links, and the admin page's billing column | no |
//! | `testing` | `testing`: Stripe's example objects as signed webhook events, for tests | no |
//!
//! Webhook verification, events, the lifecycle, plans, the processor, reconciliation
//! and the in-memory store need no feature. A host that wants only Stripe webhooks depends on
//! `stripe-billing = { version = "0.1", default-features = false, features = ["axum", "sqlite"] }`
//! (see `http`).
#![warn(clippy::unwrap_used, clippy::expect_used)]

// --- webhooks, events, state machine, plans, processor ---
mod billing_link;
mod cancellation;
mod event;
mod lifecycle;
mod plans;
mod processor;
mod reconcile;
mod webhook;

pub use billing_link::{
    BillingLinkError, BillingLinks, LinkQuery, DEFAULT_LINK_LIFETIME, MIN_LINK_SECRET_LEN,
};
pub use cancellation::{CancellationError, SubscriptionCancellation, SubscriptionCanceller};
pub use event::{
    CheckoutMode, CheckoutSession, CheckoutSessionStatus, Customer, CustomerDetails, Event,
    EventData, EventObject, EventType, Invoice, InvoiceParent, InvoiceStatus,
    InvoiceStatusTransitions, List, Metadata, PaymentStatus, Price, PriceInterval, Recurring,
    Subscription, SubscriptionDetails, SubscriptionItem, SubscriptionStatus,
    DEFAULT_STRIPE_VERSION, TENANT_ID_METADATA_KEY,
};
pub use lifecycle::{
    transition, BillingEvent, BillingEventKind, BillingNotice, BillingPhase, BillingState, Effect,
    LifecycleConfig, LifecycleInput, SubscriptionSnapshot, SuspendReason, TrialEndBehaviour,
};
pub use plans::{
    BillingInterval, CatalogError, Module, PlanCatalog, PlanId, PlanPrice, PlanSelection,
    PricingPlan,
};
#[cfg(feature = "postgres")]
pub use processor::PostgresBillingStore;
#[cfg(feature = "sqlite")]
pub use processor::SqliteBillingStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use processor::{BillingEngine, SqlBillingStore};
pub use processor::{
    BillingProcessor, BillingStore, MemoryBillingStore, ParkedEvent, PendingEffect, ProcessError,
    ProcessOutcome, ReconcileCursor, ReplayReport, StateChange, StateUpdate, StoreError,
    SubscriptionSource, TenantLookup, TickOutcome, TickReport, Transacted, PARKING_LIMIT,
};
pub use reconcile::{
    EventSummary, ListEvents, ReconcileError, ReconcileReport, Reconciler, StripeEvents,
    TenantReconciliation, EVENT_RETENTION, MAX_PAGE_LIMIT,
};
pub use webhook::{
    sign, HeaderError, SignatureHeader, WebhookError, WebhookVerifier, WebhookVerifierBuilder,
    DEFAULT_TOLERANCE, MAX_SIGNATURES,
};

#[cfg(feature = "axum")]
pub mod http;
#[cfg(feature = "pages")]
pub mod pages;
#[cfg(feature = "testing")]
pub mod testing;

// --- Stripe API client (feature `client`) ---
#[cfg(feature = "client")]
mod client;

#[cfg(feature = "client")]
pub use client::{
    ApiError, ApiErrorType, BillingPortalSession, CheckoutCustomer, CheckoutRedirect,
    CreateBillingPortalSession, CreateCheckoutSession, CreateCustomer, IdempotencyKey,
    StripeClient, StripeClientBuilder, StripeConfigError, StripeError, DEFAULT_STRIPE_TIMEOUT,
    STRIPE_API_BASE_URL,
};
