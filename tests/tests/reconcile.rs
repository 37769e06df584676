//! Reconciliation with Stripe end to end: missed webhooks read back from a wiremock
//! stand-in for Stripe's events and subscriptions lists, through the real server's
//! admin route and its schedule.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use stripe_billing::testing::{checkout_session, event, events_page, list, subscription};
use support::{Service, ADMIN_TOKEN, STRIPE_KEY};
use tenancy_core::TenantId;
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const RECONCILE: &str = "/api/admin/billing/reconcile";

/// `GET /v1/events`: Stripe's filters and paging over the log, two events a page.
struct EventsList(Arc<Vec<Value>>);

impl Respond for EventsList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        ResponseTemplate::new(200).set_body_json(events_page(&self.0, &query, 2))
    }
}

/// `GET /v1/events/{id}`.
struct EventById(Arc<Vec<Value>>);

impl Respond for EventById {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        match self.0.iter().find(|e| e["id"] == id) {
            Some(event) => ResponseTemplate::new(200).set_body_json(event),
            None => ResponseTemplate::new(404),
        }
    }
}

/// Serves `log` as Stripe's events API on `stripe`, for the service's key only.
async fn serve_events(stripe: &MockServer, log: Vec<Value>) {
    let log = Arc::new(log);
    let auth = format!("Bearer {STRIPE_KEY}");
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(header("authorization", auth.as_str()))
        .respond_with(EventsList(log.clone()))
        .mount(stripe)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/events/[^/]+$"))
        .and(header("authorization", auth.as_str()))
        .respond_with(EventById(log))
        .mount(stripe)
        .await;
}

/// What Stripe recorded for `tenant` while the webhook endpoint was down: a paid
/// Checkout and the professional subscription it started, `hours` apart from `at`.
fn missed_checkout(tenant: &TenantId, at: i64) -> Vec<Value> {
    let session = checkout_session(tenant.as_str(), "cus_acme", "sub_acme", "paid");
    let sub = subscription(
        "sub_acme",
        "cus_acme",
        "active",
        "price_professional_monthly",
        Some(tenant.as_str()),
    );
    vec![
        event("checkout.session.completed", session, at + 60),
        event("customer.subscription.created", sub.clone(), at + 120),
        event("customer.subscription.updated", sub, at + 3_600),
    ]
}

async fn billing(service: &Service, tenant: &TenantId) -> Value {
    service
        .admin_get(&format!("/api/admin/tenants/{tenant}/billing"))
        .await
        .1
}

async fn reconcile(service: &Service, body: Option<Value>) -> (u16, Value) {
    service.admin(reqwest::Method::POST, RECONCILE, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_webhooks_and_a_cancelled_subscription_are_reconciled_through_the_admin_route() {
    let stripe = MockServer::start().await;
    let service = Service::start_reconciling(stripe.uri(), Duration::from_secs(3600)).await;
    let id = service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await;
    serve_events(
        &stripe,
        missed_checkout(&id, service.now().unix_timestamp()),
    )
    .await;
    // Four days later nobody has heard of the payment.
    service.advance(time::Duration::days(4));
    assert_eq!(billing(&service, &id).await["status"], "trialing");

    let unauthenticated = service
        .http
        .post(service.url(RECONCILE))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);

    let (status, report) = reconcile(&service, None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"events_seen": 3, "events_applied": 3, "duplicates": 0, "tenants_reconciled": 0})
    );
    let state = billing(&service, &id).await;
    assert_eq!(state["status"], "active", "{state}");
    assert_eq!(state["plan"], "professional");

    // Again: everything is known, nothing changes.
    let (status, again) = reconcile(&service, Some(json!({}))).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["events_applied"], 0, "{again}");
    assert_eq!(billing(&service, &id).await, state);

    // The customer cancelled, and that webhook was lost too: one tenant is checked.
    let mut cancelled = subscription(
        "sub_acme",
        "cus_acme",
        "canceled",
        "price_professional_monthly",
        Some(id.as_str()),
    );
    cancelled["canceled_at"] = json!(service.now().unix_timestamp());
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("customer", "cus_acme"))
        .and(query_param("status", "all"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            "/v1/subscriptions",
            vec![cancelled],
            false,
        )))
        .expect(1)
        .mount(&stripe)
        .await;
    let (status, report) = reconcile(&service, Some(json!({"tenant": id.as_str()}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"events_seen": 0, "events_applied": 0, "duplicates": 0, "tenants_reconciled": 1})
    );
    let state = billing(&service, &id).await;
    assert_eq!(state["status"], "cancelled", "{state}");
    assert_eq!(state["modules"], json!([]));
    // The move's notice reaches the tenant through the effect worker.
    for _ in 0..100 {
        let sent = service.notifier.sent();
        if sent
            .iter()
            .any(|n| n.kind.to_string() == "subscription cancelled")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let notices: Vec<String> = service
        .notifier
        .sent()
        .iter()
        .map(|n| n.kind.to_string())
        .collect();
    assert!(
        notices.iter().any(|n| n == "subscription cancelled"),
        "{notices:?}"
    );

    let (status, error) = reconcile(&service, Some(json!({"tenant": "no-such-tenant"}))).await;
    assert_eq!(status, 404, "{error}");
    service.stop().await;
    stripe.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reconciles_on_its_schedule() {
    let stripe = MockServer::start().await;
    let service = Service::start_reconciling(stripe.uri(), Duration::from_millis(200)).await;
    let id = service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await;

    serve_events(
        &stripe,
        missed_checkout(&id, service.now().unix_timestamp()),
    )
    .await;

    // The checkout alone makes the tenant active; the subscription events that
    // follow it name the plan. Wait for the last of them, not the first.
    let path = format!("/api/admin/tenants/{id}/billing");
    let state = service
        .wait_for(&path, |_, body| body["plan"] == "professional")
        .await;
    assert_eq!(state["status"], "active", "{state}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stripe_key_the_route_says_what_to_set() {
    let service = Service::start_with(Some(ADMIN_TOKEN), None).await;
    let (status, error) = reconcile(&service, None).await;
    assert_eq!(status, 503, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("STRIPE_SECRET_KEY"),
        "{error}"
    );
    service.stop().await;
}
