//! The billing processor over every store: one conformance suite run against the
//! in-memory, SQLite and PostgreSQL stores (a throw-away database per test).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{
    at, checkout_session, config, decode, envelope, example, invoice, memory, postgres, sqlite,
    subscription, Backend, InvoiceShape, CUSTOMER, DAY, PRO_MONTHLY, STARTER_MONTHLY, SUBSCRIPTION,
    T0,
};
use serde_json::Value;
use stripe_billing::{
    BillingNotice, BillingPhase, BillingProcessor, BillingStore, Effect, EventType, ParkedEvent,
    PostgresBillingStore, ProcessError, ProcessOutcome, StoreError, Subscription,
    SubscriptionSource, SuspendReason,
};
use tenancy_core::{BackendError, TenantId};

fn processor(backend: &Backend) -> BillingProcessor {
    BillingProcessor::new(backend.store.clone(), config())
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

async fn phase(processor: &BillingProcessor) -> BillingPhase {
    processor.state(&acme()).await.unwrap().unwrap().phase
}

async fn process(processor: &BillingProcessor, event: &Value) -> ProcessOutcome {
    processor.process(&decode(event)).await.unwrap()
}

fn paid_checkout(created: i64) -> Value {
    envelope(
        "checkout.session.completed",
        checkout_session("acme", "paid"),
        created,
    )
}

/// An invoice event naming only the customer (no tenant metadata).
fn invoice_event(event_type: &str, created: i64) -> Value {
    envelope(event_type, invoice(InvoiceShape::Parent, 9_900), created)
}

// ---- the suite ----

async fn checkout_maps_the_customer_for_later_events(backend: Backend) {
    let processor = processor(&backend);
    let outcome = process(&processor, &paid_checkout(T0)).await;
    let ProcessOutcome::Applied {
        tenant_id,
        phase,
        effects,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((tenant_id, phase), (acme(), BillingPhase::Active));
    assert!(effects.contains(&Effect::EnableModules(
        config().catalog.trial_plan().modules.clone()
    )));

    let outcome = process(
        &processor,
        &invoice_event("invoice.payment_failed", T0 + DAY),
    )
    .await;
    let grace_ends_at = at(T0 + 8 * DAY);
    assert_eq!(
        outcome,
        ProcessOutcome::Applied {
            tenant_id: acme(),
            phase: BillingPhase::PastDue { grace_ends_at },
            effects: vec![Effect::Notify(BillingNotice::PaymentFailed {
                grace_ends_at
            })],
        }
    );
    assert_eq!(
        backend.store.tenant_for_customer(CUSTOMER).await.unwrap(),
        Some(acme())
    );
}

async fn the_same_event_twice_is_applied_once(backend: Backend) {
    let processor = processor(&backend);
    processor.start_trial(&acme(), at(T0)).await.unwrap();
    let event = paid_checkout(T0 + DAY);
    assert!(matches!(
        process(&processor, &event).await,
        ProcessOutcome::Applied { .. }
    ));
    let state = processor.state(&acme()).await.unwrap();
    let queued = backend.store.pending_effects(100).await.unwrap().len();
    assert_eq!(
        process(&processor, &event).await,
        ProcessOutcome::AlreadyProcessed { tenant_id: acme() }
    );
    assert_eq!(processor.state(&acme()).await.unwrap(), state);
    assert_eq!(
        backend.store.pending_effects(100).await.unwrap().len(),
        queued
    );
}

async fn an_unknown_tenant_records_nothing(backend: Backend) {
    let processor = processor(&backend);
    let event = invoice_event("invoice.payment_failed", T0 + DAY);
    assert_eq!(
        process(&processor, &event).await,
        ProcessOutcome::UnknownTenant {
            customer_id: Some(CUSTOMER.into())
        }
    );
    assert!(backend.store.pending_effects(10).await.unwrap().is_empty());
    // Once the customer is known, a redelivery of the same event is processed in full.
    process(&processor, &paid_checkout(T0)).await;
    assert!(matches!(
        process(&processor, &event).await,
        ProcessOutcome::Applied { .. }
    ));
    assert!(matches!(
        phase(&processor).await,
        BillingPhase::PastDue { .. }
    ));
}

async fn updated_before_created_keeps_the_newer_state(backend: Backend) {
    let processor = processor(&backend);
    let created = envelope(
        "customer.subscription.created",
        subscription("incomplete", STARTER_MONTHLY, Some("acme")),
        T0,
    );
    let updated = envelope(
        "customer.subscription.updated",
        subscription("active", PRO_MONTHLY, Some("acme")),
        T0 + 5,
    );
    assert!(matches!(
        process(&processor, &updated).await,
        ProcessOutcome::Applied {
            phase: BillingPhase::Active,
            ..
        }
    ));
    assert_eq!(
        process(&processor, &created).await,
        ProcessOutcome::Unchanged { tenant_id: acme() }
    );
    let state = processor.state(&acme()).await.unwrap().unwrap();
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(state.plan.unwrap().plan.as_str(), "professional");
}

async fn an_older_event_never_overwrites_newer_state(backend: Backend) {
    let processor = processor(&backend);
    process(&processor, &paid_checkout(T0)).await;
    process(&processor, &invoice_event("invoice.paid", T0 + 2 * DAY)).await;
    let late_failure = invoice_event("invoice.payment_failed", T0 + DAY);
    assert_eq!(
        process(&processor, &late_failure).await,
        ProcessOutcome::Unchanged { tenant_id: acme() }
    );
    assert_eq!(phase(&processor).await, BillingPhase::Active);
    // Recorded: a redelivery is a duplicate, not a second chance.
    assert!(matches!(
        process(&processor, &late_failure).await,
        ProcessOutcome::AlreadyProcessed { .. }
    ));
}

async fn both_invoice_shapes_resolve_the_subscription(backend: Backend) {
    let processor = processor(&backend);
    process(&processor, &paid_checkout(T0)).await;
    process(
        &processor,
        &invoice_event("invoice.payment_failed", T0 + DAY),
    )
    .await;
    let old_shape = envelope(
        "invoice.payment_succeeded",
        invoice(InvoiceShape::TopLevel, 9_900),
        T0 + 2 * DAY,
    );
    assert!(matches!(
        process(&processor, &old_shape).await,
        ProcessOutcome::Applied {
            phase: BillingPhase::Active,
            ..
        }
    ));
}

async fn the_clock_ends_trials_and_grace_periods(backend: Backend) {
    let processor = processor(&backend);
    let bob = TenantId::new("bob").unwrap();
    let started = processor.start_trial(&acme(), at(T0)).await.unwrap();
    assert_eq!(started.len(), 1);
    assert!(
        processor
            .start_trial(&acme(), at(T0 + DAY))
            .await
            .unwrap()
            .is_empty(),
        "start_trial is idempotent"
    );
    processor.start_trial(&bob, at(T0 + 5 * DAY)).await.unwrap();

    assert!(processor
        .tick(at(T0 + 10 * DAY))
        .await
        .unwrap()
        .changed
        .is_empty());
    let report = processor.tick(at(T0 + 11 * DAY)).await.unwrap();
    assert_eq!(report.changed.len(), 1);
    assert_eq!(report.changed[0].tenant_id, acme());
    assert_eq!(
        report.changed[0].effects,
        [Effect::Notify(BillingNotice::TrialEnding {
            ends_at: at(T0 + 14 * DAY)
        })]
    );
    assert!(processor
        .tick(at(T0 + 12 * DAY))
        .await
        .unwrap()
        .changed
        .is_empty());

    let report = processor.tick(at(T0 + 14 * DAY)).await.unwrap();
    assert_eq!(report.changed.len(), 1);
    assert_eq!(
        report.changed[0].phase,
        BillingPhase::Suspended {
            reason: SuspendReason::TrialExpired
        }
    );
    assert!(report.failed.is_empty());

    // bob pays, fails, and the grace period runs out.
    let checkout = envelope(
        "checkout.session.completed",
        checkout_session("bob", "paid"),
        T0 + 6 * DAY,
    );
    process(&processor, &checkout).await;
    process(
        &processor,
        &invoice_event("invoice.payment_failed", T0 + 30 * DAY),
    )
    .await;
    let report = processor.tick(at(T0 + 37 * DAY)).await.unwrap();
    assert_eq!(report.changed.len(), 1);
    assert_eq!(report.changed[0].tenant_id, bob);
    assert_eq!(
        report.changed[0].phase,
        BillingPhase::Suspended {
            reason: SuspendReason::GracePeriodExpired
        }
    );
    assert!(processor
        .tick(at(T0 + 90 * DAY))
        .await
        .unwrap()
        .changed
        .is_empty());
}

async fn a_deadline_moved_by_the_configuration_leaves_the_due_set(backend: Backend) {
    processor(&backend)
        .start_trial(&acme(), at(T0))
        .await
        .unwrap();
    // Stored as due 3 days before the trial's end; the host now notifies 1 day before.
    let later_notice = BillingProcessor::new(
        backend.store.clone(),
        config().trial_notice(time::Duration::days(1)),
    );
    let now = at(T0 + 12 * DAY);
    assert_eq!(backend.store.due(now).await.unwrap(), [acme()]);
    let report = later_notice.tick(now).await.unwrap();
    assert!(
        report.changed.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert!(backend.store.due(now).await.unwrap().is_empty());
    assert!(matches!(
        phase(&later_notice).await,
        BillingPhase::Trialing {
            notified: false,
            ..
        }
    ));
    assert_eq!(
        backend.store.due(at(T0 + 13 * DAY)).await.unwrap(),
        [acme()]
    );
}

async fn effects_wait_in_the_outbox_until_acknowledged(backend: Backend) {
    let processor = processor(&backend);
    processor.start_trial(&acme(), at(T0)).await.unwrap();
    process(
        &processor,
        &envelope(
            "customer.subscription.updated",
            subscription("active", PRO_MONTHLY, Some("acme")),
            T0 + DAY,
        ),
    )
    .await;
    let pending = backend.store.pending_effects(100).await.unwrap();
    assert_eq!(pending.len(), 3, "{pending:?}"); // trial modules, pro modules, activated
    assert!(pending.iter().all(|p| p.tenant_id == acme()));
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        backend.store.pending_effects(2).await.unwrap(),
        pending[..2]
    );
    backend
        .store
        .ack_effects(&[pending[0].id, pending[1].id])
        .await
        .unwrap();
    assert_eq!(
        backend.store.pending_effects(100).await.unwrap(),
        pending[2..]
    );
}

async fn events_outside_the_lifecycle_are_ignored(backend: Backend) {
    let processor = processor(&backend);
    let unknown = example("event");
    assert_eq!(
        process(&processor, &unknown).await,
        ProcessOutcome::Ignored {
            event_type: EventType::Unknown("plan.created".into())
        }
    );
    let one_time = envelope(
        "checkout.session.completed",
        example("checkout_session"),
        T0,
    );
    assert!(matches!(
        process(&processor, &one_time).await,
        ProcessOutcome::Ignored { .. }
    ));
    let mut manual = invoice(InvoiceShape::TopLevel, 500);
    manual["subscription"] = Value::Null;
    assert!(matches!(
        process(&processor, &envelope("invoice.paid", manual, T0)).await,
        ProcessOutcome::Ignored { .. }
    ));
    assert_eq!(processor.state(&acme()).await.unwrap(), None);
}

async fn an_invalid_tenant_reference_is_an_error_and_changes_nothing(backend: Backend) {
    let processor = processor(&backend);
    let event = envelope(
        "checkout.session.completed",
        checkout_session("Not A Slug", "paid"),
        T0,
    );
    let error = processor.process(&decode(&event)).await.unwrap_err();
    assert!(
        matches!(&error, ProcessError::InvalidTenantReference { value, .. } if value == "Not A Slug"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("not a valid tenant id"),
        "{error}"
    );
    assert!(backend.store.pending_effects(10).await.unwrap().is_empty());
}

async fn subscription_metadata_names_the_tenant(backend: Backend) {
    let processor = processor(&backend);
    let event = envelope(
        "customer.subscription.created",
        subscription("trialing", STARTER_MONTHLY, Some("acme")),
        T0,
    );
    assert!(matches!(
        process(&processor, &event).await,
        ProcessOutcome::Applied { .. }
    ));
    let deleted = envelope(
        "customer.subscription.deleted",
        subscription("canceled", STARTER_MONTHLY, None),
        T0 + DAY,
    );
    assert!(matches!(
        process(&processor, &deleted).await,
        ProcessOutcome::Applied {
            phase: BillingPhase::Cancelled,
            ..
        }
    ));
}

// ---- parked events ----

/// A store that fails every `transact` while `failing` is set (a database hiccup).
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn BillingStore>,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl BillingStore for Flaky {
    async fn load(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<stripe_billing::BillingState>, StoreError> {
        self.inner.load(tenant).await
    }
    async fn tenant_for_customer(&self, customer: &str) -> Result<Option<TenantId>, StoreError> {
        self.inner.tenant_for_customer(customer).await
    }
    async fn due(&self, now: time::OffsetDateTime) -> Result<Vec<TenantId>, StoreError> {
        self.inner.due(now).await
    }
    async fn transact(
        &self,
        tenant: &TenantId,
        event_id: Option<&str>,
        change: &mut stripe_billing::StateChange<'_>,
    ) -> Result<stripe_billing::Transacted, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Database("connection reset by peer".into()));
        }
        self.inner.transact(tenant, event_id, change).await
    }
    async fn park(&self, event: &ParkedEvent) -> Result<bool, StoreError> {
        self.inner.park(event).await
    }
    async fn parked(
        &self,
        customer: Option<&str>,
        after: Option<&ParkedEvent>,
        limit: usize,
    ) -> Result<Vec<ParkedEvent>, StoreError> {
        self.inner.parked(customer, after, limit).await
    }
    async fn unpark(&self, event_id: &str) -> Result<(), StoreError> {
        self.inner.unpark(event_id).await
    }
    async fn pending_effects(
        &self,
        limit: usize,
    ) -> Result<Vec<stripe_billing::PendingEffect>, StoreError> {
        self.inner.pending_effects(limit).await
    }
    async fn ack_effects(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.inner.ack_effects(ids).await
    }
    async fn processed_events(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.inner.processed_events(ids).await
    }
    async fn reconcile_cursor(
        &self,
    ) -> Result<Option<stripe_billing::ReconcileCursor>, StoreError> {
        self.inner.reconcile_cursor().await
    }
    async fn save_reconcile_cursor(
        &self,
        cursor: &stripe_billing::ReconcileCursor,
    ) -> Result<(), StoreError> {
        self.inner.save_reconcile_cursor(cursor).await
    }
}

/// The raw body of `event`, as the webhook route receives it.
fn body(event: &Value) -> Vec<u8> {
    event.to_string().into_bytes()
}

async fn parked_ids(store: &dyn BillingStore) -> Vec<String> {
    let parked = store.parked(None, None, 100).await.unwrap();
    parked.into_iter().map(|p| p.event_id).collect()
}

/// An invoice failure that arrives before the Checkout naming its tenant is parked
/// (once, however often Stripe delivers it), and applied when the Checkout arrives.
async fn an_early_event_is_parked_then_applied_with_its_customer(backend: Backend) {
    let processor = processor(&backend);
    let failed = invoice_event("invoice.payment_failed", T0 + DAY);
    for _ in 0..2 {
        let outcome = processor
            .process_webhook(&decode(&failed), &body(&failed), at(T0 + DAY))
            .await
            .unwrap();
        assert!(
            matches!(outcome, ProcessOutcome::UnknownTenant { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(
        parked_ids(backend.store.as_ref()).await,
        [failed["id"].as_str().unwrap()]
    );
    let for_customer = backend
        .store
        .parked(Some(CUSTOMER), None, 10)
        .await
        .unwrap();
    assert_eq!(for_customer.len(), 1);
    assert!(backend
        .store
        .parked(Some("cus_other"), None, 10)
        .await
        .unwrap()
        .is_empty());

    let checkout = paid_checkout(T0);
    processor
        .process_webhook(&decode(&checkout), &body(&checkout), at(T0 + DAY))
        .await
        .unwrap();

    assert!(parked_ids(backend.store.as_ref()).await.is_empty());
    assert!(matches!(
        phase(&processor).await,
        BillingPhase::PastDue { .. }
    ));
}

/// Parks an invoice failure of `CUSTOMER`, then applies (without a replay) the
/// Checkout that maps `CUSTOMER` to acme: the failure waits for a replay.
async fn park_a_failure_then_learn_its_tenant(processor: &BillingProcessor) {
    let failed = invoice_event("invoice.payment_failed", T0 + DAY);
    processor
        .process_webhook(&decode(&failed), &body(&failed), at(T0 + DAY))
        .await
        .unwrap();
    process(processor, &paid_checkout(T0)).await;
}

/// A database hiccup while replaying loses nothing: the event stays parked, and the
/// next replay, once the store is back, applies it.
async fn a_store_failure_during_replay_leaves_the_event_parked(backend: Backend) {
    let flaky = Arc::new(Flaky {
        inner: backend.store.clone(),
        failing: false.into(),
    });
    let processor = BillingProcessor::new(flaky.clone(), config());
    park_a_failure_then_learn_its_tenant(&processor).await;

    flaky.failing.store(true, Ordering::SeqCst);
    let error = processor
        .replay_parked(None, at(T0 + DAY))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProcessError::Store(StoreError::Database(_))),
        "{error:?}"
    );
    assert_eq!(parked_ids(flaky.as_ref()).await.len(), 1, "still parked");
    assert_eq!(phase(&processor).await, BillingPhase::Active);

    flaky.failing.store(false, Ordering::SeqCst);
    let report = processor.replay_parked(None, at(T0 + DAY)).await.unwrap();
    assert_eq!(report.applied, 1, "{report:?}");
    assert!(parked_ids(flaky.as_ref()).await.is_empty());
    assert!(matches!(
        phase(&processor).await,
        BillingPhase::PastDue { .. }
    ));
}

/// An event whose tenant never appears waits for Stripe's retry window, then goes.
async fn parked_events_expire_after_the_parking_limit(backend: Backend) {
    let processor = processor(&backend);
    let failed = invoice_event("invoice.payment_failed", T0);
    processor
        .process_webhook(&decode(&failed), &body(&failed), at(T0))
        .await
        .unwrap();
    let report = processor
        .replay_parked(None, at(T0 + 2 * DAY))
        .await
        .unwrap();
    assert_eq!((report.waiting, report.dropped), (1, 0));
    assert_eq!(parked_ids(backend.store.as_ref()).await.len(), 1);
    let report = processor
        .replay_parked(None, at(T0 + 4 * DAY))
        .await
        .unwrap();
    assert_eq!((report.waiting, report.dropped), (0, 1));
    assert!(parked_ids(backend.store.as_ref()).await.is_empty());
}

fn parked_at(id: &str, customer: &str, at: i64) -> ParkedEvent {
    let event = decode(&invoice_event("invoice.payment_failed", at));
    let mut parked = ParkedEvent::new(&event, b"{}", common::at(at));
    parked.event_id = id.into();
    parked.customer_id = Some(customer.into());
    parked
}

/// Pages of parked events continue after the last one seen, in parking order.
async fn parked_events_page_in_parking_order(backend: Backend) {
    let store = backend.store.as_ref();
    for (id, customer, at) in [
        ("evt_c", "cus_1", T0 + 2),
        ("evt_a", "cus_1", T0),
        ("evt_b", "cus_2", T0),
    ] {
        assert!(store.park(&parked_at(id, customer, at)).await.unwrap());
    }
    let first = store.parked(None, None, 1).await.unwrap();
    assert_eq!(first[0].event_id, "evt_a");
    let rest = store.parked(None, Some(&first[0]), 10).await.unwrap();
    let ids: Vec<&str> = rest.iter().map(|p| p.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_b", "evt_c"]);
    let customer = store
        .parked(Some("cus_1"), Some(&first[0]), 10)
        .await
        .unwrap();
    assert_eq!(customer.len(), 1);
    assert_eq!(customer[0].event_id, "evt_c");
}

/// More events wait than one page holds: the replay still reaches the newest.
#[tokio::test]
async fn a_replay_reaches_events_behind_a_full_page_of_waiting_ones() {
    let backend = memory().await;
    let processor = processor(&backend);
    for i in 0..600 {
        let mut waiting = parked_at(&format!("evt_wait_{i:04}"), "cus_nobody", T0);
        waiting.body = invoice_event("invoice.payment_failed", T0).to_string();
        waiting.body = waiting.body.replace(CUSTOMER, "cus_nobody");
        backend.store.park(&waiting).await.unwrap();
    }
    park_a_failure_then_learn_its_tenant(&processor).await;

    let report = processor.replay_parked(None, at(T0 + DAY)).await.unwrap();
    assert_eq!((report.applied, report.waiting), (1, 600), "{report:?}");
    assert!(matches!(
        phase(&processor).await,
        BillingPhase::PastDue { .. }
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
    checkout_maps_the_customer_for_later_events,
    the_same_event_twice_is_applied_once,
    an_unknown_tenant_records_nothing,
    updated_before_created_keeps_the_newer_state,
    an_older_event_never_overwrites_newer_state,
    both_invoice_shapes_resolve_the_subscription,
    the_clock_ends_trials_and_grace_periods,
    a_deadline_moved_by_the_configuration_leaves_the_due_set,
    effects_wait_in_the_outbox_until_acknowledged,
    events_outside_the_lifecycle_are_ignored,
    an_invalid_tenant_reference_is_an_error_and_changes_nothing,
    subscription_metadata_names_the_tenant,
    an_early_event_is_parked_then_applied_with_its_customer,
    a_store_failure_during_replay_leaves_the_event_parked,
    parked_events_expire_after_the_parking_limit,
    parked_events_page_in_parking_order,
);

// ---- concurrency (PostgreSQL, several connections) ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_event_apply_it_once_on_postgres() {
    let backend = postgres().await;
    // Two host processes: two stores, two pools, one database.
    let url = backend.database.as_ref().unwrap().url().expose().to_owned();
    let other: Arc<dyn BillingStore> = Arc::new(PostgresBillingStore::connect(&url).await.unwrap());
    let first = processor(&backend);
    let second = BillingProcessor::new(other, config());
    for round in 0..20 {
        let tenant = format!("tenant-{round}");
        let event = decode(&envelope(
            "checkout.session.completed",
            checkout_session(&tenant, "paid"),
            T0,
        ));
        let (a, b) = tokio::join!(first.process(&event), second.process(&event));
        let outcomes = [a.unwrap(), b.unwrap()];
        let applied = outcomes
            .iter()
            .filter(|o| matches!(o, ProcessOutcome::Applied { .. }))
            .count();
        let duplicates = outcomes
            .iter()
            .filter(|o| matches!(o, ProcessOutcome::AlreadyProcessed { .. }))
            .count();
        assert_eq!((applied, duplicates), (1, 1), "round {round}: {outcomes:?}");
    }
    // Each tenant's effects were queued once: trial modules + activation.
    assert_eq!(
        backend.store.pending_effects(1_000).await.unwrap().len(),
        20 * 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_different_events_for_a_new_tenant_are_serialised_on_postgres() {
    let backend = postgres().await;
    let processor = processor(&backend);
    let checkout = decode(&paid_checkout(T0));
    let updated = decode(&envelope(
        "customer.subscription.updated",
        subscription("active", PRO_MONTHLY, Some("acme")),
        T0 + 1,
    ));
    let (a, b) = tokio::join!(processor.process(&checkout), processor.process(&updated));
    assert!(matches!(
        a.unwrap(),
        ProcessOutcome::Applied { .. } | ProcessOutcome::Unchanged { .. }
    ));
    assert!(matches!(b.unwrap(), ProcessOutcome::Applied { .. }));
    let state = processor.state(&acme()).await.unwrap().unwrap();
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(state.plan.unwrap().plan.as_str(), "professional");
}

// ---- re-reading subscriptions ----

#[derive(Debug, Default)]
struct FakeStripe {
    current: Mutex<Option<Subscription>>,
    reads: AtomicUsize,
}

#[async_trait]
impl SubscriptionSource for FakeStripe {
    async fn subscription(&self, subscription_id: &str) -> Result<Subscription, BackendError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        assert_eq!(subscription_id, SUBSCRIPTION);
        self.current
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| BackendError::transient(std::io::Error::other("stripe unreachable")))
    }
}

#[tokio::test]
async fn a_subscription_source_replaces_a_late_events_copy_with_the_truth() {
    let backend = memory().await;
    let stripe = Arc::new(FakeStripe::default());
    let truth: Subscription =
        serde_json::from_value(subscription("past_due", PRO_MONTHLY, Some("acme"))).unwrap();
    *stripe.current.lock().unwrap() = Some(truth);
    let processor = processor(&backend).with_subscription_source(stripe.clone());

    // The event says "active", but Stripe now says "past_due".
    let stale_copy = envelope(
        "customer.subscription.updated",
        subscription("active", STARTER_MONTHLY, Some("acme")),
        T0,
    );
    let outcome = process(&processor, &stale_copy).await;
    assert!(
        matches!(
            outcome,
            ProcessOutcome::Applied {
                phase: BillingPhase::PastDue { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(stripe.reads.load(Ordering::Relaxed), 1);

    // When Stripe cannot be reached, the event's own copy is used.
    *stripe.current.lock().unwrap() = None;
    let later = envelope(
        "customer.subscription.updated",
        subscription("active", PRO_MONTHLY, Some("acme")),
        T0 + DAY,
    );
    assert!(matches!(
        process(&processor, &later).await,
        ProcessOutcome::Applied {
            phase: BillingPhase::Active,
            ..
        }
    ));
    // Invoices are not re-read.
    process(&processor, &invoice_event("invoice.paid", T0 + 2 * DAY)).await;
    assert_eq!(stripe.reads.load(Ordering::Relaxed), 2);
}

// ---- a damaged row ----

/// Direct access to a SQL store's database, to damage and repair rows.
enum RawDatabase {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl RawDatabase {
    async fn state(&self) -> String {
        let sql = "SELECT state::text FROM billing_tenants WHERE tenant_id = 'acme'";
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(&sql.replace("::text", ""))
                .fetch_one(pool)
                .await
                .unwrap(),
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    async fn set_state(&self, state: &str) {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query("UPDATE billing_tenants SET state = $1")
                    .bind(state)
                    .execute(pool)
                    .await
                    .unwrap();
            }
            Self::Postgres(pool) => {
                sqlx::query("UPDATE billing_tenants SET state = $1::jsonb")
                    .bind(state)
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }
}

/// A row that no longer decodes makes processing fail with a typed error that names the
/// tenant, and records nothing: once the row is repaired, the redelivery applies.
async fn a_damaged_row_fails_cleanly_and_records_nothing(backend: Backend, raw: RawDatabase) {
    let processor = processor(&backend);
    processor.start_trial(&acme(), at(T0)).await.unwrap();
    let saved = raw.state().await;
    raw.set_state(r#"{"phase": "on_holiday"}"#).await;

    let event = decode(&paid_checkout(T0 + DAY));
    let error = processor.process(&event).await.unwrap_err();
    assert!(
        matches!(&error, ProcessError::Store(StoreError::Corrupt { tenant_id, .. }) if tenant_id == "acme"),
        "{error:?}"
    );
    assert!(error.to_string().contains("acme"), "{error}");

    raw.set_state(&saved).await;
    assert!(matches!(
        processor.process(&event).await.unwrap(),
        ProcessOutcome::Applied { .. }
    ));
}

#[tokio::test]
async fn a_damaged_sqlite_row_fails_cleanly_and_records_nothing() {
    let backend = sqlite().await;
    let url = backend.file.as_ref().unwrap().url();
    let raw = RawDatabase::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
    a_damaged_row_fails_cleanly_and_records_nothing(backend, raw).await;
}

#[tokio::test]
async fn a_damaged_postgres_row_fails_cleanly_and_records_nothing() {
    let backend = postgres().await;
    let pool = backend.database.as_ref().unwrap().pool().await.unwrap();
    a_damaged_row_fails_cleanly_and_records_nothing(backend, RawDatabase::Postgres(pool)).await;
}
