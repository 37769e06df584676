//! Stripe webhooks end to end: signed events through the real HTTP server.

mod support;

use serde_json::{json, Value};
use stripe_billing::testing::{
    checkout_session, event, invoice, signed, subscription, InvoiceShape,
};
use support::{Service, ADMIN_TOKEN, STRIPE_KEY, WEBHOOK_SECRET};
use tenancy_core::TenantId;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `object` as a Stripe event of `event_type`, created and signed `delay` seconds
/// after the service's clock.
fn stripe_event(
    service: &Service,
    event_type: &str,
    object: Value,
    delay: i64,
) -> (Vec<u8>, String) {
    let at = service.now().unix_timestamp() + delay;
    signed(&event(event_type, object, at), WEBHOOK_SECRET, at)
}

/// A paid Checkout of subscription `sub_acme` by customer `cus_acme` for `tenant`.
fn checkout(service: &Service, tenant: &TenantId) -> (Vec<u8>, String) {
    let session = checkout_session(tenant.as_str(), "cus_acme", "sub_acme", "paid");
    stripe_event(service, "checkout.session.completed", session, 0)
}

async fn deliver(service: &Service, (body, signature): (Vec<u8>, String)) -> (u16, Value) {
    let response = service
        .http
        .post(service.url("/api/webhooks/stripe"))
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn billing(service: &Service, tenant: &TenantId) -> Value {
    service
        .admin_get(&format!("/api/admin/tenants/{tenant}/billing"))
        .await
        .1
}

async fn ready_tenant(service: &Service) -> TenantId {
    service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_checkout_activates_the_plan_and_its_modules() {
    let service = Service::start().await;
    let id = ready_tenant(&service).await;

    let answer = deliver(&service, checkout(&service, &id)).await;
    assert_eq!(answer, (200, json!({"received": true, "duplicate": false})));
    let sub = subscription(
        "sub_acme",
        "cus_acme",
        "active",
        "price_professional_monthly",
        Some(id.as_str()),
    );
    assert_eq!(
        deliver(
            &service,
            stripe_event(&service, "customer.subscription.created", sub, 0)
        )
        .await
        .0,
        200
    );

    let state = billing(&service, &id).await;
    assert_eq!(state["status"], "active");
    assert_eq!(state["plan"], "professional");
    assert_eq!(
        state["modules"],
        json!(["inventory", "multi_branch", "purchases", "reports", "sales"])
    );
    assert_eq!(state["trial_ends_at"], Value::Null);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_event_is_refused_and_changes_nothing() {
    let service = Service::start().await;
    let id = ready_tenant(&service).await;
    let before = billing(&service, &id).await;

    let (body, signature) = checkout(&service, &id);
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'p').unwrap();
    tampered[at] = b'q';
    let (status, error) = deliver(&service, (tampered, signature)).await;
    assert_eq!(status, 400);
    assert!(
        error["error"].as_str().unwrap().contains("signature"),
        "{error}"
    );

    assert_eq!(
        deliver(&service, (body.clone(), "t=1,v1=00".into()))
            .await
            .0,
        400
    );
    let now = service.now().unix_timestamp();
    let forged = signed(
        &serde_json::from_slice(&body).unwrap(),
        "whsec_someone_else",
        now,
    );
    assert_eq!(deliver(&service, forged).await.0, 400);

    assert_eq!(billing(&service, &id).await, before);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_twice_is_applied_once() {
    let service = Service::start().await;
    let id = ready_tenant(&service).await;
    let paid = checkout(&service, &id);
    assert_eq!(deliver(&service, paid.clone()).await.1["duplicate"], false);

    let failed = invoice("sub_acme", "cus_acme", 0, InvoiceShape::Parent);
    let failed = stripe_event(&service, "invoice.payment_failed", failed, 60);
    assert_eq!(deliver(&service, failed.clone()).await.0, 200);
    let past_due = billing(&service, &id).await;
    assert_eq!(past_due["status"], "past_due");

    // Stripe's retries of both events neither re-apply them nor move the tenant back.
    assert_eq!(deliver(&service, paid).await.1["duplicate"], true);
    assert_eq!(deliver(&service, failed).await.1["duplicate"], true);
    assert_eq!(billing(&service, &id).await, past_due);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_billing_clock_suspends_after_the_grace_period_and_notifies() {
    let service = Service::start().await;
    let id = ready_tenant(&service).await;
    deliver(&service, checkout(&service, &id)).await;
    let failed = invoice("sub_acme", "cus_acme", 0, InvoiceShape::TopLevel);
    deliver(
        &service,
        stripe_event(&service, "invoice.payment_failed", failed, 1),
    )
    .await;

    service.advance(time::Duration::days(8));
    let path = format!("/api/admin/tenants/{id}/billing");
    service
        .wait_for(&path, |_, body| body["status"] == "suspended")
        .await;
    let notices: Vec<String> = service
        .notifier
        .sent()
        .iter()
        .map(|n| n.kind.to_string())
        .collect();
    assert!(
        notices.iter().any(|n| n.starts_with("payment failed")),
        "{notices:?}"
    );
    assert!(
        notices.iter().any(|n| n == "access suspended"),
        "{notices:?}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused() {
    let service = Service::start().await;
    let body = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(deliver(&service, (body, "t=1,v1=00".into())).await.0, 413);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscription_event_is_applied_with_stripes_current_copy() {
    let stripe = MockServer::start().await;
    let service = Service::start_with(Some(ADMIN_TOKEN), Some(stripe.uri())).await;
    let id = ready_tenant(&service).await;
    let current = subscription(
        "sub_acme",
        "cus_acme",
        "active",
        "price_professional_monthly",
        Some(id.as_str()),
    );
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_acme"))
        .and(header(
            "authorization",
            format!("Bearer {STRIPE_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(current))
        .expect(1)
        .mount(&stripe)
        .await;

    // An old "past due on starter" copy arrives late; Stripe now says "active on professional".
    let stale = subscription(
        "sub_acme",
        "cus_acme",
        "past_due",
        "price_starter_monthly",
        Some(id.as_str()),
    );
    assert_eq!(
        deliver(
            &service,
            stripe_event(&service, "customer.subscription.updated", stale, 0)
        )
        .await
        .0,
        200
    );

    let state = billing(&service, &id).await;
    assert_eq!(state["status"], "active", "{state}");
    assert_eq!(state["plan"], "professional");
    service.stop().await;
    stripe.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_a_customer_not_yet_known_is_parked_then_applied() {
    let service = Service::start().await;
    let id = ready_tenant(&service).await;
    let parked = || async {
        let store = service.assembly.billing.store();
        store.parked(None, None, 100).await.unwrap().len()
    };

    // The payment failure (which names only the customer) overtakes the checkout.
    let failed = invoice("sub_acme", "cus_acme", 0, InvoiceShape::Parent);
    let answer = deliver(
        &service,
        stripe_event(&service, "invoice.payment_failed", failed, 120),
    )
    .await;
    assert_eq!(answer, (200, json!({"received": true, "duplicate": false})));
    assert_eq!(parked().await, 1);
    assert_eq!(billing(&service, &id).await["status"], "trialing");

    let session = checkout_session(id.as_str(), "cus_acme", "sub_acme", "paid");
    deliver(
        &service,
        stripe_event(&service, "checkout.session.completed", session, 60),
    )
    .await;
    assert_eq!(billing(&service, &id).await["status"], "past_due");
    assert_eq!(parked().await, 0);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_a_tenant_not_in_the_directory_is_acknowledged_and_gives_no_billing() {
    let service = Service::start().await;
    let id = ready_tenant(&service).await;
    // Another environment's tenant, reached through the same Stripe account.
    let ghost = subscription(
        "sub_ghost",
        "cus_ghost",
        "active",
        "price_professional_monthly",
        Some("ghost-tenant"),
    );
    let delivery = stripe_event(&service, "customer.subscription.updated", ghost, 0);

    let (status, receipt) = deliver(&service, delivery.clone()).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["received"], true);
    assert_eq!(receipt["duplicate"], false);
    assert!(
        receipt["ignored"]
            .as_str()
            .is_some_and(|why| why.contains("ghost-tenant")),
        "{receipt}"
    );
    let path = "/api/admin/tenants/ghost-tenant/billing";
    assert_eq!(service.admin_get(path).await.0, 404);
    assert_eq!(
        service.admin_get("/api/admin/tenants/ghost-tenant").await.0,
        404
    );
    let store = service.assembly.billing.store();
    assert!(store.parked(None, None, 10).await.unwrap().is_empty());

    // Stripe's retry is a duplicate; a tenant signing up under that id later starts
    // its own trial, without the foreign subscription.
    assert_eq!(
        deliver(&service, delivery.clone()).await,
        (200, json!({"received": true, "duplicate": true}))
    );
    let ghost_id = service
        .signup_ready("Ghost Tenant", "owner@ghost.example")
        .await;
    assert_eq!(ghost_id.as_str(), "ghost-tenant");
    assert_eq!(
        deliver(&service, delivery).await,
        (200, json!({"received": true, "duplicate": true}))
    );
    let state = billing(&service, &ghost_id).await;
    assert_eq!(state["status"], "trialing", "{state}");
    assert_eq!(state["plan"], Value::Null);

    // A tenant reference that is no tenant id at all is acknowledged and said so.
    let malformed = subscription(
        "sub_malformed",
        "cus_malformed",
        "active",
        "price_professional_monthly",
        Some("Acme Pharmacy"),
    );
    let (status, receipt) = deliver(
        &service,
        stripe_event(&service, "customer.subscription.updated", malformed, 0),
    )
    .await;
    assert_eq!(status, 200, "{receipt}");
    assert!(
        receipt["ignored"]
            .as_str()
            .is_some_and(|why| why.contains("not a valid tenant id")),
        "{receipt}"
    );

    // A known tenant's events apply as before, once.
    let paid = checkout(&service, &id);
    assert_eq!(
        deliver(&service, paid.clone()).await,
        (200, json!({"received": true, "duplicate": false}))
    );
    assert_eq!(billing(&service, &id).await["status"], "active");
    assert_eq!(deliver(&service, paid).await.1["duplicate"], true);
    service.stop().await;
}
