//! Reconciliation against a wiremock stand-in for Stripe's events and subscriptions
//! lists (Stripe's own example objects, paged by three), over every store.

mod client_support;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use client_support::{client_with, fast_retries, received, stripe_error};
use common::{
    at, checkout_session, config, decode, envelope, invoice, memory, postgres, sqlite,
    subscription, Backend, InvoiceShape, CUSTOMER, DAY, PRO_MONTHLY, STARTER_MONTHLY, SUBSCRIPTION,
    T0,
};
use serde_json::{json, Value};
use stripe_billing::http::{reconcile_router, WebhookRoutes};
use stripe_billing::testing::{events_page, list};
use stripe_billing::{
    BillingNotice, BillingPhase, BillingProcessor, BillingStore, Effect, EventType,
    MemoryBillingStore, ReconcileCursor, ReconcileError, ReconcileReport, Reconciler,
    SubscriptionStatus, TenantReconciliation,
};
use tenancy_core::{ManualClock, RetryPolicy, TenantId};
use tower::ServiceExt;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The reconciliation runs five days after `T0`.
const NOW: i64 = T0 + 5 * DAY;
/// How many events the stand-in puts on a page.
const PAGE: usize = 3;

// ---- the Stripe stand-in ----

/// `GET /v1/events`: Stripe's paging and filters over the log, three events a page.
struct EventsList(Arc<Vec<Value>>);

impl Respond for EventsList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        ResponseTemplate::new(200).set_body_json(events_page(&self.0, &query, PAGE))
    }
}

/// `GET /v1/events/{id}`: the event, or Stripe's 404.
struct EventById(Arc<Vec<Value>>);

impl Respond for EventById {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        match self.0.iter().find(|e| e["id"] == id) {
            Some(event) => ResponseTemplate::new(200).set_body_json(event),
            None => ResponseTemplate::new(404).set_body_json(stripe_error(
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such event: '{id}'"),
                Some("id"),
            )),
        }
    }
}

/// A stand-in whose events API serves `log`.
async fn stripe_with_events(log: &[Value]) -> MockServer {
    let server = MockServer::start().await;
    let log = Arc::new(log.to_vec());
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(EventsList(log.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/events/[^/]+$"))
        .respond_with(EventById(log))
        .mount(&server)
        .await;
    server
}

/// Stripe's 500 with its error object, once, for requests matching `mock`.
async fn fail_once(server: &MockServer, mock: wiremock::MockBuilder) {
    mock.respond_with(ResponseTemplate::new(500).set_body_json(stripe_error(
        "api_error",
        None,
        "An unknown error occurred",
        None,
    )))
    .up_to_n_times(1)
    .with_priority(1)
    .mount(server)
    .await;
}

fn reconciler(processor: &BillingProcessor, server: &MockServer) -> Reconciler {
    let client = client_with(server, RetryPolicy::never(), Duration::from_secs(2));
    Reconciler::new(processor.clone(), Arc::new(client))
        .with_clock(Arc::new(ManualClock::new(at(NOW))))
}

/// The query parameters of every events-list request, in order.
async fn list_queries(server: &MockServer) -> Vec<Vec<(String, String)>> {
    received(server)
        .await
        .iter()
        .filter(|r| r.url.path() == "/v1/events")
        .map(|r| r.url.query_pairs().into_owned().collect())
        .collect()
}

fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The ids of every event read one by one, in order (failed reads included).
async fn event_reads(server: &MockServer) -> Vec<String> {
    received(server)
        .await
        .iter()
        .filter_map(|r| r.url.path().strip_prefix("/v1/events/").map(str::to_owned))
        .collect()
}

// ---- scenarios ----

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

/// Four days of acme's billing, as Stripe recorded it while the webhook endpoint was
/// down: paid Checkout, subscription, a payment, a failure, a recovery, an upgrade.
fn four_days() -> Vec<Value> {
    vec![
        envelope(
            "checkout.session.completed",
            checkout_session("acme", "paid"),
            T0 + 3_600,
        ),
        envelope(
            "customer.subscription.created",
            subscription("active", STARTER_MONTHLY, Some("acme")),
            T0 + 3_660,
        ),
        envelope(
            "invoice.paid",
            invoice(InvoiceShape::Parent, 9_900),
            T0 + DAY,
        ),
        envelope(
            "invoice.payment_failed",
            invoice(InvoiceShape::Parent, 0),
            T0 + 2 * DAY,
        ),
        envelope(
            "customer.subscription.updated",
            subscription("past_due", STARTER_MONTHLY, Some("acme")),
            T0 + 2 * DAY + 3_600,
        ),
        envelope(
            "invoice.paid",
            invoice(InvoiceShape::Parent, 9_900),
            T0 + 3 * DAY,
        ),
        envelope(
            "customer.subscription.updated",
            subscription("active", PRO_MONTHLY, Some("acme")),
            T0 + 4 * DAY,
        ),
    ]
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn report(seen: usize, applied: usize, duplicates: usize) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    report.events_seen = seen;
    report.events_applied = applied;
    report.duplicates = duplicates;
    report
}

/// The notices queued for acme, by name.
async fn notices(store: &dyn BillingStore) -> Vec<&'static str> {
    let pending = store.pending_effects(100).await.unwrap();
    pending
        .iter()
        .filter_map(|p| match &p.effect {
            Effect::Notify(BillingNotice::Activated { .. }) => Some("activated"),
            Effect::Notify(BillingNotice::PaymentFailed { .. }) => Some("payment_failed"),
            Effect::Notify(BillingNotice::PaymentRecovered) => Some("payment_recovered"),
            Effect::Notify(BillingNotice::Cancelled) => Some("cancelled"),
            Effect::Notify(_) => Some("other"),
            _ => None,
        })
        .collect()
}

/// Webhooks missed for four days are read back across three pages and applied
/// oldest first, each once: the one that did arrive is not read again, and a
/// second run changes nothing.
async fn missed_webhooks_are_applied_in_order_and_once(backend: Backend) {
    let processor = BillingProcessor::new(backend.store.clone(), config());
    processor.start_trial(&acme(), at(T0)).await.unwrap();
    let log = four_days();
    // The Checkout's webhook arrived before the endpoint went down.
    processor.process(&decode(&log[0])).await.unwrap();
    let stripe = stripe_with_events(&log).await;
    let reconciler = reconciler(&processor, &stripe);

    let first = reconciler.reconcile(None).await.unwrap();

    assert_eq!(first, report(7, 6, 1));
    assert_eq!(event_reads(&stripe).await, ids(&log)[1..], "oldest first");
    let queries = list_queries(&stripe).await;
    assert_eq!(queries.len(), 3, "three pages");
    let window = (NOW - 30 * DAY).to_string();
    for query in &queries {
        assert_eq!(param(query, "created[gte]"), Some(window.as_str()));
        assert_eq!(param(query, "limit"), Some("100"));
        let types: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "types[]")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(types, EventType::NAMED);
    }
    assert_eq!(param(&queries[0], "starting_after"), None);
    assert_eq!(
        param(&queries[1], "starting_after"),
        Some(ids(&log)[4].as_str())
    );
    assert_eq!(
        param(&queries[2], "starting_after"),
        Some(ids(&log)[1].as_str())
    );
    let state = processor.state(&acme()).await.unwrap().unwrap();
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(state.plan.as_ref().unwrap().plan.as_str(), "professional");
    assert_eq!(
        notices(backend.store.as_ref()).await,
        ["activated", "payment_failed", "payment_recovered"]
    );
    let cursor = backend.store.reconcile_cursor().await.unwrap().unwrap();
    assert_eq!(
        cursor,
        ReconcileCursor::new(ids(&log)[6].clone(), at(T0 + 4 * DAY))
    );

    // A second run starts at the cursor and changes nothing.
    let outbox = backend.store.pending_effects(100).await.unwrap();
    let second = reconciler.reconcile(None).await.unwrap();
    assert_eq!(second, report(1, 0, 1));
    let queries = list_queries(&stripe).await;
    let resumed = (T0 + 4 * DAY).to_string();
    assert_eq!(param(&queries[3], "created[gte]"), Some(resumed.as_str()));
    assert_eq!(event_reads(&stripe).await.len(), 6, "nothing read again");
    assert_eq!(backend.store.pending_effects(100).await.unwrap(), outbox);
    assert_eq!(processor.state(&acme()).await.unwrap().unwrap(), state);
}

#[tokio::test]
async fn missed_webhooks_are_applied_in_order_and_once_in_memory() {
    missed_webhooks_are_applied_in_order_and_once(memory().await).await;
}

#[tokio::test]
async fn missed_webhooks_are_applied_in_order_and_once_in_sqlite() {
    missed_webhooks_are_applied_in_order_and_once(sqlite().await).await;
}

#[tokio::test]
async fn missed_webhooks_are_applied_in_order_and_once_in_postgres() {
    missed_webhooks_are_applied_in_order_and_once(postgres().await).await;
}

/// A failure while the list is walked stops before anything is applied; the next
/// run applies everything.
#[tokio::test]
async fn a_failed_page_applies_nothing_and_the_next_run_everything() {
    let backend = memory().await;
    let processor = BillingProcessor::new(backend.store.clone(), config());
    let log = four_days();
    let stripe = stripe_with_events(&log).await;
    let third_page = Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("starting_after", ids(&log)[1].as_str()));
    fail_once(&stripe, third_page).await;
    let reconciler = reconciler(&processor, &stripe);

    let error = reconciler.reconcile(None).await.unwrap_err();
    assert!(matches!(error, ReconcileError::Stripe { .. }), "{error:?}");
    assert!(error.is_retryable(), "a 500 may pass later");
    assert!(
        error.to_string().contains("run the reconciliation again"),
        "{error}"
    );
    assert!(event_reads(&stripe).await.is_empty());
    assert!(processor.state(&acme()).await.unwrap().is_none());
    assert_eq!(backend.store.reconcile_cursor().await.unwrap(), None);

    assert_eq!(reconciler.reconcile(None).await.unwrap(), report(7, 7, 0));
    assert_eq!(event_reads(&stripe).await, ids(&log));
}

/// A failure while events are applied leaves the ones before it applied and the
/// cursor on the last of them; the next run resumes there and applies nothing twice.
async fn an_interrupted_run_resumes_from_its_cursor(backend: Backend) {
    let processor = BillingProcessor::new(backend.store.clone(), config());
    processor.start_trial(&acme(), at(T0)).await.unwrap();
    let log = four_days();
    let stripe = stripe_with_events(&log).await;
    let fourth = format!("/v1/events/{}", ids(&log)[3]);
    fail_once(&stripe, Mock::given(method("GET")).and(path(fourth))).await;
    let reconciler = reconciler(&processor, &stripe);

    assert!(reconciler.reconcile(None).await.is_err());
    let cursor = backend.store.reconcile_cursor().await.unwrap().unwrap();
    assert_eq!(cursor.event_id, ids(&log)[2], "on the last applied event");
    assert_eq!(
        processor.state(&acme()).await.unwrap().unwrap().phase,
        BillingPhase::Active
    );

    let resumed = reconciler.reconcile(None).await.unwrap();
    assert_eq!(resumed, report(5, 4, 1), "from the cursor's event on");
    let query = list_queries(&stripe).await.pop().unwrap();
    let from = (T0 + DAY).to_string();
    assert_eq!(param(&query, "created[gte]"), Some(from.as_str()));
    let mut expected = ids(&log);
    expected.insert(3, ids(&log)[3].clone()); // the failed read, then its retry
    assert_eq!(event_reads(&stripe).await, expected);
    assert_eq!(
        notices(backend.store.as_ref()).await,
        ["activated", "payment_failed", "payment_recovered"]
    );
    let state = processor.state(&acme()).await.unwrap().unwrap();
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(state.plan.unwrap().plan.as_str(), "professional");
}

#[tokio::test]
async fn an_interrupted_run_resumes_from_its_cursor_in_memory() {
    an_interrupted_run_resumes_from_its_cursor(memory().await).await;
}

#[tokio::test]
async fn an_interrupted_run_resumes_from_its_cursor_in_sqlite() {
    an_interrupted_run_resumes_from_its_cursor(sqlite().await).await;
}

#[tokio::test]
async fn an_interrupted_run_resumes_from_its_cursor_in_postgres() {
    an_interrupted_run_resumes_from_its_cursor(postgres().await).await;
}

/// A rate-limited page is retried by the client's policy after Stripe's
/// `Retry-After`, and the run goes on.
#[tokio::test]
async fn a_rate_limited_page_is_retried_by_the_client() {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    let log = four_days();
    let stripe = stripe_with_events(&log).await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_json(stripe_error(
                    "invalid_request_error",
                    Some("rate_limit"),
                    "Too many requests",
                    None,
                )),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&stripe)
        .await;
    let client = client_with(&stripe, fast_retries(3), Duration::from_secs(2));
    let reconciler = Reconciler::new(processor, Arc::new(client))
        .with_clock(Arc::new(ManualClock::new(at(NOW))));

    assert_eq!(reconciler.reconcile(None).await.unwrap(), report(7, 7, 0));
    assert_eq!(
        list_queries(&stripe).await.len(),
        4,
        "the 429, then three pages"
    );
}

/// An explicit start older than Stripe's 30 days is cut to them.
#[tokio::test]
async fn the_window_never_starts_before_stripes_thirty_days() {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    let stripe = stripe_with_events(&[]).await;
    let reconciler = reconciler(&processor, &stripe);

    let report = reconciler.reconcile(Some(at(T0 - 90 * DAY))).await.unwrap();
    assert_eq!(report, ReconcileReport::default());
    let query = list_queries(&stripe).await.pop().unwrap();
    let window = (NOW - 30 * DAY).to_string();
    assert_eq!(param(&query, "created[gte]"), Some(window.as_str()));
}

// ---- one tenant against its subscription ----

/// A stand-in whose subscriptions list answers `pages` for the customer, in order.
async fn stripe_with_subscriptions(pages: Vec<Vec<Value>>) -> MockServer {
    let server = MockServer::start().await;
    let count = pages.len();
    let mut after: Option<String> = None;
    for (n, page) in pages.into_iter().enumerate() {
        let last = page.last().map(|s| s["id"].as_str().unwrap().to_owned());
        let mock = Mock::given(method("GET"))
            .and(path("/v1/subscriptions"))
            .and(query_param("customer", CUSTOMER))
            .and(query_param("status", "all"))
            .and(query_param("limit", "100"));
        let mock = match &after {
            Some(id) => mock.and(query_param("starting_after", id.as_str())),
            None => mock.and(wiremock::matchers::query_param_is_missing("starting_after")),
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(list(
            "/v1/subscriptions",
            page,
            n + 1 < count,
        )))
        .mount(&server)
        .await;
        after = last;
    }
    server
}

/// acme, active on the starter plan through webhooks.
async fn active_acme() -> BillingProcessor {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    processor.start_trial(&acme(), at(T0)).await.unwrap();
    for event in &four_days()[..2] {
        processor.process(&decode(event)).await.unwrap();
    }
    processor
}

/// A tenant active locally but cancelled at Stripe is moved to cancelled through the
/// state machine, with a `Reconciled` effect; checking again changes nothing.
#[tokio::test]
async fn a_tenant_cancelled_at_stripe_is_moved_with_a_reconciled_effect() {
    let processor = active_acme().await;
    let mut older = stripe_billing::testing::subscription(
        "sub_older",
        CUSTOMER,
        "canceled",
        STARTER_MONTHLY,
        Some("acme"),
    );
    older["created"] = json!(T0 - 200 * DAY);
    let current = subscription("canceled", STARTER_MONTHLY, Some("acme"));
    let stripe = stripe_with_subscriptions(vec![vec![older], vec![current]]).await;
    let reconciler = reconciler(&processor, &stripe);

    let outcome = reconciler.reconcile_tenant(&acme()).await.unwrap();

    let TenantReconciliation::Moved {
        from,
        to,
        subscription_id,
        stripe_status,
        effects,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((from, to), (BillingPhase::Active, BillingPhase::Cancelled));
    assert_eq!(subscription_id, SUBSCRIPTION);
    assert_eq!(stripe_status, SubscriptionStatus::Canceled);
    let reconciled = Effect::Reconciled {
        from: BillingPhase::Active,
        to: BillingPhase::Cancelled,
        stripe_status: SubscriptionStatus::Canceled,
    };
    assert!(effects.contains(&reconciled), "{effects:?}");
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::DisableModules(_))));
    let queued: Vec<Effect> = processor
        .store()
        .pending_effects(100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.effect)
        .collect();
    assert!(queued.ends_with(&effects), "{queued:?}");
    assert_eq!(
        processor.state(&acme()).await.unwrap().unwrap().phase,
        BillingPhase::Cancelled
    );

    let again = reconciler.reconcile_tenant(&acme()).await.unwrap();
    assert!(
        matches!(
            again,
            TenantReconciliation::Unchanged {
                phase: BillingPhase::Cancelled,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(
        processor.store().pending_effects(100).await.unwrap().len(),
        queued.len()
    );
}

/// A tenant whose subscription ended and who subscribed again (the webhooks of both
/// lost) follows the new, live subscription.
#[tokio::test]
async fn a_customer_who_subscribed_again_is_followed_to_the_new_subscription() {
    let processor = active_acme().await;
    let deleted = envelope(
        "customer.subscription.deleted",
        subscription("canceled", STARTER_MONTHLY, Some("acme")),
        T0 + DAY,
    );
    processor.process(&decode(&deleted)).await.unwrap();
    let mut ended = subscription("canceled", STARTER_MONTHLY, Some("acme"));
    ended["created"] = json!(T0);
    let mut again = stripe_billing::testing::subscription(
        "sub_again",
        CUSTOMER,
        "active",
        PRO_MONTHLY,
        Some("acme"),
    );
    again["created"] = json!(T0 + 2 * DAY);
    let stripe = stripe_with_subscriptions(vec![vec![again, ended]]).await;

    let outcome = reconciler(&processor, &stripe)
        .reconcile_tenant(&acme())
        .await
        .unwrap();

    let TenantReconciliation::Moved {
        from,
        to,
        subscription_id,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((from, to), (BillingPhase::Cancelled, BillingPhase::Active));
    assert_eq!(subscription_id, "sub_again");
    let state = processor.state(&acme()).await.unwrap().unwrap();
    assert_eq!(state.subscription_id.as_deref(), Some("sub_again"));
    assert_eq!(state.plan.unwrap().plan.as_str(), "professional");
}

#[tokio::test]
async fn a_tenant_in_line_with_stripe_is_left_alone() {
    let processor = active_acme().await;
    let current = subscription("active", STARTER_MONTHLY, Some("acme"));
    let stripe = stripe_with_subscriptions(vec![vec![current]]).await;
    let before = processor.store().pending_effects(100).await.unwrap();

    let outcome = reconciler(&processor, &stripe)
        .reconcile_tenant(&acme())
        .await
        .unwrap();

    assert!(
        matches!(
            outcome,
            TenantReconciliation::Unchanged {
                phase: BillingPhase::Active,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        processor.store().pending_effects(100).await.unwrap(),
        before
    );
}

#[tokio::test]
async fn tenants_without_a_customer_or_a_state_have_nothing_to_reconcile() {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    processor.start_trial(&acme(), at(T0)).await.unwrap();
    let stripe = MockServer::start().await;
    let reconciler = reconciler(&processor, &stripe);

    assert_eq!(
        reconciler.reconcile_tenant(&acme()).await.unwrap(),
        TenantReconciliation::NoCustomer
    );
    let unknown = TenantId::new("globex").unwrap();
    let error = reconciler.reconcile_tenant(&unknown).await.unwrap_err();
    assert!(
        matches!(error, ReconcileError::NoBillingState(_)),
        "{error:?}"
    );
    assert!(received(&stripe).await.is_empty());
}

// ---- the stores' cursor ----

/// The cursor never moves back, and processed events are told apart.
async fn the_store_keeps_the_cursor_and_knows_processed_events(backend: Backend) {
    let store = backend.store.as_ref();
    assert_eq!(store.reconcile_cursor().await.unwrap(), None);
    let later = ReconcileCursor::new("evt_later", at(T0 + DAY));
    store.save_reconcile_cursor(&later).await.unwrap();
    store
        .save_reconcile_cursor(&ReconcileCursor::new("evt_earlier", at(T0)))
        .await
        .unwrap();
    assert_eq!(store.reconcile_cursor().await.unwrap(), Some(later));
    let latest = ReconcileCursor::new("evt_latest", at(T0 + 2 * DAY));
    store.save_reconcile_cursor(&latest).await.unwrap();
    assert_eq!(store.reconcile_cursor().await.unwrap(), Some(latest));

    let processor = BillingProcessor::new(backend.store.clone(), config());
    let checkout = envelope(
        "checkout.session.completed",
        checkout_session("acme", "paid"),
        T0,
    );
    processor.process(&decode(&checkout)).await.unwrap();
    let id = checkout["id"].as_str().unwrap().to_owned();
    let asked = [id.clone(), "evt_never_seen".to_owned()];
    let processed = store.processed_events(&asked).await.unwrap();
    assert_eq!(processed.into_iter().collect::<Vec<_>>(), [id]);
    assert!(store.processed_events(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_memory_store_keeps_the_cursor() {
    the_store_keeps_the_cursor_and_knows_processed_events(memory().await).await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_the_cursor() {
    the_store_keeps_the_cursor_and_knows_processed_events(sqlite().await).await;
}

#[tokio::test]
async fn the_postgres_store_keeps_the_cursor() {
    the_store_keeps_the_cursor_and_knows_processed_events(postgres().await).await;
}

// ---- the route ----

async fn post(router: &axum::Router, body: &str) -> (StatusCode, Value) {
    let request = HttpRequest::post("/billing/reconcile")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_route_reconciles_the_fleet_or_one_tenant() {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    let log = four_days();
    let stripe = stripe_with_events(&log).await;
    let woken = Arc::new(AtomicUsize::new(0));
    let counter = woken.clone();
    let routes = WebhookRoutes::new(processor.clone(), None)
        .with_reconciler(reconciler(&processor, &stripe))
        .on_applied(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
    let router = reconcile_router().with_state(routes);

    let (status, body) = post(&router, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"events_seen": 7, "events_applied": 7, "duplicates": 0, "tenants_reconciled": 0})
    );
    assert_eq!(woken.load(Ordering::SeqCst), 1, "the effects are woken");

    let (status, body) = post(&router, r#"{"tenant": "not a tenant id"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(&router, r#"{"tenants": ["acme"]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(&router, r#"{"tenant": "globex"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // acme's subscriptions cannot be read from this stand-in: 502, nothing changed.
    let (status, body) = post(&router, r#"{"tenant": "acme"}"#).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("subscriptions"),
        "{body}"
    );

    let off = reconcile_router().with_state(WebhookRoutes::new(processor, None));
    let (status, body) = post(&off, "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("STRIPE_SECRET_KEY"),
        "{body}"
    );
}

#[tokio::test]
async fn the_fleet_route_reads_from_an_explicit_since() {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    let stripe = stripe_with_events(&four_days()).await;
    let routes = WebhookRoutes::new(processor.clone(), None)
        .with_reconciler(reconciler(&processor, &stripe));
    let router = reconcile_router().with_state(routes);

    for bad in [
        r#"{"since": "yesterday"}"#,
        r#"{"since": "2026-01-03"}"#,
        r#"{"since": "2026-01-03T00:00:00Z", "tenant": "acme"}"#,
    ] {
        let (status, body) = post(&router, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("since"), "{body}");
    }
    assert!(list_queries(&stripe).await.is_empty(), "nothing was read");

    let since = at(T0 + 2 * DAY);
    let body =
        json!({ "since": since.format(&time::format_description::well_known::Rfc3339).unwrap() });
    let (status, report) = post(&router, &body.to_string()).await;

    assert_eq!(status, StatusCode::OK, "{report}");
    let queries = list_queries(&stripe).await;
    let from = (T0 + 2 * DAY).to_string();
    assert_eq!(param(&queries[0], "created[gte]"), Some(from.as_str()));
}
