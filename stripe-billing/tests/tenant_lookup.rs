//! A processor with a tenant lookup: Stripe events naming a tenant this service does
//! not have (another environment's, when one Stripe account delivers to several) are
//! acknowledged and recorded, and give that tenant no billing state; events of known
//! tenants apply as before. Run against the in-memory, SQLite and PostgreSQL stores.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{
    at, checkout_session, config, decode, envelope, invoice, memory, postgres, sqlite,
    subscription, Backend, InvoiceShape, DAY, PRO_MONTHLY, T0,
};
use serde_json::Value;
use stripe_billing::{
    BillingPhase, BillingProcessor, EventType, MemoryBillingStore, ProcessError, ProcessOutcome,
    TenantLookup,
};
use tenancy_core::{
    BackendError, MemoryTenantDirectory, NewTenant, TenantDirectory, TenantId, TenantStatus,
};

/// The tenants a test's service has; the lookup fails while `failing` is set.
#[derive(Debug, Default)]
struct Tenants {
    known: Mutex<HashSet<String>>,
    failing: AtomicBool,
}

impl Tenants {
    fn of(ids: &[&str]) -> Arc<Self> {
        let tenants = Self::default();
        for id in ids {
            tenants.add(id);
        }
        Arc::new(tenants)
    }

    fn add(&self, id: &str) {
        self.known.lock().unwrap().insert(id.to_owned());
    }
}

#[async_trait]
impl TenantLookup for Tenants {
    async fn tenant_exists(&self, tenant_id: &TenantId) -> Result<bool, BackendError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BackendError::transient("connection reset by peer"));
        }
        Ok(self.known.lock().unwrap().contains(tenant_id.as_str()))
    }
}

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

/// Another environment's tenant.
const GHOST: &str = "ghost-tenant";

/// `customer.subscription.updated`, active on the professional plan, for `tenant`.
fn active_subscription(tenant: &str, created: i64) -> Value {
    envelope(
        "customer.subscription.updated",
        subscription("active", PRO_MONTHLY, Some(tenant)),
        created,
    )
}

/// Processes `event` as the webhook route does.
async fn deliver(processor: &BillingProcessor, event: &Value) -> ProcessOutcome {
    processor
        .process_webhook(&decode(event), event.to_string().as_bytes(), at(T0 + DAY))
        .await
        .unwrap()
}

fn id_of(event: &Value) -> String {
    event["id"].as_str().unwrap().to_owned()
}

// ---- the suite ----

/// The reported case: a signed, active subscription for a tenant the directory does
/// not have is acknowledged as not this service's, and nothing is given to it, not
/// even when a tenant with that id signs up later and Stripe delivers it again.
async fn an_unknown_tenants_event_gives_it_no_billing_state(backend: Backend) {
    let tenants = Tenants::of(&["acme"]);
    let processor =
        BillingProcessor::new(backend.store.clone(), config()).with_tenant_lookup(tenants.clone());
    let event = active_subscription(GHOST, T0);

    assert_eq!(
        deliver(&processor, &event).await,
        ProcessOutcome::TenantNotInDirectory {
            tenant_id: tenant(GHOST),
            event_type: EventType::CustomerSubscriptionUpdated,
        }
    );
    assert_eq!(processor.state(&tenant(GHOST)).await.unwrap(), None);
    assert!(backend.store.pending_effects(10).await.unwrap().is_empty());
    assert!(backend
        .store
        .parked(None, None, 10)
        .await
        .unwrap()
        .is_empty());
    // Recorded, so a reconciliation passes over it too.
    let recorded = backend
        .store
        .processed_events(&[id_of(&event)])
        .await
        .unwrap();
    assert!(recorded.contains(&id_of(&event)));

    // A tenant signing up under that id later is not given the foreign subscription.
    tenants.add(GHOST);
    assert_eq!(
        deliver(&processor, &event).await,
        ProcessOutcome::AlreadyProcessed {
            tenant_id: tenant(GHOST)
        }
    );
    assert_eq!(processor.state(&tenant(GHOST)).await.unwrap(), None);
    assert!(backend.store.pending_effects(10).await.unwrap().is_empty());
}

/// A known tenant's events apply as before, and a redelivery is still a duplicate.
async fn a_known_tenants_events_still_apply_once(backend: Backend) {
    let processor = BillingProcessor::new(backend.store.clone(), config())
        .with_tenant_lookup(Tenants::of(&["acme"]));
    processor
        .start_trial(&tenant("acme"), at(T0))
        .await
        .unwrap();
    let checkout = envelope(
        "checkout.session.completed",
        checkout_session("acme", "paid"),
        T0 + DAY,
    );
    let outcome = deliver(&processor, &checkout).await;
    assert!(
        matches!(
            &outcome,
            ProcessOutcome::Applied { tenant_id, phase: BillingPhase::Active, .. } if tenant_id.as_str() == "acme"
        ),
        "{outcome:?}"
    );
    assert_eq!(
        deliver(&processor, &checkout).await,
        ProcessOutcome::AlreadyProcessed {
            tenant_id: tenant("acme")
        }
    );
    // A later event naming only the customer finds acme through it, and applies.
    let failed = envelope(
        "invoice.payment_failed",
        invoice(InvoiceShape::Parent, 0),
        T0 + 2 * DAY,
    );
    assert!(matches!(
        deliver(&processor, &failed).await,
        ProcessOutcome::Applied {
            phase: BillingPhase::PastDue { .. },
            ..
        }
    ));
}

/// A tenant given billing state before the lookup was configured, and not in the
/// directory, gets no further changes, though its events name only its customer.
async fn a_tenant_found_through_its_customer_is_checked_too(backend: Backend) {
    let before = BillingProcessor::new(backend.store.clone(), config());
    deliver(&before, &active_subscription(GHOST, T0)).await;
    let state = before.state(&tenant(GHOST)).await.unwrap();
    assert!(state.is_some());
    let queued = backend.store.pending_effects(100).await.unwrap().len();

    let processor = BillingProcessor::new(backend.store.clone(), config())
        .with_tenant_lookup(Tenants::of(&["acme"]));
    let failed = envelope(
        "invoice.payment_failed",
        invoice(InvoiceShape::Parent, 0),
        T0 + DAY,
    );
    assert_eq!(
        deliver(&processor, &failed).await,
        ProcessOutcome::TenantNotInDirectory {
            tenant_id: tenant(GHOST),
            event_type: EventType::InvoicePaymentFailed,
        }
    );
    assert_eq!(processor.state(&tenant(GHOST)).await.unwrap(), state);
    assert_eq!(
        backend.store.pending_effects(100).await.unwrap().len(),
        queued
    );
}

/// A lookup that fails leaves the event unprocessed (an error, so that Stripe
/// delivers it again); the next delivery is processed in full.
async fn a_failed_lookup_records_nothing(backend: Backend) {
    let tenants = Tenants::of(&["acme"]);
    let processor =
        BillingProcessor::new(backend.store.clone(), config()).with_tenant_lookup(tenants.clone());
    let event = active_subscription("acme", T0);
    tenants.failing.store(true, Ordering::SeqCst);
    let error = processor
        .process_webhook(&decode(&event), event.to_string().as_bytes(), at(T0))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ProcessError::TenantLookup { tenant_id, .. } if tenant_id.as_str() == "acme"),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(error
        .to_string()
        .contains("Stripe delivers the event again"));
    assert_eq!(processor.state(&tenant("acme")).await.unwrap(), None);
    assert!(backend
        .store
        .processed_events(&[id_of(&event)])
        .await
        .unwrap()
        .is_empty());

    tenants.failing.store(false, Ordering::SeqCst);
    assert!(matches!(
        deliver(&processor, &event).await,
        ProcessOutcome::Applied { .. }
    ));
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::memory().await).await })*
        }
        mod sqlite_store {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::sqlite().await).await })*
        }
        mod postgres_store {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::postgres().await).await })*
        }
    };
}

conformance!(
    an_unknown_tenants_event_gives_it_no_billing_state,
    a_known_tenants_events_still_apply_once,
    a_tenant_found_through_its_customer_is_checked_too,
    a_failed_lookup_records_nothing,
);

// ---- over tenancy-core's directory ----

/// With the tenant directory as the lookup: a signed-up tenant's events apply; a
/// deleted tenant keeps its record (a tombstone), so its billing goes on through the
/// state machine as it did; a tenant with no record gets nothing.
#[tokio::test]
async fn the_tenant_directory_tells_which_tenants_exist() {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let acme = NewTenant::new("Acme", "owner@acme.example")
        .unwrap()
        .into_tenant(at(T0));
    directory.insert(&acme).await.unwrap();
    let mut gone = NewTenant::new("Gone Pharmacy", "owner@gone.example")
        .unwrap()
        .into_tenant(at(T0));
    gone.status = TenantStatus::Deleted {
        at: at(T0),
        export: None,
    };
    directory.insert(&gone).await.unwrap();
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config())
        .with_tenant_directory(directory);

    let outcome = deliver(&processor, &active_subscription(acme.id.as_str(), T0)).await;
    assert!(
        matches!(outcome, ProcessOutcome::Applied { .. }),
        "{outcome:?}"
    );
    let outcome = deliver(&processor, &active_subscription(gone.id.as_str(), T0)).await;
    assert!(
        matches!(outcome, ProcessOutcome::Applied { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        deliver(&processor, &active_subscription(GHOST, T0)).await,
        ProcessOutcome::TenantNotInDirectory {
            tenant_id: tenant(GHOST),
            event_type: EventType::CustomerSubscriptionUpdated,
        }
    );
    assert_eq!(processor.state(&tenant(GHOST)).await.unwrap(), None);
}

/// Without a lookup the processor takes every tenant an event names to exist, as
/// before: a host without a directory keeps its behaviour.
#[tokio::test]
async fn without_a_lookup_every_named_tenant_is_taken_to_exist() {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    assert!(matches!(
        deliver(&processor, &active_subscription(GHOST, T0)).await,
        ProcessOutcome::Applied { .. }
    ));
}
