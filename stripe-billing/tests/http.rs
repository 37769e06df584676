//! The webhook and billing routers, mounted as a host that wants only Stripe would.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::{checkout_session, config, envelope, signed, SECRET, T0};
use serde_json::{json, Value};
use stripe_billing::http::{billing_router, webhook_router, WebhookRoutes};
use stripe_billing::{BillingProcessor, MemoryBillingStore, WebhookVerifier};
use tenancy_core::{ManualClock, TenantId};
use tower::ServiceExt;

fn app(verifier: Option<WebhookVerifier>, applied: Arc<AtomicUsize>) -> (Router, BillingProcessor) {
    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    let clock = ManualClock::new(common::at(T0));
    let routes = WebhookRoutes::new(processor.clone(), verifier)
        .with_clock(Arc::new(clock))
        .on_applied(move || {
            applied.fetch_add(1, Ordering::SeqCst);
        });
    let router = Router::new()
        .nest("/webhooks/stripe", webhook_router())
        .nest("/admin", billing_router())
        .with_state(routes);
    (router, processor)
}

/// A completed Checkout for `tenant`, as Stripe sends it at `created`.
fn paid_checkout_for(tenant: &str, created: i64) -> Value {
    envelope(
        "checkout.session.completed",
        checkout_session(tenant, "paid"),
        created,
    )
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::builder()
        .secret(SECRET)
        .clock(Arc::new(ManualClock::new(common::at(T0))))
        .build()
        .unwrap()
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn delivery(body: Vec<u8>, signature: &str) -> Request<Body> {
    Request::post("/webhooks/stripe")
        .header("stripe-signature", signature)
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn verified_events_are_applied_once_and_forged_ones_refused() {
    let applied = Arc::new(AtomicUsize::new(0));
    let (app, _) = app(Some(verifier()), applied.clone());
    let event = paid_checkout_for("acme", T0);
    let (body, signature) = signed(&event, T0);

    let first = call(&app, delivery(body.clone(), &signature)).await;
    assert_eq!(
        first,
        (
            StatusCode::OK,
            json!({"received": true, "duplicate": false})
        )
    );
    let again = call(&app, delivery(body.clone(), &signature)).await;
    assert_eq!(
        again,
        (StatusCode::OK, json!({"received": true, "duplicate": true}))
    );
    assert_eq!(
        applied.load(Ordering::SeqCst),
        1,
        "woken once, for the applied event"
    );

    let mut forged = body.clone();
    forged.extend_from_slice(b" ");
    let (status, answer) = call(&app, delivery(forged, &signature)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].is_string(), "{answer}");

    let oversized = vec![b' '; stripe_billing::http::MAX_WEBHOOK_BODY + 1];
    assert_eq!(
        call(&app, delivery(oversized, &signature)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn without_a_secret_the_webhook_is_closed_and_says_so() {
    let (app, _) = app(None, Arc::new(AtomicUsize::new(0)));
    let (body, signature) = signed(&paid_checkout_for("acme", T0), T0);
    let (status, answer) = call(&app, delivery(body, &signature)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("STRIPE_WEBHOOK_SECRET"));
    let (status, setup) = call(
        &app,
        Request::get("/webhooks/stripe/test")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(setup["secret_configured"], false);
    assert!(setup["handled_events"]
        .as_array()
        .unwrap()
        .contains(&json!("invoice.paid")));
}

#[tokio::test]
async fn the_billing_view_shows_the_trial_then_the_plan() {
    let (app, processor) = app(Some(verifier()), Arc::new(AtomicUsize::new(0)));
    let view = || {
        Request::get("/admin/tenants/acme/billing")
            .body(Body::empty())
            .unwrap()
    };
    let (status, answer) = call(&app, view()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no billing state"),
        "{answer}"
    );

    let acme = TenantId::try_from("acme").unwrap();
    processor.start_trial(&acme, common::at(T0)).await.unwrap();
    let (status, answer) = call(&app, view()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "trialing");
    assert_eq!(answer["trial_ends_at"], "2026-01-15T00:00:00Z");

    let (body, signature) = signed(&paid_checkout_for("acme", T0 + 60), T0);
    call(&app, delivery(body, &signature)).await;
    let (_, answer) = call(&app, view()).await;
    assert_eq!(answer["status"], "active");
    assert_eq!(answer["trial_ends_at"], Value::Null);
}
